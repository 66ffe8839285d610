"""Enriching a CSV CDR file into a new file beside it: Asterisk cdr_csv/cdr_custom and FreeSWITCH mod_cdr_csv.

Speed comes from doing per row only what must be done per row: a line is split on ``","`` when that fits, a
precomputed itemgetter takes the raw key, one dict lookup finds the finished bytes to add, and the row's original
bytes are written back untouched with those bytes appended (or, for a template that already has empty pbx_* columns
at its end, with that empty tail replaced). Only a row that needs a real rewrite goes through a CSV writer. A layout
that appends reads just the fields it needs with a compiled pattern (see `field_picker`), which is what makes
Master.csv (quotes in the caller ID, unquoted numbers) fast; csv.reader reads whatever no quicker way fits.

Rows already annotated (pbx_category set) and rows that are not of the layout are copied through byte for byte.
"""
from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from enum import Enum
from itertools import chain
from pathlib import Path
from typing import IO, Any, Final, Protocol

from pbx_codes.enrich.field_picker import FieldPicker
from pbx_codes.enrich.files import EnrichError, begin_run
from pbx_codes.enrich.interpret import CATEGORY_VALUES, NO_CAUSE, RETRY_VALUES, KeyPlan, Outcome, RowAnnotator
from pbx_codes.enrich.mapping import DONE_COLUMN, PBX_COLUMNS, Preset
from pbx_codes.enrich.progress import Progress
from pbx_codes.enrich.state import RunState, save_state, state_path
from pbx_codes.enrich.summary import Summary
from pbx_codes.enrich.tolerant_csv import join_line, split_line
from pbx_codes.text import csv_cell

CHECKPOINT_ROWS = 50_000
_CACHE_LIMIT = 100_000
_PICKER_LIMIT = 8          # field counts with a compiled pattern at once (Master.csv has 16, 17 or 18, +8 enriched)
_LF, _CRLF = b"\n", b"\r\n"
#: The most lines one quoted field may run over; a record still open after them is an unterminated quote.
MAX_RECORD_LINES = 64


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns of the input, where the key fields and pbx_* columns are, and how rows get their values."""

    names: tuple[str, ...]
    plan: KeyPlan
    fill: tuple[tuple[int, int], ...]     # (row position, value index) of pbx_* columns the layout has
    append: tuple[int, ...]               # value indexes of pbx_* columns to append, in PBX_COLUMNS order
    need: int                             # the shortest row that holds every key column
    done_index: int | None                # where pbx_category is in a row of this layout
    tail_fill: bool                       # the pbx_* columns are together, in order, near the end
    tail_extra: int                       # how many columns follow them (FreeSWITCH's pbx_hangup_by)
    widths: frozenset[int]                # field counts of a row of this layout (annotated, or done per its column)
    done_widths: frozenset[int]           # field counts of a row that carries the appended pbx_* block already

    @classmethod
    def build(cls, names: Sequence[str], preset: Preset, annotator: RowAnnotator) -> Layout:
        names = tuple(names)
        bound = preset.mapping.bind(names)
        plan = KeyPlan.build(bound, annotator.key_fields())
        if plan.empty:
            wanted = sorted({c for f in annotator.key_fields() for c in preset.mapping.candidates(f)})
            raise EnrichError(f"none of the mapped columns ({', '.join(wanted)}) is in this layout "
                              f"({', '.join(names[:30])}); use --map FIELD=COLUMN or --columns")
        fill = tuple((names.index(c), i) for i, c in enumerate(PBX_COLUMNS) if c in names)
        append = tuple(i for i, c in enumerate(PBX_COLUMNS) if c not in names)
        need = max((*plan.positions, *plan.channel)) + 1
        done_index = names.index(DONE_COLUMN) if DONE_COLUMN in names else None
        first = names.index(PBX_COLUMNS[0]) if not append else -1
        tail_fill = first >= 0 and names[first:first + len(PBX_COLUMNS)] == PBX_COLUMNS
        tail_extra = len(names) - first - len(PBX_COLUMNS) if tail_fill else 0
        # A row is of the layout only with the layout's field count (cdr_csv may leave trailing columns out), or
        # that count plus the appended pbx_* block. Any other row is malformed: its fields would be read, and the
        # values appended, under the wrong names.
        base = range(need, len(names) + 1) if preset.short_rows and not fill else (len(names),)
        widths = frozenset(base)
        if names == preset.columns:  # the preset's later layouts append columns: every position holds
            widths |= frozenset(preset.layouts)
        done_widths = frozenset(w + len(append) for w in base) if append else frozenset()
        return cls(names, plan, fill, append, need, done_index, tail_fill, tail_extra, widths, done_widths)

    @property
    def out_names(self) -> tuple[str, ...]:
        return self.names + tuple(PBX_COLUMNS[i] for i in self.append)


def _split_eol(raw: bytes) -> tuple[bytes, bytes]:
    if raw.endswith(_CRLF):
        return raw[:-2], _CRLF
    if raw.endswith(_LF):
        return raw[:-1], _LF
    return raw, b""


def _quoted(values: Sequence[str]) -> list[bytes]:
    return [b'"' + v.encode("utf-8", "surrogateescape").replace(b'"', b'""') + b'"' for v in values]


class _Rewriter:
    """Renders a full row as standard CSV (every field quoted, as Asterisk writes them)."""

    def __init__(self) -> None:
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, quoting=csv.QUOTE_ALL, lineterminator="")

    def render(self, row: Sequence[str]) -> bytes:
        self._buf.seek(0)
        self._buf.truncate()
        self._writer.writerow(row)
        return self._buf.getvalue().encode("utf-8", "surrogateescape")


_REWRITE = b"<rewrite>"   # marker: rows of this key are rewritten field by field


class _End(Enum):
    """What a shape loop ended on, besides a line it hands back (compared by identity)."""

    EOF = "eof"
    STOP = "stop"


_EOF: Final = _End.EOF
_STOP: Final = _End.STOP
_Key = tuple[Any, ...]   # a row's cache key: its key fields (str or bytes) and the trunk


class _SlowReader(Protocol):
    """``slow(raw)`` -> (record bytes or None while a quoted field goes on, its fields or None when unreadable)."""

    def __call__(self, raw: bytes | None, split_tried: bool = False) -> tuple[bytes | None, list[Any] | None]: ...


@dataclass(slots=True, eq=False)
class _Entry:
    """One distinct raw key: the bytes to write for it (without and with a line end), its outcome, how many rows
    used it. `lf` None: nothing to write (no cause), and `payload` is not read."""

    payload: bytes
    lf: bytes | None
    outcome: Outcome
    hits: int = 0
    cells: tuple[str, ...] = ()      # the outcome's values as CSV cells (formula-neutralised)


class _Cache:
    """The finished bytes per distinct raw key (`entries`), and per field picker's key (`picked`: the stem of a
    channel instead of its unique name); both bounded. Each entry counts its rows; `fold` adds them to the
    summary (when the cache is emptied, and at the end)."""

    __slots__ = ("entries", "picked", "_enricher", "_layout", "_summary", "_outcome", "_plan")

    def __init__(self, enricher: CsvEnricher, layout: Layout, summary: Summary) -> None:
        self.entries: dict[_Key, _Entry] = {}
        self.picked: dict[_Key, _Entry] = {}
        self._enricher, self._layout, self._summary = enricher, layout, summary
        self._outcome, self._plan = enricher.annotator.outcome, layout.plan

    def entry(self, key: _Key) -> _Entry:
        """The entry of a key seen for the first time: annotated once here."""
        if len(self.entries) >= _CACHE_LIMIT:
            self.fold()
            self.entries.clear()
            self.picked.clear()           # its entries are no longer counted
        entry = self.entries[key] = self._enricher._entry(self._layout, self._outcome(self._plan, key))
        return entry

    def fold(self) -> None:
        summary = self._summary
        for entry in self.entries.values():
            if entry.hits:
                if entry.outcome.kind == NO_CAUSE:
                    summary.skipped_no_cause += entry.hits
                else:
                    summary.count(entry.outcome.category, entry.outcome.kind, entry.hits)
                entry.hits = 0


class _Run:
    """What the shape loops share between turns (each keeps it in locals while it runs, and hands it back), and the
    writing of what they produced: a checkpoint every `checkpoint_rows` rows, the summary at the end."""

    def __init__(self, enricher: CsvEnricher, fin: IO[bytes], fout: IO[bytes], state: RunState, summary: Summary,
                 joined: list[int], fold: Callable[[], None]) -> None:
        self.fin, self.fout, self.state, self.summary, self.joined = fin, fout, state, summary, joined
        self.tolerant, self.source = enricher.tolerant, enricher.source
        self.rows = self.base_rows = state.rows
        self.offset = self.start_offset = fin.tell()
        self.done = 0
        self.parts: list[bytes] = []
        # Input lines before the first row, and lines that continued a quoted field: a row's line number is
        # first_line + rows + joined[0] (a record over several lines counts once in rows).
        self.first_line = 1 if enricher.header else 0
        joined[0] = state.extra_lines
        self.checkpoint_rows = enricher.checkpoint_rows
        self.next_checkpoint = self.rows + enricher.checkpoint_rows
        self.stop_at = self.rows + enricher.stop_after if enricher.stop_after is not None else -1
        self.spath = state_path(enricher.output)
        self.progress = Progress(enricher.source.stat().st_size, enabled=enricher.progress_enabled)
        self._fold = fold                 # the cache's: its rows' counts into the summary

    def malformed_at(self, raw: bytes, offset: int, rows: int) -> tuple[bytes, int]:
        """A malformed record: its first line to copy as it is, and where reading goes on (see `_first_record`)."""
        raw, offset = _first_record(raw, offset, self.fin, self.joined, self.tolerant)
        self.summary.malformed_at(self.first_line + rows + self.joined[0])
        return raw, offset

    def malformed(self, raw: bytes, offset: int, rows: int) -> bytes:
        raw, self.offset = self.malformed_at(raw, offset, rows)
        return raw

    def spill(self, rows: int, offset: int, pending: bool) -> int:
        """Write what the loops produced; at a checkpoint (never inside a record) save where the run is. Returns
        the row count of the next checkpoint."""
        fout = self.fout
        fout.write(b"".join(self.parts))
        self.parts.clear()
        if rows >= self.next_checkpoint and not pending:
            fout.flush()
            self.state = self.state.advanced(input_offset=offset, output_offset=fout.tell(), rows=rows,
                                             extra_lines=self.joined[0])
            save_state(self.spath, self.state)
            self.next_checkpoint = rows + self.checkpoint_rows
        self.progress.update(offset, rows - self.base_rows, base=self.start_offset)
        return self.next_checkpoint

    def _end(self) -> None:
        self.fout.write(b"".join(self.parts))
        self.parts.clear()
        self.fout.flush()
        self._fold()
        self.progress.close()
        self.summary.rows_read, self.summary.skipped_annotated = self.rows - self.base_rows, self.done

    def stop(self) -> None:
        """`stop_after` reached: end as a killed process would, after the last checkpoint only."""
        self._end()
        self.summary.note = f"stopped after row {self.rows:,} (resume from the last checkpoint)"

    def finish(self) -> None:
        self._end()
        save_state(self.spath, self.state.advanced(
            input_offset=self.offset, output_offset=self.fout.tell(), rows=self.rows, complete=True,
            fingerprint=type(self.state.fingerprint).of(self.source), extra_lines=self.joined[0]))


class CsvEnricher:
    """One CSV file -> its enriched copy. `stop_after` ends the run after that many rows without a final
    checkpoint, the way a killed process would (for tests of resume). `reader_only` reads every line of a strict
    CSV layout with csv.reader, skipping the quicker readers: the reference they are tested against."""

    def __init__(self, source: Path, output: Path, preset: Preset, annotator: RowAnnotator, *,
                 columns: Sequence[str] | None = None, header: bool | None = None, force: bool = False,
                 progress: bool | None = None, checkpoint_rows: int = CHECKPOINT_ROWS,
                 stop_after: int | None = None, reader_only: bool = False) -> None:
        self.source, self.output, self.preset, self.annotator = source, output, preset, annotator
        self.columns = tuple(columns) if columns else preset.columns
        self.header = (self.columns is None) if header is None else header
        if not self.header and not self.columns:
            raise EnrichError("this file has no header: name its columns with --columns or a preset")
        self.force, self.progress_enabled = force, progress
        self.checkpoint_rows, self.stop_after = max(1, checkpoint_rows), stop_after
        self.tolerant = preset.tolerant
        self.reader_only = reader_only and not self.tolerant   # mod_cdr_csv's dialect has no csv.reader reference

    # -- the run ------------------------------------------------------------------------------------------------

    def run(self) -> Summary:
        summary, start = begin_run(self.source, self.output, self.preset.name, force=self.force)
        if start.done:
            return summary
        began = time.perf_counter()
        try:
            with self.source.open("rb") as fin:
                layout, header_line = self._read_layout(fin)
                state = start.state
                mode = "r+b" if start.resume else "wb"
                with self.output.open(mode) as fout:
                    if start.resume:
                        fout.truncate(state.output_offset)
                        fout.seek(state.output_offset)
                        fin.seek(state.input_offset)
                        summary.resumed_from_row = state.rows
                    else:
                        if header_line is not None:
                            fout.write(self._header_out(layout, header_line))
                        state = state.advanced(input_offset=fin.tell(), output_offset=fout.tell(), rows=0)
                        save_state(state_path(self.output), state)
                    self._loop(fin, fout, layout, state, summary)
        except OSError as exc:
            raise EnrichError(f"{exc.filename or self.source}: {exc.strerror or exc}") from None
        summary.elapsed = time.perf_counter() - began
        return summary

    def _read_layout(self, fin: IO[bytes]) -> tuple[Layout, bytes | None]:
        if not self.header:   # then the columns are named (checked when built)
            return Layout.build(self.columns or (), self.preset, self.annotator), None
        first = fin.readline()
        body, _ = _split_eol(first)
        if not body.strip():
            raise EnrichError(f"{self.source}: empty file, or no header row")
        if self.tolerant:
            fields = split_line(body)
            names = [f.decode("utf-8", "replace") for f in fields] if fields else []
        else:
            names = next(csv.reader([body.decode("utf-8", "surrogateescape")]), [])
        if not names:
            raise EnrichError(f"{self.source}: the header row cannot be read")
        return Layout.build([n.strip().lstrip("\ufeff") for n in names], self.preset, self.annotator), first

    def _header_out(self, layout: Layout, header_line: bytes) -> bytes:
        body, eol = _split_eol(header_line)
        extra = [PBX_COLUMNS[i] for i in layout.append]
        if not extra:
            return header_line
        if self.tolerant:
            return body + b"".join(b',"' + e.encode() + b'"' for e in extra) + (eol or _LF)
        return body + b"," + b",".join(_quoted(extra)) + (eol or _LF)

    # -- rows ---------------------------------------------------------------------------------------------------

    def _done_check(self, layout: Layout) -> Callable[[Sequence[Any]], bool]:
        """Whether a row carries an annotation already."""
        if layout.done_index is not None:
            idx = layout.done_index
            return lambda row: len(row) > idx and bool(row[idx])
        (cat_from_end, retry_from_end), minimum = _appended_done_at(layout)
        return lambda row: (len(row) > minimum and row[-cat_from_end] in _CATEGORIES
                            and row[-retry_from_end] in _RETRIES)

    def _pickers(self, layout: Layout) -> Callable[[int], FieldPicker | None] | None:
        """For a non-tolerant layout that appends: field count -> its `FieldPicker` (None for a count whose rows
        are malformed anyway), built on first use. None for other layouts: they need whole rows (a rewrite in
        place) or read mod_cdr_csv's own dialect."""
        if self.tolerant or layout.fill or self.reader_only:
            return None
        done_from_end, minimum = _appended_done_at(layout)
        built: dict[int, FieldPicker | None] = {}
        counts = layout.widths | layout.done_widths

        def picker(count: int) -> FieldPicker | None:
            if count not in built:
                if len(built) >= _PICKER_LIMIT:
                    built.clear()
                built[count] = (FieldPicker.build(count, layout.plan, done_from_end, minimum, _CATEGORIES, _RETRIES)
                                if count in counts else None)
            return built[count]
        return picker

    def _loop(self, fin: IO[bytes], fout: IO[bytes], layout: Layout, state: RunState, summary: Summary) -> None:
        """Hands the file to the loop of each line shape in turn, for as long as lines keep that shape: lines a
        field picker reads (`_picked_lines`), and records read whole (`_whole_rows`). Each loop keeps what it
        needs in locals (no call per row); `_Run` holds what they share between turns and writes checkpoints."""
        cache = _Cache(self, layout, summary)
        slow, pending, joined = self._slow_reader(fin, layout.widths | layout.done_widths if self.tolerant else None)
        run = _Run(self, fin, fout, state, summary, joined, cache.fold)
        pickers = self._pickers(layout)
        picker_count = len(layout.names)
        picked = self._picked_lines(pickers(picker_count), layout, cache, run, fin) if pickers is not None else None
        whole = self._whole_rows(layout, cache, run, fin, slow, pending, one_record=pickers is not None)
        while True:
            left: bytes | _End | None = None
            if picked is not None and not pending:
                left = picked()
                if left is _STOP:
                    run.stop()
                    return
            ended = _EOF if left is _EOF or left is _STOP else whole(left)   # _STOP: returned above
            if ended is _STOP:
                run.stop()
                return
            if ended is _EOF:
                raw, _ = slow(None)
                if raw is None:
                    break
                # An unterminated record at the end of the file: its first line is malformed, the rest is read
                # again.
                run.rows += 1
                run.parts.append(run.malformed(raw, run.offset, run.rows))
            elif pickers is not None and isinstance(ended, int) and ended != picker_count:
                # Rows of another field count (loguniqueid off, an enriched file): their own pattern now.
                picker_count = ended
                picked = self._picked_lines(pickers(picker_count), layout, cache, run, fin)
        run.finish()

    def _picked_lines(self, picker: FieldPicker | None, layout: Layout, cache: _Cache, run: _Run, fin: IO[bytes]
                      ) -> Callable[[], bytes | _End] | None:
        """Shape 1, an appending layout: the loop over lines that `picker` reads (one whole record of its field
        count). Only the needed fields are taken, and a row's entry is found by the picker's own key (the
        channel's stem, not its unique name): most rows cost one match and one dict lookup. Returns the first line
        it does not read (not yet counted in the offset), `_EOF` or `_STOP`."""
        if picker is None:
            return None
        match, groups, skip, key_of = picker.match, picker.groups, picker.skip, picker.key_of
        is_done = picker.is_done if picker.count in layout.done_widths else None
        picked, entries, entry_for = cache.picked, cache.entries, cache.entry
        parts = run.parts
        out = parts.append
        limit = _CACHE_LIMIT

        # Everything the loop reads is a default argument: a local to it, the fastest name there is.
        def lines(fin: IO[bytes] = fin, match: Callable[[bytes], re.Match[bytes] | None] = match,
                  groups: tuple[int, ...] = groups, skip: int = skip,
                  key_of: Callable[[re.Match[bytes]], _Key] = key_of,
                  is_done: Callable[[Sequence[Any]], bool] | None = is_done, picked: dict[_Key, _Entry] = picked,
                  entries: dict[_Key, _Entry] = entries, entry_for: Callable[[_Key], _Entry] = entry_for,
                  parts: list[bytes] = parts, out: Callable[[bytes], None] = out, limit: int = limit,
                  run: _Run = run) -> bytes | _End:
            rows, offset, next_checkpoint, stop_at = run.rows, run.offset, run.next_checkpoint, run.stop_at
            left: bytes | _End = _EOF
            for raw in fin:
                m = match(raw)
                if m is None:
                    left = raw
                    break
                offset += len(raw)
                rows += 1
                values = m.group(*groups)
                if is_done is not None:          # a count only an annotated row has: done, or malformed
                    if is_done(values):
                        run.done += 1
                        out(raw)
                    else:
                        raw, offset = run.malformed_at(raw, offset, rows)
                        out(raw)
                else:
                    entry = picked.get(values[skip:] if skip else values)
                    if entry is None:
                        if len(picked) >= limit:
                            picked.clear()
                        key = key_of(m)
                        entry = entries.get(key)
                        if entry is None:
                            entry = entry_for(key)
                        picked[values[skip:] if skip else values] = entry
                    entry.hits += 1
                    if entry.lf is None:
                        out(raw)
                    elif raw[-1:] == _LF and raw[-2:-1] != b"\r":
                        out(raw[:-1] + entry.lf)
                    else:
                        body, eol = _split_eol(raw)
                        out(body + entry.payload + eol)
                if rows >= next_checkpoint or len(parts) >= 2048:
                    next_checkpoint = run.spill(rows, offset, False)
                if rows == stop_at:
                    left = _STOP
                    break
            run.rows, run.offset = rows, offset
            return left
        return lines

    def _whole_rows(self, layout: Layout, cache: _Cache, run: _Run, fin: IO[bytes], slow: _SlowReader,
                    pending: list[bytes], *, one_record: bool) -> Callable[[bytes | None], int | _End | None]:
        """Shapes 2 and 3, records read into all their fields: the common line (every field quoted, no quote
        inside a value, one line per record) split on ``","``, anything else by the slow reader. The annotation
        is appended, fills the template's empty pbx_* tail, or (pbx_* columns elsewhere) the row is rewritten.

        ``whole(first)`` reads from `first` (a line already taken from the file, or None) on; with `one_record`
        (a field picker is tried first on every line) it returns after one record with that record's field count
        (None when malformed), otherwise at the end of the file (`_EOF`) or the stop (`_STOP`)."""
        key_of = layout.plan.row_key()
        is_done = self._done_check(layout)
        widths, done_widths = layout.widths, layout.done_widths
        width = len(layout.names)                           # the usual count, compared first
        done_in_place = layout.done_index is not None      # a row of the layout's own width may be annotated
        appending = not layout.fill
        entries, entry_for = cache.entries, cache.entry
        rewriter = _Rewriter()
        tail_q_lf = b',""' * (len(PBX_COLUMNS) + layout.tail_extra) + _LF
        cut_q_lf = len(tail_q_lf)
        tolerant, lengths = self.tolerant, (widths | done_widths if self.tolerant else frozenset())  # read if tolerant
        quote, quote_lf, sep = b'"', b'"' + _LF, b'","'
        if self.reader_only:
            quote_lf = b"\n\n"          # a line never ends so: the split below is never tried
        parts = run.parts
        out = parts.append
        rewrite = self._rewrite

        # Everything the loop reads is a default argument: a local to it, the fastest name there is.
        def whole(first: bytes | None, fin: IO[bytes] = fin, key_of: Callable[[Sequence[Any]], _Key] = key_of,
                  is_done: Callable[[Sequence[Any]], bool] = is_done, widths: Set[int] = widths,
                  done_widths: Set[int] = done_widths, width: int = width, done_in_place: bool = done_in_place,
                  appending: bool = appending, entries: dict[_Key, _Entry] = entries,
                  entry_for: Callable[[_Key], _Entry] = entry_for, rewriter: _Rewriter = rewriter,
                  tail_q_lf: bytes = tail_q_lf, cut_q_lf: int = cut_q_lf, tolerant: bool = tolerant,
                  lengths: Set[int] = lengths, quote: bytes = quote, quote_lf: bytes = quote_lf,
                  sep: bytes = sep, parts: list[bytes] = parts, out: Callable[[bytes], None] = out,
                  rewrite: Callable[[Layout, list[Any], Sequence[str], _Rewriter], bytes] = rewrite,
                  layout: Layout = layout, slow: _SlowReader = slow, pending: list[bytes] = pending,
                  one_record: bool = one_record, run: _Run = run) -> int | _End | None:
            rows, offset, next_checkpoint, stop_at = run.rows, run.offset, run.next_checkpoint, run.stop_at
            ended: int | _End | None = _EOF
            raw: bytes | None
            row: list[Any] | None
            for raw in (fin if first is None else chain((first,), fin)):
                offset += len(raw)
                if not pending and raw.endswith(quote_lf) and raw[:1] == quote:
                    row = raw[1:-2].split(sep)
                    if tolerant:
                        if len(row) not in lengths:
                            row = None
                    elif raw.count(quote) != 2 * len(row):
                        raw, row = slow(raw, True)
                else:
                    raw, row = slow(raw)
                if raw is None:                  # a record that goes on in the next line
                    continue
                rows += 1
                if row is not None and (len(row) == width or len(row) in widths):
                    if done_in_place and is_done(row):
                        run.done += 1
                        out(raw)
                    else:
                        key = key_of(row)
                        entry = entries.get(key)
                        if entry is None:
                            entry = entry_for(key)
                        entry.hits += 1
                        if entry.lf is None:                                   # nothing to add
                            out(raw)
                        elif appending:
                            if raw[-1:] == _LF and raw[-2:-1] != b"\r":
                                out(raw[:-1] + entry.lf)
                            else:
                                body, eol = _split_eol(raw)
                                out(body + entry.payload + eol)
                        elif entry.lf is not _REWRITE and len(row) == width and raw.endswith(tail_q_lf):
                            out(raw[:-cut_q_lf] + entry.lf)
                        else:
                            body, eol = _split_eol(raw)
                            out(rewrite(layout, row, entry.cells, rewriter) + (eol or b""))
                elif row is not None and len(row) in done_widths and is_done(row):
                    run.done += 1
                    out(raw)
                else:
                    raw, offset = run.malformed_at(raw, offset, rows)
                    out(raw)
                    row = None
                if rows >= next_checkpoint or len(parts) >= 2048:
                    next_checkpoint = run.spill(rows, offset, bool(pending))
                if rows == stop_at:
                    ended = _STOP
                    break
                if one_record:
                    ended = len(row) if row is not None else None
                    break
            run.rows, run.offset = rows, offset
            return ended
        return whole

    def _entry(self, layout: Layout, outcome: Outcome) -> _Entry:
        """The bytes a row with this outcome gets, prepared once: `payload` without and `lf` with the line end."""
        if outcome.kind == NO_CAUSE:
            return _Entry(b"", None, outcome)
        values = tuple(csv_cell(v) for v in outcome.values)   # no cell enrich writes starts a formula
        if not layout.fill:
            if self.tolerant:
                payload = b"".join(b',"' + values[i].encode("utf-8", "surrogateescape") + b'"' for i in layout.append)
            else:
                payload = b"," + b",".join(_quoted([values[i] for i in layout.append]))
            return _Entry(payload, payload + _LF, outcome, cells=values)
        if layout.tail_fill and layout.tail_extra < 8:
            # The template's empty pbx_* tail is replaced by the values plus the empty columns after them.
            payload = b"," + b",".join(_quoted(values)) + b',""' * layout.tail_extra
            return _Entry(payload, payload + _LF, outcome, cells=values)
        return _Entry(_REWRITE, _REWRITE, outcome, cells=values)

    def _rewrite(self, layout: Layout, row: list[Any], values: Sequence[str], rewriter: _Rewriter) -> bytes:
        row = list(row)
        if self.tolerant:
            encoded = [v.encode("utf-8", "surrogateescape") for v in values]
            for pos, i in layout.fill:
                row[pos] = encoded[i]
            row.extend(encoded[i] for i in layout.append)
            return join_line(row)
        row = [f.decode("utf-8", "surrogateescape") if type(f) is bytes else f for f in row]
        for pos, i in layout.fill:
            row[pos] = values[i]
        row.extend(values[i] for i in layout.append)
        return rewriter.render(row)

    def _slow_reader(self, fin: IO[bytes], lengths: Set[int] | None
                     ) -> tuple[_SlowReader, list[bytes], list[int]]:
        """The reader for every line the loop's fast path does not take: ``slow(raw)`` -> (record bytes, fields
        or None when unreadable), or (None, None) while a quoted field goes on in the next line; ``slow(None)`` at
        the end of the file hands back an unterminated record. Also returns the list of lines of a record still
        going on (while it is not empty, every line belongs to that record and must come here), and a one-item
        list counting the lines that continued a record (for line numbers). A quoted field may go on over at most
        `MAX_RECORD_LINES` lines; a record still open then is handed back as unreadable."""
        tolerant, reader_only = self.tolerant, self.reader_only
        stash = _Stash()
        reader = csv.reader(stash)
        pending: list[bytes] = []
        joined = [0]
        quotes = [0]

        def take() -> bytes:
            record = b"".join(pending)
            joined[0] += len(pending) - 1
            pending.clear()
            return record

        def slow(raw: bytes | None, split_tried: bool = False) -> tuple[bytes | None, list[Any] | None]:
            if raw is None:
                return (take(), None) if pending else (None, None)
            body, _ = _split_eol(raw)
            if tolerant:                 # mod_cdr_csv: one record per line, always
                return raw, (split_line(body, lengths) if body.strip() else None)
            if pending:
                pending.append(raw)
                quotes[0] += raw.count(b'"')
                if quotes[0] & 1:
                    if len(pending) < MAX_RECORD_LINES:
                        return None, None
                    return take(), None
                raw = take()
            else:
                if not split_tried and not reader_only and body[:1] == b'"' and body[-1:] == b'"':
                    fields = body[1:-1].split(b'","')
                    if body.count(b'"') == 2 * len(fields):
                        return raw, fields
                quotes[0] = raw.count(b'"')
                if quotes[0] & 1:            # a quoted field goes on in the next line
                    pending.append(raw)
                    return None, None
            stash.push(raw.decode("utf-8", "surrogateescape"))
            try:
                row = next(reader, None)
            except csv.Error:
                row = None
            stash.clear()
            return raw, row

        return slow, pending, joined


class _Stash:
    """The iterator csv.reader reads from: it hands out the one record pushed, then stops, and can be refilled
    (csv.reader asks its iterator again on every call, so one reader serves the whole file)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[str] = []

    def push(self, text: str) -> None:
        self._items.append(text)

    def clear(self) -> None:
        self._items.clear()

    def __iter__(self) -> _Stash:
        return self

    def __next__(self) -> str:
        if self._items:
            return self._items.pop()
        raise StopIteration


_CATEGORIES = CATEGORY_VALUES | {c.encode() for c in CATEGORY_VALUES}   # fields are str or bytes
_RETRIES = RETRY_VALUES | {r.encode() for r in RETRY_VALUES}


def _first_record(raw: bytes, end: int, fin: IO[bytes], joined: list[int], tolerant: bool) -> tuple[bytes, int]:
    """A malformed record that ran over several lines (an unterminated quote, or one that paired with a quote
    further down) is not one record: only its first line is malformed, and reading goes on right after it (`fin` is
    moved back there). Returns the bytes to copy and the input offset reading goes on from; `end` is where the
    record ended, `joined` the count of continuation lines, corrected."""
    if not tolerant:
        cut = raw.find(_LF)
        if 0 <= cut < len(raw) - 1:
            joined[0] -= raw.count(_LF, 0, len(raw) - 1)
            end = end - len(raw) + cut + 1
            fin.seek(end)
            return raw[:cut + 1], end
    return raw, end


def _appended_done_at(layout: Layout) -> tuple[tuple[int, int], int]:
    """Where the done check of an appending layout looks: the (pbx_category, pbx_retry) positions counted from the
    row's end (the appended block is a row's last fields; Master.csv rows differ in length), and the length a row
    must exceed to be checked at all."""
    cat_from_end = len(layout.append) - layout.append.index(PBX_COLUMNS.index(DONE_COLUMN))
    return (cat_from_end, cat_from_end - 1), len(layout.append) + 1


def enrich_csv(source: Path, output: Path, preset: Preset, annotator: RowAnnotator, **options: Any) -> Summary:
    """Enrich one CSV file into `output` (see `CsvEnricher` for the options)."""
    return CsvEnricher(source, output, preset, annotator, **options).run()


__all__ = ["CsvEnricher", "Layout", "enrich_csv"]
