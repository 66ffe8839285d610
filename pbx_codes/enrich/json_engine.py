"""Enriching JSON CDRs: Asterisk's cdr_custom JSON mapping (one flat object per line) and FreeSWITCH's
mod_json_cdr documents (one per file, or one per line when collected), into a new file or folder beside the old.

A FreeSWITCH document keeps every channel variable under ``variables``; that is where the cause is read and where
the pbx_* values go, next to the variables the live hangup hook would have set. An Asterisk object is flat.
A document that already has ``pbx_category`` is written back unchanged (its original line, byte for byte).

mod_json_cdr's default ``encode-values=true`` URL-encodes every variable (``Not%20enough%20money``): such a document
is read decoded and its pbx_* values are written encoded the same way, so it stays in one form; a document written
with ``encode-values=false`` is read as written (a literal ``%41`` stays ``%41``). The form is decided per document
(`pbx_codes.observers.freeswitch_cdr.is_url_encoded`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pbx_codes.enrich.files import EnrichError, StartPoint, begin_run
from pbx_codes.enrich.interpret import NO_CAUSE, KeyPlan, RowAnnotator
from pbx_codes.enrich.mapping import DONE_COLUMN, PBX_COLUMNS, Preset
from pbx_codes.enrich.progress import Progress
from pbx_codes.enrich.state import Fingerprint, save_state, state_path
from pbx_codes.enrich.summary import Summary
from pbx_codes.observers.freeswitch_cdr import decoded_variables, is_url_encoded

CHECKPOINT_ROWS = 20_000


class JsonEnricher:
    def __init__(self, source: Path, output: Path, preset: Preset, annotator: RowAnnotator, *, force: bool = False,
                 progress: bool | None = None, checkpoint_rows: int = CHECKPOINT_ROWS,
                 stop_after: int | None = None, **_: Any) -> None:
        self.source, self.output, self.preset, self.annotator = source, output, preset, annotator
        self.force, self.progress_enabled = force, progress
        self.checkpoint_rows, self.stop_after = max(1, checkpoint_rows), stop_after
        # Every candidate column of the key fields, looked up by name in each document.
        names: list[str] = []
        for name in annotator.key_fields():
            for column in preset.mapping.candidates(name):
                if column not in names:
                    names.append(column)
        if not names:
            raise EnrichError("the column mapping names no column to read")
        self.names = tuple(names)
        self.plan = KeyPlan.build(preset.mapping.bind(self.names), annotator.key_fields())
        self.key_of = self.plan.row_key()

    def container(self, doc: Any) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            return None
        if self.preset.json_container:
            inner = doc.get(self.preset.json_container)
            if isinstance(inner, dict):
                return inner
            return {} if inner is None else None   # no variables at all: nothing to read (and nothing added)
        return doc

    def annotate_doc(self, doc: Any, summary: Summary) -> bool:
        """Add the pbx_* values to one document in place; True when it changed."""
        box = self.container(doc)
        if box is None:
            summary.skipped_malformed += 1
            return False
        encoded = bool(self.preset.json_container) and is_url_encoded(box)
        view = decoded_variables(box) if encoded else box
        if view.get(DONE_COLUMN):
            summary.skipped_annotated += 1
            return False
        key = self.key_of([_scalar(view.get(n)) for n in self.names])
        outcome = self.annotator.outcome(self.plan, key)
        if outcome.kind == NO_CAUSE:
            summary.skipped_no_cause += 1
            return False
        values = [quote(v, safe="") for v in outcome.values] if encoded else outcome.values
        box.update(zip(PBX_COLUMNS, values))
        summary.count(outcome.category, outcome.kind)
        return True

    def run(self) -> Summary:
        if self.source.is_dir():
            return self._run_folder()
        summary, start = begin_run(self.source, self.output, self.preset.name, force=self.force)
        if start.done:
            return summary
        began = time.perf_counter()
        try:
            single = self._single_document()
            if single is not None:
                summary.rows_read = 1
                self.annotate_doc(single, summary)
                self.output.write_text(json.dumps(single, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
                save_state(state_path(self.output), start.state.advanced(
                    input_offset=self.source.stat().st_size, output_offset=self.output.stat().st_size, rows=1,
                    complete=True))
            else:
                self._run_lines(start, summary)
        except OSError as exc:
            raise EnrichError(f"{exc.filename or self.source}: {exc.strerror or exc}") from None
        summary.elapsed = time.perf_counter() - began
        return summary

    def _single_document(self) -> Any | None:
        """The document, when the file is one (pretty-printed) JSON document rather than JSON lines."""
        with self.source.open("rb") as f:
            first = f.readline()
            rest = f.read(1)
        if not rest:
            try:
                return json.loads(first) if first.strip() else None
            except ValueError:
                raise EnrichError(f"{self.source}: not JSON") from None
        try:
            json.loads(first)
            return None                  # a complete object on the first line: JSON lines
        except ValueError:
            pass
        if self.source.stat().st_size > 64 * 1024 * 1024:
            raise EnrichError(f"{self.source}: neither JSON lines nor a JSON document of a sane size")
        try:
            return json.loads(self.source.read_bytes())
        except ValueError as exc:
            raise EnrichError(f"{self.source}: not JSON lines and not one JSON document ({exc})") from None

    def _run_lines(self, start: StartPoint, summary: Summary) -> None:
        state = start.state
        spath = state_path(self.output)
        progress = Progress(self.source.stat().st_size, enabled=self.progress_enabled)
        with self.source.open("rb") as fin, self.output.open("r+b" if start.resume else "wb") as fout:
            if start.resume:
                fout.truncate(state.output_offset)
                fout.seek(state.output_offset)
                fin.seek(state.input_offset)
                summary.resumed_from_row = state.rows
            offset, rows, base = fin.tell(), state.rows, state.rows
            for raw in fin:
                offset += len(raw)
                rows += 1
                try:
                    doc = json.loads(raw) if raw.strip() else None
                except ValueError:
                    doc = None
                if doc is not None and self.annotate_doc(doc, summary):
                    eol = b"\r\n" if raw.endswith(b"\r\n") else b"\n"
                    fout.write(json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass") + eol)
                else:
                    if doc is None:
                        summary.skipped_malformed += 1
                    fout.write(raw)
                if rows - base >= 0 and (rows - base) % self.checkpoint_rows == 0:
                    fout.flush()
                    state = state.advanced(input_offset=offset, output_offset=fout.tell(), rows=rows)
                    save_state(spath, state)
                    progress.update(offset, rows - base)
                if self.stop_after is not None and rows - base >= self.stop_after:
                    summary.rows_read = rows - base
                    summary.note = f"stopped after row {rows:,} (resume from the last checkpoint)"
                    progress.close()
                    return
            fout.flush()
            summary.rows_read = rows - base
            save_state(spath, state.advanced(input_offset=offset, output_offset=fout.tell(), rows=rows,
                                             complete=True, fingerprint=Fingerprint.of(self.source)))
        progress.close()

    def _run_folder(self) -> Summary:
        """A json_cdr log folder: every ``*.json`` file into the same name in the output folder. A file already
        in the output folder is done (that is the resume), so an interrupted run picks up where it stopped."""
        summary = Summary(source=str(self.source), output=str(self.output))
        began = time.perf_counter()
        if self.output.resolve() == self.source.resolve():
            raise EnrichError(f"{self.output}: the output would overwrite the input; choose another --output")
        self.output.mkdir(parents=True, exist_ok=True)
        files = sorted(p for p in self.source.iterdir() if p.is_file() and p.suffix == ".json")
        progress = Progress(len(files), enabled=self.progress_enabled, unit="files")
        for n, path in enumerate(files, 1):
            target = self.output / path.name
            if target.exists():
                summary.skipped_annotated += 1
                continue
            summary.rows_read += 1
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError):
                summary.skipped_malformed += 1
                continue
            self.annotate_doc(doc, summary)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            tmp.replace(target)       # a file appears whole or not at all
            progress.update(n, n)
            if self.stop_after is not None and summary.rows_read >= self.stop_after:
                summary.note = f"stopped after {summary.rows_read} files"
                break
        progress.close()
        summary.elapsed = time.perf_counter() - began
        return summary


def _scalar(value: Any) -> Any:
    """A JSON value usable in a cache key (objects and lists as their text)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True)


def enrich_json(source: Path, output: Path, preset: Preset, annotator: RowAnnotator, **options: Any) -> Summary:
    return JsonEnricher(source, output, preset, annotator, **options).run()


__all__ = ["JsonEnricher", "enrich_json"]
