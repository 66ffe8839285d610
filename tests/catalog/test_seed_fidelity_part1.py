"""The lifecell, callback and sipcall catalogs say exactly what their seed documents say.

The seed documents are the ground truth: every code, reason phrase and original text a provider wrote must appear
byte for byte in its catalog, nothing may be invented beside them, and every entry must carry the three languages and
a countable category and retry advice. Each seed is read by a small parser that follows that document's own layout.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pbx_codes.model import LANGS, Category, Retry, Side

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"
DATA_DIR = REPO_ROOT / "pbx_codes" / "catalog" / "data"

LIFECELL_SEED = "000_57950a0f4e3f8fc9.txt"
CALLBACK_SEED = "001_7ae270894a46dd69.txt"
SIPCALL_SEED = "002_673de1e3592e52be.txt"

CATALOG_CATEGORIES = {c.value for c in Category} - {Category.UNKNOWN.value}
RETRIES = {r.value for r in Retry}
FAULTS = {s.value for s in Side} - {Side.UNKNOWN.value}


@dataclass(frozen=True, slots=True)
class SeedEntry:
    """One meaning as the provider's document states it."""

    code: str
    phrase: str | None
    text: str
    match: str | None = None
    message: bool = False


# ----------------------------------------------------------------------------------------------- seed parsers


def read_seed(name: str) -> str:
    """The seed's text, or a skip when the shared reference material is not beside the repository."""
    path = SEEDS_DIR / name
    if not path.is_file():
        pytest.skip(f"seed document {path} is not available (the shared reference material sits beside the repo)")
    return path.read_text(encoding="utf-8")


def parse_lifecell(document: str) -> list[SeedEntry]:
    """Bullets ``* **CODE Phrase**, text``: bold heads, then the description.

    The heads come in several spellings: the comma inside or outside the bold, no space after it, a second bold head
    that refines the phrase (``**500 Service Unavailable**. **X-FWD-Original incorrect**``) or a second code sharing
    the same description (``**501 Not Implemented**, **502 Bad Gateway**``).
    """
    entries: list[SeedEntry] = []
    for line in document.splitlines():
        if not line.startswith("* **"):
            continue
        body = line[2:]
        heads: list[list[str]] = []  # [code, phrase, refinement or ""]
        pos = 0
        while body.startswith("**", pos):
            end = body.index("**", pos + 2)
            head = body[pos + 2 : end].rstrip(", ")
            pos = end + 2
            code_head = re.fullmatch(r"(\d{3}) (.+)", head)
            if code_head:
                heads.append([code_head[1], code_head[2], ""])
            else:
                heads[-1][2] = head
            while pos < len(body) and body[pos] in ",. ":
                pos += 1
        text = body[pos:]
        for code, phrase, refinement in heads:
            full_phrase = f"{phrase}. {refinement}" if refinement else phrase
            entries.append(SeedEntry(code, full_phrase, text, match=refinement or None))
    return entries


def parse_callback(document: str) -> list[SeedEntry]:
    """A markdown table ``| first/second | description |``; cells are trimmed, nothing else is touched."""
    entries: list[SeedEntry] = []
    for line in document.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not re.fullmatch(r"\d+/\d+", cells[1].strip()):
            continue
        entries.append(SeedEntry(cells[1].strip(), None, cells[2].strip()))
    return entries


def parse_sipcall(document: str) -> list[SeedEntry]:
    """A flattened table ``CODE`` + ``Error Message`` + ``Error CODE ...`` per line, then ``Message "..."`` sections.

    A message's explanation is everything between its heading and the next heading (or the end), trimmed.
    """
    entries: list[SeedEntry] = []
    message: str | None = None
    explanation: list[str] = []

    def close_message() -> None:
        if message is not None:
            text = "\n".join(explanation).strip()
            entries.append(SeedEntry(message, message, text, match=message, message=True))

    for line in document.splitlines():
        heading = re.fullmatch(r'Message "(.+)"', line)
        if heading:
            close_message()
            message, explanation = heading[1], []
        elif message is not None:
            explanation.append(line)
        else:
            row = re.fullmatch(r"(\d{3})(.+?)(Error \1\b.*)", line)
            if row:
                entries.append(SeedEntry(row[1], row[2], row[3]))
    close_message()
    return entries


@dataclass(frozen=True, slots=True)
class CatalogCase:
    """A catalog file, the seed it comes from, and what its header must say."""

    catalog_id: str
    seed: str
    parse: Any
    original_lang: str
    code_space: str
    class_scheme: str
    expected_count: int


CASES = [
    CatalogCase("lifecell", LIFECELL_SEED, parse_lifecell, "uk", "sip", "none", 19),
    CatalogCase("callback", CALLBACK_SEED, parse_callback, "ru", "pair", "pair", 67),
    CatalogCase("sipcall", SIPCALL_SEED, parse_sipcall, "en", "sip", "none", 18),
]


def load_catalog(catalog_id: str) -> dict[str, Any]:
    with (DATA_DIR / f"{catalog_id}.toml").open("rb") as handle:
        return tomllib.load(handle)


def seed_entries(case: CatalogCase) -> list[SeedEntry]:
    return case.parse(read_seed(case.seed))


def by_case(test):
    return pytest.mark.parametrize("case", CASES, ids=[c.catalog_id for c in CASES])(test)


# ----------------------------------------------------------------------------------------------- the parsers


def test_lifecell_parser_reads_every_head_spelling() -> None:
    document = (
        "* **400 Bad Request, **помилка.\n"
        "* **409 Not enough money**,гроші.\n"
        "* **486 Busy Here,** зайнято.\n"
        "* **500 Service Unavailable**. **X-FWD-Original incorrect**, переадресація.\n"
        "* **501 Not Implemented**, **502 Bad Gateway**, напрямок.\n"
    )
    assert parse_lifecell(document) == [
        SeedEntry("400", "Bad Request", "помилка."),
        SeedEntry("409", "Not enough money", "гроші."),
        SeedEntry("486", "Busy Here", "зайнято."),
        SeedEntry("500", "Service Unavailable. X-FWD-Original incorrect", "переадресація.",
                  match="X-FWD-Original incorrect"),
        SeedEntry("501", "Not Implemented", "напрямок."),
        SeedEntry("502", "Bad Gateway", "напрямок."),
    ]


def test_sipcall_parser_keeps_message_lines_and_trims_only_the_ends() -> None:
    document = '404Not FoundError 404 indicates x.\nMessage "A"\n\nline one\n  • item\n\nMessage "B"\nonly\n'
    assert parse_sipcall(document) == [
        SeedEntry("404", "Not Found", "Error 404 indicates x."),
        SeedEntry("A", "A", "line one\n  • item", match="A", message=True),
        SeedEntry("B", "B", "only", match="B", message=True),
    ]


@by_case
def test_seed_parser_finds_every_entry_of_the_document(case: CatalogCase) -> None:
    assert len(seed_entries(case)) == case.expected_count


# ----------------------------------------------------------------------------------------------- fidelity


@by_case
def test_catalog_header_names_the_seed_language_and_code_space(case: CatalogCase) -> None:
    catalog = load_catalog(case.catalog_id)
    assert catalog["id"] == case.catalog_id
    assert catalog["original_lang"] == case.original_lang
    assert catalog["code_space"] == case.code_space
    assert catalog["class_scheme"] == case.class_scheme
    assert catalog["fallback"] == "sip"


@by_case
def test_every_seed_entry_is_in_the_catalog_byte_exact(case: CatalogCase) -> None:
    catalog = load_catalog(case.catalog_id)
    lang = case.original_lang
    missing = []
    for seed in seed_entries(case):
        found = [
            e
            for e in catalog["entry"]
            if e["code"] == seed.code
            and e.get("phrase") == seed.phrase
            and e.get("match") == seed.match
            and bool(e.get("message", False)) == seed.message
            and e["text"][lang] == seed.text
        ]
        if len(found) != 1:
            missing.append(seed)
    assert missing == []


@by_case
def test_catalog_invents_no_entry_beyond_the_seed(case: CatalogCase) -> None:
    catalog = load_catalog(case.catalog_id)
    seed_keys = sorted((s.code, s.match or "") for s in seed_entries(case))
    catalog_keys = sorted((e["code"], e.get("match", "")) for e in catalog["entry"])
    assert catalog_keys == seed_keys


@by_case
def test_every_entry_speaks_all_three_languages(case: CatalogCase) -> None:
    catalog = load_catalog(case.catalog_id)
    incomplete = [
        e["code"]
        for e in catalog["entry"]
        if set(e["text"]) != set(LANGS) or any(not isinstance(t, str) or not t.strip() for t in e["text"].values())
    ]
    assert incomplete == []


@by_case
def test_every_entry_has_a_valid_category_retry_and_equivalents(case: CatalogCase) -> None:
    catalog = load_catalog(case.catalog_id)
    invalid = []
    for e in catalog["entry"]:
        ok = (
            e.get("category") in CATALOG_CATEGORIES
            and e.get("retry") in RETRIES
            and e.get("fault", "caller") in FAULTS
            and (isinstance(e.get("q850", 0), int) and 0 <= e.get("q850", 0) <= 127)
            and re.fullmatch(r"[1-6]\d\d", e.get("sip", "200")) is not None
        )
        if not ok:
            invalid.append(e["code"])
    assert invalid == []


def test_lifecell_provider_meanings_override_the_standard_ones() -> None:
    entries = {(e["code"], e.get("match")): e for e in load_catalog("lifecell")["entry"]}
    assert entries[("409", None)]["category"] == "billing"
    assert (entries[("487", None)]["category"], entries[("487", None)]["retry"]) == ("cancelled", "no")
    assert entries[("500", "X-FWD-Original incorrect")]["phrase"] == "Service Unavailable. X-FWD-Original incorrect"
    assert entries[("501", None)]["text"] == entries[("502", None)]["text"]


def test_sip_catalogs_name_each_code_as_its_own_sip_equivalent() -> None:
    for catalog_id in ("lifecell", "sipcall"):
        for e in load_catalog(catalog_id)["entry"]:
            if not e.get("message", False):
                assert e["sip"] == e["code"], (catalog_id, e["code"])


def test_callback_sip_equivalent_is_the_failing_legs_code() -> None:
    for e in load_catalog("callback")["entry"]:
        if "sip" not in e:
            continue
        first, second = e["code"].split("/")
        failing = second if first in ("200", "101") else first
        assert e["sip"] == failing, e["code"]
