"""Trunk quality: ASR, NER, SER/SEER/ISA, SRD, PDD and ACD per carrier, from the same annotated legs.

- `classes`: which category counts as which outcome class (data: ``data/classes.toml``, overridable in
  ``pbx-codes.toml`` under ``[quality]``), and the RFC 6076 response-code sets;
- `legs`: one seizure's facts (`Leg`) from an annotation, a store row or a CDR row;
- `measures`: the measures over a set of legs (`TrunkQuality`), with their distributions;
- `report`: per trunk, per hour or day, as text, CSV, JSON or one self-contained HTML page;
- `cdr`: legs read directly from CDR files through the ``enrich`` presets.
"""
