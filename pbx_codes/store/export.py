"""Unknown codes as a starter catalog: a file in the catalog format that loads as-is and asks a person to review it.

Each entry takes the category, retry and texts of what the resolver fell back to (the class, e.g. `4xx`), so the
file is a working catalog from the first minute, and a `note` marks every entry "TODO review". A code nothing knew
at all gets a placeholder category from its SIP class and says so in its note. Phrases are untrusted network text:
every string is written as an escaped TOML basic string, so no phrase can add a key or a table.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pbx_codes.catalog.schema import fold
from pbx_codes.model import LANGS, Category

_VALID_CATEGORIES = frozenset(c.value for c in Category if c is not Category.UNKNOWN)
_PLACEHOLDER_BY_CLASS = {"3": "config", "4": "request_error", "5": "unavailable", "6": "declined"}


def toml_string(value: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped; lone surrogates replaced."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def catalog_id_for(trunk: str | None) -> str:
    """A valid, distinct catalog id ([a-z0-9_-]+) for the trunk's observed codes."""
    base = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in (trunk or "").lower())
    base = base.strip("-") or "carrier"
    return f"{base}-observed"


def _placeholder_category(code: str) -> str:
    return _PLACEHOLDER_BY_CLASS.get(code[:1], "request_error") if code[:1].isdigit() else "request_error"


def starter_catalog(unknown: Iterable[Mapping[str, Any]], trunk: str | None = None, *, code_space: str = "sip",
                    catalog_id: str | None = None) -> str:
    """The TOML text. `unknown` items: code, phrase, count, category, retry, texts, matched, match_kind, trunk."""
    by_code: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in unknown:
        code = str(item.get("code") or "").strip()
        if code:
            by_code[code].append(item)
    lines = [
        "# Starter catalog: codes seen that no catalog knew exactly, with what pbx-codes fell back to.",
        "# Review every entry marked TODO (category, retry, the three texts), then load it with --catalog-dir.",
        f"id = {toml_string(catalog_id or catalog_id_for(trunk))}",
        f"title = {toml_string((trunk or 'carrier') + ': observed codes')}",
        f"source = {toml_string('codes observed by pbx-codes' + (f' on trunk {trunk}' if trunk else ''))}",
        'original_lang = "en"',
        f"code_space = {toml_string(code_space)}",
        'class_scheme = "none"',
    ]
    if code_space == "sip":
        lines.append('fallback = "sip"')
    for code in sorted(by_code, key=lambda c: (-sum(int(i.get("count") or 0) for i in by_code[c]), c)):
        items = sorted(by_code[code], key=lambda i: -int(i.get("count") or 0))
        used_keys: set[str] = set()
        for index, item in enumerate(items):
            phrase = str(item.get("phrase") or "").strip()
            key = fold(phrase) if phrase else ""
            if index and (not key or key in used_keys):
                continue  # the catalog allows one entry per (code, match): fold this phrase into the first entry
            used_keys.add(key)
            lines += _entry(code, phrase, item, match=bool(index))
    return "\n".join(lines) + "\n"


def _entry(code: str, phrase: str, item: Mapping[str, Any], *, match: bool) -> list[str]:
    category = str(item.get("category") or "")
    kind = str(item.get("match_kind") or "none")
    if category in _VALID_CATEGORIES:
        note = f"TODO review: read as {kind} {item.get('matched') or ''}".rstrip()
    else:
        category = _placeholder_category(code)
        note = f"TODO review: no catalog knew this code; category {category} is a placeholder"
    note += f"; seen {int(item.get('count') or 0)} times"
    if item.get("trunk"):
        note += f" on {item['trunk']}"
    retry = str(item.get("retry") or "no")
    if retry not in ("no", "later", "failover"):
        retry = "no"
    texts = item.get("texts") or {}
    out = ["", "[[entry]]", f"code = {toml_string(code)}"]
    if phrase:
        out.append(f"phrase = {toml_string(phrase)}")
        if match:
            out.append(f"match = {toml_string(phrase)}")
    out += [f"category = {toml_string(category)}", f"retry = {toml_string(retry)}", f"note = {toml_string(note)}",
            "", "[entry.text]"]
    for lang in LANGS:
        text = str(texts.get(lang) or texts.get("en") or phrase or f"TODO: describe code {code}")
        out.append(f"{lang} = {toml_string(text)}")
    return out


__all__ = ["catalog_id_for", "starter_catalog", "toml_string"]
