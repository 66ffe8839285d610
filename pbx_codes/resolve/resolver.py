"""The pure resolver: an Observation and the catalogs in, an Annotation out. No I/O, never raises.

Order of precedence (the order a NOC engineer reads a failure in): the provider's phrase-specific entry, the
provider's code, the provider's class, the standard code, the standard class, and last the Q.850 cause. A code no
catalog knows still gets an annotation, by class or as `unknown`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pbx_codes.catalog.loader import CatalogSet
from pbx_codes.catalog.schema import Catalog, Entry, fold
from pbx_codes.model import Annotation, Category, Observation, Resolution, Retry, Side
from pbx_codes.resolve.outcome import refine

_UNKNOWN_TEXTS = MappingProxyType({
    "uk": "Причина невідома: жоден каталог не знає цього коду.",
    "ru": "Причина неизвестна: ни один каталог не знает этого кода.",
    "en": "Unknown reason: no catalog knows this code.",
})
_CACHE_LIMIT = 65536


def _digit_patterns(code: str) -> list[str]:
    """Class patterns for a numeric code, nearest first: 2219 -> 221x, 22xx, 2xxx."""
    if not code.isdigit():
        return []
    return [code[: len(code) - n] + "x" * n for n in range(1, len(code))]


_MAX_NUMBER_DIGITS = 18
"""Longer than any code a catalog holds; `int()` of a longer network string is work (and past 4,300 digits an
error) for nothing."""


def _number(code: str) -> int | None:
    """The code as a number when it is one `int()` reads: `isdigit()` also accepts `²`, which `int()` refuses."""
    if code.isdecimal() and len(code) <= _MAX_NUMBER_DIGITS:
        return int(code)
    return None


def _in_range(code: str, pattern: str) -> bool:
    low, _, high = pattern.partition("-")
    number = _number(code)
    return number is not None and int(low) <= number <= int(high)


def failing_leg(pair: str) -> str | None:
    """The SIP code that explains an `A/B` pair: the client leg's when the manager leg was answered, else the first."""
    first, sep, second = pair.partition("/")
    if not sep:
        return None
    if first.startswith("2") and second not in ("", "0"):
        return second
    return first or None


@dataclass(slots=True)
class Resolver:
    """Resolves observations against a catalog set; `bindings` map a trunk or gateway name to its catalog."""

    catalogs: CatalogSet
    bindings: Mapping[str, str] = field(default_factory=dict)
    default_catalog: str = "sip"
    q850_catalog: str = "q850"
    _cache: dict[tuple[object, ...], Resolution] = field(default_factory=dict, repr=False)

    def resolve(self, obs: Observation) -> Annotation:
        """The annotation for one observed leg."""
        key = (obs.catalog, obs.trunk, obs.sip_code, obs.phrase, obs.q850, obs.provider_code, obs.method,
               obs.outcome)
        resolution = self._cache.get(key)
        if resolution is None:
            resolution = refine(self._resolve_uncached(obs), obs.outcome)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = resolution
        return Annotation(resolution, obs)

    def lookup(self, code: str | None, phrase: str | None = None, *, catalog: str | None = None,
               method: str | None = None, q850: int | None = None) -> Annotation:
        """A lookup without a call around it, as the CLI and the dialplan `lookup` ask it."""
        target = self.catalogs.get(catalog)
        if target is not None and target.code_space == "q850" and code and q850 is None:
            q850 = _number(code)
        return self.resolve(Observation(sip_code=code, provider_code=code, phrase=phrase, catalog=catalog,
                                        method=method, q850=q850))

    def catalog_for(self, obs: Observation) -> Catalog | None:
        """The catalog an observation names, or its trunk's binding, or the default."""
        for candidate in (obs.catalog, self.bindings.get(obs.trunk or "", None), self.default_catalog):
            found = self.catalogs.get(candidate)
            if found is not None:
                return found
        return None

    def _chain(self, first: Catalog | None) -> list[Catalog]:
        chain: list[Catalog] = []
        while first is not None and first not in chain:
            chain.append(first)
            first = self.catalogs.get(first.fallback)
        return chain

    def _resolve_uncached(self, obs: Observation) -> Resolution:
        phrase = obs.phrase.strip() if obs.phrase else None
        folded = fold(phrase) if phrase else ""
        chain = self._chain(self.catalog_for(obs))
        for catalog in chain:
            code = self._code_in(catalog, obs)
            found = self._match(catalog, code, folded, obs.method)
            if found is not None:
                entry, matched, kind, exact = found
                return self._from_entry(catalog, entry, code, phrase, matched, kind, exact)
        observed = obs.sip_code or obs.provider_code
        if obs.q850 is not None:
            q_catalog = self.catalogs.get(self.q850_catalog)
            if q_catalog is not None:
                found = self._match(q_catalog, str(obs.q850), "", None)
                if found is not None:
                    entry, matched, _, _ = found
                    return self._from_entry(q_catalog, entry, observed, phrase, matched, "q850", False)
        return Resolution(
            catalog=chain[0].id if chain else "", code=observed, phrase=phrase, matched=None, exact=False,
            match_kind="none", category=Category.UNKNOWN, retry=Retry.NO, fault=None, sip=obs.sip_code,
            q850=obs.q850, texts=_UNKNOWN_TEXTS, original_lang=None,
        )

    @staticmethod
    def _code_in(catalog: Catalog, obs: Observation) -> str | None:
        """The observed code in this catalog's code space (a callback pair read as SIP in a SIP catalog)."""
        if catalog.code_space == "sip":
            code = obs.sip_code or obs.provider_code
            if code and "/" in code:
                return failing_leg(code)
            return code
        if catalog.code_space == "q850":
            return str(obs.q850) if obs.q850 is not None else None
        return obs.provider_code or obs.sip_code

    def _match(self, catalog: Catalog, code: str | None, folded: str, method: str | None
               ) -> tuple[Entry, str, str, bool] | None:
        if folded:
            for entry in catalog.lookup(code or ""):
                if entry.match_key and entry.match_key in folded and _method_fits(entry, method):
                    return entry, entry.code, "phrase", True
            for entry in catalog.messages:
                if entry.match_key and entry.match_key in folded:
                    return entry, entry.code, "phrase", True
        if not code:
            return None
        plain = [e for e in catalog.lookup(code) if e.match_key is None and _method_fits(e, method)]
        if plain:
            if method:
                plain.sort(key=lambda e: not e.methods)  # an entry scoped to the method beats a general one
            distinct = {e.texts["en"] for e in plain}
            return plain[0], code, "code", len(distinct) == 1 or bool(method and plain[0].methods)
        named = [e for e in catalog.lookup(code) if e.message]
        if named:  # a provider message looked up by its own words
            return named[0], code, "code", True
        pattern = self._class_of(catalog, code)
        if pattern is not None:
            target = catalog.classes.get(pattern, pattern)
            entries = catalog.lookup(target)
            if entries:
                return entries[-1], pattern, "class", False
        return None

    @staticmethod
    def _class_of(catalog: Catalog, code: str) -> str | None:
        if catalog.class_scheme == "digits":
            for pattern in _digit_patterns(code):
                if pattern in catalog.classes or catalog.lookup(pattern):
                    return pattern
        elif catalog.class_scheme == "range":
            for pattern in catalog.classes:
                if _in_range(code, pattern):
                    return pattern
        return None

    @staticmethod
    def _from_entry(catalog: Catalog, entry: Entry, code: str | None, phrase: str | None, matched: str,
                    kind: str, exact: bool) -> Resolution:
        return Resolution(
            catalog=catalog.id, code=code, phrase=phrase, matched=matched, exact=exact, match_kind=kind,
            category=entry.category, retry=entry.retry, fault=entry.fault, sip=entry.sip, q850=entry.q850,
            texts=entry.texts, original_lang=entry.original_lang,
        )


def _method_fits(entry: Entry, method: str | None) -> bool:
    return not method or not entry.methods or method in entry.methods


__all__ = ["Resolver", "Side", "failing_leg"]
