"""Where a file run writes, and the checks shared by every file format: never over the input, resume or refuse."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pbx_codes.enrich.state import Fingerprint, RunState, load_state, state_path
from pbx_codes.enrich.summary import Summary
from pbx_codes.errors import InputError

ALREADY_DONE = "already enriched: the input has not changed since the last complete run"


class EnrichError(InputError):
    """A run that cannot start or go on: unreadable input, an output that is in the way, a layout that does not fit."""


def enriched_path(source: Path) -> Path:
    """``Master.csv`` -> ``Master.enriched.csv``; ``cdr`` -> ``cdr.enriched``: a new file beside the old one."""
    if source.suffix and source.stem:
        return source.with_name(f"{source.stem}.enriched{source.suffix}")
    return source.with_name(source.name + ".enriched")


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a file run begins: from scratch, after a checkpoint, or nowhere (already complete)."""

    state: RunState
    resume: bool
    done: bool = False


def check_paths(source: Path, output: Path) -> None:
    if not source.is_file():
        raise EnrichError(f"{source}: cannot be read: no such file" if not source.exists()
                          else f"{source}: cannot be read: not a regular file")
    try:
        same = output.exists() and output.resolve() == source.resolve()
    except OSError:
        same = False
    if same or output == source:
        raise EnrichError(f"{output}: the output would overwrite the input; choose another --output")


def start_point(source: Path, output: Path, preset: str, *, force: bool) -> StartPoint:
    """Decide how a run starts, from the state file beside `output` and the input's fingerprint."""
    check_paths(source, output)
    try:
        current = Fingerprint.of(source)
    except OSError as exc:
        raise EnrichError(f"{source}: cannot be read: {exc.strerror or exc}") from None
    fresh = RunState(input=str(source), preset=preset, fingerprint=current)
    if not output.exists():
        return StartPoint(fresh, resume=False)
    saved = load_state(state_path(output))
    if saved is not None:
        if saved.unchanged_and_complete(current):
            return StartPoint(saved, resume=True, done=True)
        if saved.resumable_for(source, preset) and output.stat().st_size >= saved.output_offset:
            return StartPoint(saved, resume=True)
    if not force:
        raise EnrichError(f"{output}: exists and is not a resumable run of this input; remove it or pass --force")
    return StartPoint(fresh, resume=False)


def begin_run(source: Path, output: Path, preset: str, *, force: bool) -> tuple[Summary, StartPoint]:
    """The summary a file run fills and where the run starts; when there is nothing left to do (`start.done`) the
    summary already says so, and the caller returns it as it is."""
    summary = Summary(source=str(source), output=str(output))
    start = start_point(source, output, preset, force=force)
    if start.done:
        summary.note = ALREADY_DONE
    return summary, start


__all__ = ["ALREADY_DONE", "EnrichError", "StartPoint", "begin_run", "check_paths", "enriched_path", "start_point"]
