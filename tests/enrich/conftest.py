"""Fixtures of the enrich tests (the helpers live in cdr_inputs.py)."""
from enrich.cdr_inputs import enrich_catalogs, make_annotator  # noqa: F401 - pytest fixtures
