"""Which column of a CDR holds what: the logical fields enrich reads, and presets for the common CDR templates.

A CDR template is the operator's choice, so the reader never assumes a layout: a `ColumnMap` names, for each
logical field, the columns that may hold it, best first (the first non-empty one wins). Candidates a table or a
header does not have are simply not used, so one preset fits the stock template and the project's own template.
Headerless files (cdr_csv's Master.csv, cdr_custom, mod_cdr_csv) need the column names too: `Preset.columns`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from pbx_codes.errors import InputError

#: The fields that decide the annotation. Only these make up the cache key, so ids never defeat the cache.
KEY_FIELDS: tuple[str, ...] = (
    "sip_code",       # a SIP status, also as ``sip:409`` (FreeSWITCH proto_specific_hangup_cause)
    "phrase",         # the carrier's reason phrase
    "rawcause",       # Asterisk HANGUPCAUSE(<leg>,tech): ``SIP 409 Not enough money`` (code and phrase in one)
    "q850",           # a Q.850 cause: a number, a FreeSWITCH name, an Asterisk cause text or a Reason header
    "disposition",    # the CDR disposition (ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION): the coarsest hint
    "catalog",        # a catalog id the dialplan recorded (pbx_catalog set before the annotation)
    "trunk",          # the trunk or gateway name, for catalog bindings
    "channel",        # a dialed channel name the trunk can be read from (PJSIP/trunk-00000009)
)
#: Fields carried for the reader's benefit only (progress, messages); never part of the cache key.
ID_FIELDS: tuple[str, ...] = ("uniqueid", "linkedid")
FIELDS: tuple[str, ...] = KEY_FIELDS + ID_FIELDS

#: The columns enrich writes, in this order when it has to append them.
PBX_COLUMNS: tuple[str, ...] = ("pbx_catalog", "pbx_code", "pbx_phrase", "pbx_category", "pbx_retry", "pbx_reason",
                                "pbx_q850", "pbx_exact")
#: The column whose presence says "this row is annotated already".
DONE_COLUMN = "pbx_category"


class MappingError(InputError):
    """A preset name, a ``--map`` override or a column list that does not fit."""


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Logical field -> candidate column names, best first."""

    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def candidates(self, name: str) -> tuple[str, ...]:
        return self.columns.get(name, ())

    def with_overrides(self, overrides: Mapping[str, tuple[str, ...]]) -> ColumnMap:
        """A copy where each overridden field reads only the given columns (an empty tuple: the field is unused)."""
        merged = dict(self.columns)
        merged.update(overrides)
        return ColumnMap(merged)

    def bind(self, available: Sequence[str]) -> dict[str, tuple[int, ...]]:
        """Field -> the positions of its candidate columns that exist in `available`, in candidate order."""
        positions = {name: i for i, name in reversed(list(enumerate(available)))}
        bound: dict[str, tuple[int, ...]] = {}
        for name, candidates in self.columns.items():
            found = tuple(positions[c] for c in candidates if c in positions)
            if found:
                bound[name] = found
        return bound


@dataclass(frozen=True, slots=True)
class Preset:
    """A CDR template: its storage format, its columns when the file has no header, and where each field lives."""

    name: str
    pbx: str                      # asterisk | freeswitch: how pbx_exact is spelled (1/0 or true/false)
    kind: str                     # csv | json | sqlite | pgsql
    mapping: ColumnMap
    columns: tuple[str, ...] | None = None   # headerless CSV layouts; None: the first row is a header
    tolerant: bool = False        # mod_cdr_csv: quotes inside a value are not escaped
    json_container: str | None = None        # FreeSWITCH json_cdr keeps channel variables under "variables"
    table: str = "cdr"
    description: str = ""
    short_rows: bool = False      # rows may lack trailing columns (cdr_csv without loguniqueid/loguserfield), down
    #                               to the last column a key field is read from
    longer: tuple[tuple[str, ...], ...] = ()  # later layouts of `columns`: more columns appended, none moved

    @property
    def layouts(self) -> Mapping[int, tuple[str, ...]]:
        """A headerless preset's layouts by field count (`columns` and its `longer` forms)."""
        return {len(names): names for names in (self.columns, *self.longer) if names}

    def with_overrides(self, overrides: Mapping[str, tuple[str, ...]]) -> Preset:
        return replace(self, mapping=self.mapping.with_overrides(overrides)) if overrides else self


# --- Asterisk ------------------------------------------------------------------------------------------------------

#: cdr_csv (Master.csv): a fixed layout, no header; uniqueid and userfield only with loguniqueid/loguserfield.
MASTER_CSV_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
                      "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid",
                      "userfield")
#: The project's own cdr_custom template (asterisk/cdr_custom.conf, [pbx_codes.csv]) as first shipped.
PBX_CDR_CUSTOM_COLUMNS = ("start", "answer", "end", "duration", "billsec", "disposition", "uniqueid", "linkedid",
                          "channel", "dstchannel", "src", "dst", "dcontext", "lastapp", "lastdata", "accountcode",
                          "userfield", "sequence", "pbx_trunk", "pbx_dialstatus", "pbx_rawcause", *PBX_COLUMNS)
#: What the FastAGI annotation writes beyond `PBX_COLUMNS` (how the attempt ended), appended by the template's
#: current layout; the long free text of them (the attempts list) last. enrich reads past them and leaves them.
PBX_OUTCOME_COLUMNS = ("pbx_hangup_by", "pbx_outcome", "pbx_q850_observed", "pbx_attempt", "pbx_attempts")
#: Every layout of that template, by field count. Each appends to the first, so a file Asterisk went on writing
#: after the mapping changed holds rows of both, and every field keeps its position in either.
PBX_CDR_CUSTOM_LAYOUTS: Mapping[int, tuple[str, ...]] = MappingProxyType({
    len(layout): layout for layout in (PBX_CDR_CUSTOM_COLUMNS, (*PBX_CDR_CUSTOM_COLUMNS, *PBX_OUTCOME_COLUMNS))})

_ASTERISK_MAP = ColumnMap({
    "sip_code": ("sip_code", "pbx_sip_code"),
    "rawcause": ("pbx_rawcause", "hangupcause_tech", "sip_reason"),
    "phrase": ("sip_phrase",),
    "q850": ("q850", "hangupcause", "pbx_q850_cause"),
    "disposition": ("disposition",),
    "catalog": ("pbx_catalog",),
    "trunk": ("pbx_trunk",),
    "channel": ("dstchannel",),
    "uniqueid": ("uniqueid",),
    "linkedid": ("linkedid",),
})

# --- FreeSWITCH ----------------------------------------------------------------------------------------------------

#: The project's mod_cdr_csv template (freeswitch/autoload_configs/cdr_csv.conf.xml, "pbx_codes").
FS_CDR_CSV_COLUMNS = ("uuid", "call_uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp",
                      "end_stamp", "duration", "billsec", "hangup_cause", "hangup_cause_q850", "sip_term_status",
                      "sip_gateway_name", *PBX_COLUMNS, "pbx_hangup_by")

# The order follows the FreeSWITCH observer: the bridged leg's copy on an A-leg first, then the leg's own answer;
# a Reason header's Q.850 cause overrides FreeSWITCH's own SIP->Q.850 table.
_FREESWITCH_MAP = ColumnMap({
    "sip_code": ("last_bridge_proto_specific_hangup_cause", "sip_invite_failure_status",
                 "proto_specific_hangup_cause", "sip_term_status"),
    "phrase": ("sip_invite_failure_phrase", "sip_hangup_phrase"),
    "q850": ("sip_reason", "last_bridge_hangup_cause", "hangup_cause_q850", "hangup_cause", "sip_term_cause"),
    "disposition": ("sip_hangup_disposition",),
    "catalog": ("pbx_codes_catalog",),
    "trunk": ("pbx_codes_trunk", "sip_gateway_name"),
    "channel": ("channel_name",),
    "uniqueid": ("uuid",),
    "linkedid": ("call_uuid",),
})

PRESETS: Mapping[str, Preset] = {p.name: p for p in (
    Preset("asterisk-master-csv", "asterisk", "csv", _ASTERISK_MAP, columns=MASTER_CSV_COLUMNS, short_rows=True,
           description="cdr_csv Master.csv: disposition only, so annotations are coarse (pbx_exact=0)"),
    Preset("asterisk-cdr-custom-pbx", "asterisk", "csv", _ASTERISK_MAP, columns=PBX_CDR_CUSTOM_COLUMNS,
           longer=tuple(v for v in PBX_CDR_CUSTOM_LAYOUTS.values() if v != PBX_CDR_CUSTOM_COLUMNS),
           description="the project's cdr_custom template, with pbx_rawcause = 'SIP 409 Not enough money' "
                       "(rows with or without the annotation's pbx_hangup_by ... pbx_attempts)"),
    Preset("asterisk-csv-header", "asterisk", "csv", _ASTERISK_MAP,
           description="any Asterisk CSV whose first row names the columns"),
    Preset("asterisk-json", "asterisk", "json", _ASTERISK_MAP,
           description="cdr_custom JSON mapping: one flat object per line"),
    Preset("asterisk-sqlite3-custom", "asterisk", "sqlite", _ASTERISK_MAP,
           description="cdr_sqlite3_custom table (annotated in place)"),
    Preset("asterisk-pgsql", "asterisk", "pgsql", _ASTERISK_MAP,
           description="cdr_pgsql table (annotated in place)"),
    Preset("freeswitch-cdr-csv", "freeswitch", "csv", _FREESWITCH_MAP, columns=FS_CDR_CSV_COLUMNS, tolerant=True,
           description="mod_cdr_csv with the project's template; quotes inside values are not escaped"),
    Preset("freeswitch-json", "freeswitch", "json", _FREESWITCH_MAP, json_container="variables",
           description="mod_json_cdr documents (one per file or one per line); reads and writes 'variables'"),
    Preset("freeswitch-pg-csv", "freeswitch", "pgsql", _FREESWITCH_MAP,
           description="mod_cdr_pg_csv table (annotated in place)"),
)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise MappingError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``--map field=column`` (``field=col1|col2`` for candidates, ``field=`` to ignore a field)."""
    overrides: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in FIELDS:
            raise MappingError(f"--map {item!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        overrides[name] = tuple(c.strip() for c in value.split("|") if c.strip())
    return overrides


def parse_columns(text: str) -> tuple[str, ...]:
    """``--columns a,b,c``: the names of a headerless file's columns."""
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    if not names or len(set(names)) != len(names):
        raise MappingError("--columns: expected distinct comma-separated column names")
    return names


__all__ = ["DONE_COLUMN", "FIELDS", "ID_FIELDS", "KEY_FIELDS", "PBX_CDR_CUSTOM_LAYOUTS", "PBX_COLUMNS",
           "PBX_OUTCOME_COLUMNS", "PRESETS", "ColumnMap", "MappingError",
           "Preset", "get_preset", "parse_columns", "parse_overrides"]
