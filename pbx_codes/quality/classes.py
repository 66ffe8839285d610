"""Outcome classes of a seizure and the RFC 6076 response sets, read from data (never hard-coded in a measure).

The default table is ``data/classes.toml`` (each class with its source); ``[quality]`` in ``pbx-codes.toml`` may
replace a class's categories or its NER flag, add a class, or replace an RFC 6076 code set:

    [quality]
    [[quality.class]]
    name = "caller_abandon"
    categories = ["cancelled"]
    ner = false                 # count abandoned calls against the network
    [quality.rfc6076]
    isa = ["408", "500", "503", "504", "502"]
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pbx_codes.config import QualitySection, parse_table, to_table
from pbx_codes.errors import ConfigError
from pbx_codes.model import Category

DATA = Path(__file__).with_name("data") / "classes.toml"
FALLBACK_CLASS = "other"
RESPONSE_SETS = ("ser", "seer", "isa")
#: Outcomes whose INVITE our side cancelled (Outcome values): the carrier's response was 487.
CANCELLED_OUTCOMES = frozenset({"ring_timeout", "caller_cancel"})
#: Outcomes of an attempt that may have sent no INVITE (Outcome values): a trunk marked down, no route, the PBX's
#: own limit. Without any SIP response (not even one the PBX made up) no INVITE went out.
NO_INVITE_OUTCOMES = frozenset({"unreachable", "pbx_limit"})
#: The response bucket of an attempt that sent no INVITE: a seizure (ASR, NER) but no session request (RFC 6076).
NOT_SENT = "not_sent"
_SIP: Any = object()  # `ClassTable.response`'s default code: the SIP code it is given
_CATEGORIES = frozenset(c.value for c in Category)


class QualityConfigError(ConfigError):
    """A class table (shipped or from ``[quality]``) that does not describe classes."""


@dataclass(frozen=True, slots=True)
class OutcomeClass:
    name: str
    categories: tuple[str, ...]
    ner: bool
    source: str = ""


@dataclass(frozen=True, slots=True)
class ClassTable:
    """Category -> class, each class's NER flag, and the RFC 6076 response-code sets."""

    classes: tuple[OutcomeClass, ...]
    rfc6076: Mapping[str, frozenset[str]]
    source: str = ""
    by_category: Mapping[str, OutcomeClass] = field(init=False)
    ner_classes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        table: dict[str, OutcomeClass] = {}
        for cls in self.classes:
            for category in cls.categories:
                table[category] = cls
        object.__setattr__(self, "by_category", MappingProxyType(table))
        object.__setattr__(self, "ner_classes", frozenset(c.name for c in self.classes if c.ner))

    def classify(self, category: str | None) -> OutcomeClass:
        """The class of a category; a category no class names falls in `other` (a network failure)."""
        found = self.by_category.get(category or "unknown")
        if found is not None:
            return found
        return self.by_category.get("unknown") or OutcomeClass(FALLBACK_CLASS, (), False)

    def response(self, sip: str | None, outcome: str | None = None, code: Any = _SIP) -> str:
        """The RFC 6076 bucket of a final response: ``200``, ``effective`` (SEER's other codes), ``ineffective``
        (ISA's), ``redirect`` (3xx, out of SER's and SEER's denominators) or ``other``. A leg our side ended (its
        dial timer, or the caller's cancel) got the 487 its CANCEL produced, whatever the cause's SIP equivalent.
        An attempt that sent no INVITE is `NOT_SENT`: out of every RFC 6076 ratio, which count INVITEs. `code` is
        the code the leg got (the carrier's, or one the PBX made up), when `sip` may be an equivalent the catalogs
        gave a Q.850 cause (``404`` for cause 3, no route); by default `sip` is that code."""
        if outcome in NO_INVITE_OUTCOMES and not (sip if code is _SIP else code):
            return NOT_SENT
        if not sip or outcome in CANCELLED_OUTCOMES:
            return "other"
        if sip in self.rfc6076["ser"]:
            return "200"
        if sip in self.rfc6076["seer"]:
            return "effective"
        if sip in self.rfc6076["isa"]:
            return "ineffective"
        if len(sip) == 3 and sip[0] == "3":
            return "redirect"
        return "other"

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": c.name, "categories": list(c.categories), "ner": c.ner, "source": c.source}
                for c in self.classes]


def _parse_class(raw: Any, where: str) -> OutcomeClass:
    if not isinstance(raw, dict):
        raise QualityConfigError(f"{where}: must be a table")
    unknown = set(raw) - {"name", "categories", "ner", "source"}
    if unknown:
        raise QualityConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise QualityConfigError(f"{where}: name must be a word (letters, digits, _), got {name!r}")
    categories = raw.get("categories")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise QualityConfigError(f"{where} ({name}): categories must be a list of category names")
    bad = [c for c in categories if c not in _CATEGORIES]
    if bad:
        raise QualityConfigError(f"{where} ({name}): unknown categories {bad}; known: {sorted(_CATEGORIES)}")
    ner = raw.get("ner")
    if not isinstance(ner, bool):
        raise QualityConfigError(f"{where} ({name}): ner must be true or false")
    source = raw.get("source", "")
    if not isinstance(source, str):
        raise QualityConfigError(f"{where} ({name}): source must be text")
    return OutcomeClass(name, tuple(categories), ner, source)


def _parse_codes(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(c, str) and len(c) == 3 and c.isdigit() for c in raw):
        raise QualityConfigError(f"{where}: must be a list of three-digit SIP codes as strings")
    return frozenset(raw)


def build_table(raw: Mapping[str, Any], override: Mapping[str, Any] | None = None,
                where: str = "classes") -> ClassTable:
    """The shipped table with ``override`` (the ``[quality]`` section) applied on top; every mistake is named."""
    classes: dict[str, OutcomeClass] = {}
    for i, item in enumerate(raw.get("class", [])):
        cls = _parse_class(item, f"{where}: [[class]] #{i + 1}")
        classes[cls.name] = cls
    rfc = {name: _parse_codes(raw.get("rfc6076", {}).get(name), f"{where}: rfc6076.{name}") for name in RESPONSE_SETS}
    if override:
        unknown = set(override) - {"class", "rfc6076"}
        if unknown:
            raise QualityConfigError(f"[quality]: unknown key(s) {sorted(unknown)}")
        items = override.get("class", [])
        if not isinstance(items, list):
            raise QualityConfigError("[quality]: class must be an array of tables ([[quality.class]])")
        for i, item in enumerate(items):
            cls = _parse_class(item, f"[[quality.class]] #{i + 1}")
            for other in list(classes.values()):  # a category belongs to one class: the override takes it
                if other.name != cls.name and set(other.categories) & set(cls.categories):
                    rest = tuple(c for c in other.categories if c not in cls.categories)
                    classes[other.name] = OutcomeClass(other.name, rest, other.ner, other.source)
            classes[cls.name] = cls
        sets = override.get("rfc6076", {})
        if not isinstance(sets, dict) or set(sets) - set(RESPONSE_SETS):
            raise QualityConfigError(f"[quality.rfc6076]: only {list(RESPONSE_SETS)} may be set")
        for name, codes in sets.items():
            rfc[name] = _parse_codes(codes, f"[quality.rfc6076] {name}")
    return ClassTable(tuple(classes.values()), MappingProxyType(rfc), str(raw.get("source", "")))


def load_table(override: QualitySection | Mapping[str, Any] | None = None, path: Path = DATA) -> ClassTable:
    """The class table: the shipped data file, with the ``[quality]`` section applied (a table is read through
    `pbx_codes.config`, which checks keys and types; here, what the classes mean)."""
    if override is not None:
        override = to_table(parse_table(QualitySection, override, section="quality", error=QualityConfigError))
    return build_table(tomllib.loads(path.read_text(encoding="utf-8")), override, where=path.name)


__all__ = ["ClassTable", "DATA", "NOT_SENT", "NO_INVITE_OUTCOMES", "OutcomeClass", "QualityConfigError", "build_table",
           "load_table"]
