"""Frozen records for catalogs and the validation that guards them.

A catalog file is data written by people; the loader turns it into these records only when every rule holds, so the
resolver can trust every field without checking it again on the hot path.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pbx_codes import errors
from pbx_codes.model import LANGS, Category, Retry, Side

CODE_SPACES = frozenset({"sip", "q850", "pair", "result", "api"})
CLASS_SCHEMES = frozenset({"digits", "range", "pair", "none"})
CATALOG_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FAULTS = frozenset(s.value for s in Side if s is not Side.UNKNOWN)
_CATEGORIES = frozenset(c.value for c in Category if c is not Category.UNKNOWN)
_RETRIES = frozenset(r.value for r in Retry)


class CatalogError(errors.CatalogError):
    """A catalog file broke a rule. Names the file, the entry and the field so a person can fix it."""

    def __init__(self, path: str, problem: str, entry: str | None = None, field_name: str | None = None) -> None:
        self.path, self.problem, self.entry, self.field_name = path, problem, entry, field_name
        where = path
        if entry is not None:
            where += f": entry {entry}"
        if field_name is not None:
            where += f": field '{field_name}'"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One meaning of one code in one catalog."""

    code: str
    category: Category
    retry: Retry
    texts: Mapping[str, str]
    original_lang: str
    phrase: str | None = None
    match: str | None = None
    match_key: str | None = None  # `match` folded for comparison
    message: bool = False
    methods: frozenset[str] = frozenset()
    fault: Side | None = None
    sip: str | None = None
    q850: int | None = None
    q850_asterisk: int | None = None
    q850_freeswitch: int | None = None
    name: str | None = None
    deprecated: bool = False
    note: str | None = None

    @property
    def original_text(self) -> str:
        """The source document's own words for this entry."""
        return self.texts[self.original_lang]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the file format's field names."""
        out: dict[str, Any] = {"code": self.code}
        for key in ("phrase", "match", "sip", "q850", "q850_asterisk", "q850_freeswitch", "name", "note"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.message:
            out["message"] = True
        if self.methods:
            out["methods"] = sorted(self.methods)
        out["category"] = self.category.value
        out["retry"] = self.retry.value
        if self.fault is not None:
            out["fault"] = self.fault.value
        if self.deprecated:
            out["deprecated"] = True
        out["original"] = self.original_lang
        out["text"] = dict(self.texts)
        return out


@dataclass(frozen=True, slots=True)
class Catalog:
    """A provider's (or a standard's) codes, indexed for the resolver."""

    id: str
    title: str
    source: str
    original_lang: str
    code_space: str
    class_scheme: str
    entries: tuple[Entry, ...]
    classes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fallback: str | None = None
    path: str = ""
    by_code: Mapping[str, tuple[Entry, ...]] = field(default_factory=lambda: MappingProxyType({}))
    messages: tuple[Entry, ...] = ()

    def lookup(self, code: str) -> tuple[Entry, ...]:
        """All entries with exactly this code (several when phrases or methods tell them apart)."""
        return self.by_code.get(code, ())


def fold(text: str) -> str:
    """Case- and whitespace-insensitive form of a phrase, for matching a carrier's words against a catalog's."""
    return " ".join(text.casefold().split())


def _want(path: str, entry: str | None, name: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        kinds = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CatalogError(path, f"must be {kinds}, got {type(value).__name__}", entry, name)
    return value


_ENTRY_KEYS = frozenset({
    "code", "phrase", "match", "message", "methods", "category", "retry", "fault", "sip", "q850", "q850_asterisk",
    "q850_freeswitch", "name", "deprecated", "original", "note", "text",
})
_HEADER_KEYS = frozenset({
    "id", "title", "source", "original_lang", "code_space", "class_scheme", "fallback", "classes", "entry",
})


def _q850(path: str, label: str, raw: dict[str, Any], key: str) -> int | None:
    if key not in raw:
        return None
    value: int = _want(path, label, key, raw[key], int)
    if not 0 <= value <= 127:
        raise CatalogError(path, f"Q.850 cause must be 0-127, got {value}", label, key)
    return value


def build_entry(path: str, index: int, raw: Any, default_lang: str) -> Entry:
    """Validate one `[[entry]]` table into an Entry."""
    label = f"#{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(path, "must be a table", label)
    code = raw.get("code")
    if code is None:
        raise CatalogError(path, "is required", label, "code")
    code = _want(path, label, "code", code, str)
    if not code.strip():
        raise CatalogError(path, "must not be empty", label, "code")
    label = f"#{index + 1} (code {code!r})"
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise CatalogError(path, f"unknown key(s) {sorted(unknown)}", label, sorted(unknown)[0])
    for key, allowed in (("category", _CATEGORIES), ("retry", _RETRIES)):
        if key not in raw:
            raise CatalogError(path, "is required", label, key)
        if _want(path, label, key, raw[key], str) not in allowed:
            raise CatalogError(path, f"{raw[key]!r} is not one of {sorted(allowed)}", label, key)
    fault = raw.get("fault")
    if fault is not None and _want(path, label, "fault", fault, str) not in _FAULTS:
        raise CatalogError(path, f"{fault!r} is not one of {sorted(_FAULTS)}", label, "fault")
    texts = raw.get("text")
    if not isinstance(texts, dict):
        raise CatalogError(path, "is required: a table with uk, ru and en", label, "text")
    for lang in LANGS:
        value = texts.get(lang)
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(path, "must be a non-empty string", label, f"text.{lang}")
    extra_langs = set(texts) - set(LANGS)
    if extra_langs:
        raise CatalogError(path, f"unknown language(s) {sorted(extra_langs)}", label, "text")
    original = raw.get("original", default_lang)
    if original not in LANGS:
        raise CatalogError(path, f"{original!r} is not one of {list(LANGS)}", label, "original")
    methods = raw.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, str) and m for m in methods):
        raise CatalogError(path, "must be a list of method names", label, "methods")
    match = raw.get("match")
    if match is not None and not _want(path, label, "match", match, str).strip():
        raise CatalogError(path, "must not be empty", label, "match")
    message = bool(_want(path, label, "message", raw.get("message", False), bool))
    if message and match is None:
        raise CatalogError(path, "a message entry needs a phrase to match", label, "match")
    for key in ("phrase", "sip", "name", "note"):
        if key in raw:
            _want(path, label, key, raw[key], str)
    return Entry(
        code=code,
        category=Category(raw["category"]),
        retry=Retry(raw["retry"]),
        texts=MappingProxyType({lang: texts[lang] for lang in LANGS}),
        original_lang=original,
        phrase=raw.get("phrase"),
        match=match,
        match_key=fold(match) if match else None,
        message=message,
        methods=frozenset(methods),
        fault=Side(fault) if fault else None,
        sip=raw.get("sip"),
        q850=_q850(path, label, raw, "q850"),
        q850_asterisk=_q850(path, label, raw, "q850_asterisk"),
        q850_freeswitch=_q850(path, label, raw, "q850_freeswitch"),
        name=raw.get("name"),
        deprecated=bool(_want(path, label, "deprecated", raw.get("deprecated", False), bool)),
        note=raw.get("note"),
    )


def build_catalog(path: str, raw: dict[str, Any]) -> Catalog:
    """Validate a whole parsed file into a Catalog; raise CatalogError on the first broken rule."""
    unknown = set(raw) - _HEADER_KEYS
    if unknown:
        raise CatalogError(path, f"unknown top-level key(s) {sorted(unknown)}", None, sorted(unknown)[0])
    for key in ("id", "title", "source", "original_lang", "code_space", "class_scheme"):
        if key not in raw:
            raise CatalogError(path, "is required", None, key)
        _want(path, None, key, raw[key], str)
    if not CATALOG_ID.match(raw["id"]):
        raise CatalogError(path, f"{raw['id']!r} must match {CATALOG_ID.pattern}", None, "id")
    if raw["original_lang"] not in LANGS:
        raise CatalogError(path, f"{raw['original_lang']!r} is not one of {list(LANGS)}", None, "original_lang")
    if raw["code_space"] not in CODE_SPACES:
        raise CatalogError(path, f"{raw['code_space']!r} is not one of {sorted(CODE_SPACES)}", None, "code_space")
    if raw["class_scheme"] not in CLASS_SCHEMES:
        raise CatalogError(path, f"{raw['class_scheme']!r} is not one of {sorted(CLASS_SCHEMES)}", None,
                           "class_scheme")
    fallback = raw.get("fallback")
    if fallback is not None:
        _want(path, None, "fallback", fallback, str)
    raw_entries = raw.get("entry", [])
    if not isinstance(raw_entries, list) or not raw_entries:
        raise CatalogError(path, "a catalog needs at least one [[entry]]", None, "entry")
    entries = tuple(build_entry(path, i, e, raw["original_lang"]) for i, e in enumerate(raw_entries))
    seen: dict[tuple[str, str | None, frozenset[str]], int] = {}
    by_code: dict[str, list[Entry]] = {}
    for i, entry in enumerate(entries):
        same = (entry.code, entry.match_key, entry.methods)
        if same in seen:
            raise CatalogError(path, f"duplicates entry #{seen[same] + 1}", f"#{i + 1} (code {entry.code!r})", "code")
        seen[same] = i
        by_code.setdefault(entry.code, []).append(entry)
    classes = raw.get("classes", {})
    if not isinstance(classes, dict):
        raise CatalogError(path, "must be a table of pattern = code", None, "classes")
    for pattern, target in classes.items():
        if not isinstance(target, str) or target not in by_code:
            raise CatalogError(path, f"class {pattern!r} points to {target!r}, which is no entry's code", None,
                               f"classes.{pattern}")
        if raw["class_scheme"] == "range" and not re.fullmatch(r"\d+-\d+", pattern):
            raise CatalogError(path, f"range class {pattern!r} must look like 32-47", None, f"classes.{pattern}")
    # Entries told apart by phrase go first, so the resolver can take the first that fits.
    ordered = {code: tuple(sorted(group, key=lambda e: e.match_key is None)) for code, group in by_code.items()}
    return Catalog(
        id=raw["id"], title=raw["title"], source=raw["source"], original_lang=raw["original_lang"],
        code_space=raw["code_space"], class_scheme=raw["class_scheme"], entries=entries,
        classes=MappingProxyType(dict(classes)), fallback=fallback, path=path,
        by_code=MappingProxyType(ordered), messages=tuple(e for e in entries if e.message),
    )
