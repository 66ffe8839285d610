"""`pbx-codes enrich`: add the pbx_* annotation to CDRs that already exist (files, SQLite, PostgreSQL).

Files are enriched into a new file beside the old one; tables are annotated in place, one batch per transaction,
only where ``pbx_category`` is still empty. Either way a row that has an annotation is never touched again, and a
stopped run resumes where it stopped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pbx_codes.enrich.files import EnrichError, enriched_path
from pbx_codes.enrich.interpret import RowAnnotator
from pbx_codes.enrich.mapping import PBX_COLUMNS, PRESETS, ColumnMap, MappingError, Preset, get_preset
from pbx_codes.enrich.summary import Summary


def enrich_file(source: Path, preset: Preset, annotator: RowAnnotator, *, output: Path | None = None,
                **options: Any) -> Summary:
    """Enrich a CSV or JSON CDR file (or a folder of json_cdr files) into `output` (default: beside it)."""
    source = Path(source)
    target = Path(output) if output else enriched_path(source)
    if preset.kind == "csv":
        from pbx_codes.enrich.csv_engine import enrich_csv
        return enrich_csv(source, target, preset, annotator, **options)
    if preset.kind == "json":
        from pbx_codes.enrich.json_engine import enrich_json
        return enrich_json(source, target, preset, annotator, **options)
    raise EnrichError(f"preset {preset.name} reads a database table, not a file")


__all__ = ["ColumnMap", "EnrichError", "MappingError", "PBX_COLUMNS", "PRESETS", "Preset", "RowAnnotator", "Summary",
           "enrich_file", "enriched_path", "get_preset"]
