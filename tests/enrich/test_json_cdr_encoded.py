"""`enrich` on mod_json_cdr documents in both encode-values forms: the cause is read decoded from an URL-encoded
document (FreeSWITCH's default), a plain document is read as written, and each keeps its own form."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from backfill.json_cdr import json_cdr_document, legs_of
from observers.freeswitch_live2 import capture_bytes
from pbx_codes.enrich import enrich_file
from pbx_codes.enrich.mapping import get_preset


def b_leg_document(encode_values: bool, phrase: str) -> dict:
    (b1, *_) = legs_of(capture_bytes("failover_503_then_486.bridge"))
    # as if the hook had not run: no pbx_* values yet (the dialplan's pbx_codes_* tags stay)
    b1 = {k: v for k, v in b1.items() if not k.startswith("variable_pbx_") or k.startswith("variable_pbx_codes_")}
    return json_cdr_document(dict(b1, variable_sip_invite_failure_phrase=phrase), encode_values=encode_values)


def enriched(tmp_path: Path, doc: dict, make_annotator) -> dict:
    source = tmp_path / "leg.cdr.json"
    source.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    enrich_file(source, get_preset("freeswitch-json"), make_annotator("freeswitch"), progress=False)
    return json.loads((tmp_path / "leg.cdr.enriched.json").read_text())["variables"]


def test_an_url_encoded_document_is_read_decoded_and_annotated_in_its_own_form(tmp_path: Path,
                                                                              make_annotator) -> None:
    out = enriched(tmp_path, b_leg_document(True, "Service Unavailable"), make_annotator)
    assert out["pbx_code"] == "503" and out["pbx_phrase"] == "Service%20Unavailable"
    assert unquote(out["pbx_phrase"]) == "Service Unavailable" and " " not in out["pbx_reason"]


def test_a_plain_document_keeps_a_literal_percent_escape(tmp_path: Path, make_annotator) -> None:
    out = enriched(tmp_path, b_leg_document(False, "Service %41 Unavailable"), make_annotator)
    assert out["pbx_phrase"] == "Service %41 Unavailable" and " " in out["pbx_reason"]
