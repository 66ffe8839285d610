"""The quick readers (the field picker, the ``","`` split) give byte for byte what csv.reader gives."""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_codes.enrich import enrich_file, get_preset
from pbx_codes.enrich.csv_engine import _CATEGORIES, _RETRIES, Layout, _appended_done_at
from pbx_codes.enrich.field_picker import FieldPicker
from pbx_codes.enrich.interpret import KeyPlan
from pbx_codes.enrich.mapping import MASTER_CSV_COLUMNS

BINDINGS = {"lifecell-trunk": "lifecell", "gw-mango": "mango"}


def master_line(*, clid: bytes = b'"""Caller"" <1000>"', dstchannel: bytes = b'"PJSIP/trunk-00000002"',
                lastdata: bytes = b'"PJSIP/380670000001@trunk,30"', billsec: bytes = b"55",
                disposition: bytes = b'"ANSWERED"', tail: bytes = b',"1795400000.1",""', eol: bytes = b"\n") -> bytes:
    """A Master.csv line as cdr_csv writes it (duration and billsec bare), with the named fields replaced."""
    return (b'"","1000","380670000001","from-internal",' + clid + b',"PJSIP/caller-00000001",' + dstchannel
            + b',"Dial",' + lastdata + b',"2026-11-23 08:00:00","2026-11-23 08:00:05","2026-11-23 08:01:00",60,'
            + billsec + b"," + disposition + b',"DOCUMENTATION"' + tail + eol)


TRICKY_MASTER = [
    master_line(),
    master_line(eol=b"\r\n"),                                                    # CRLF
    master_line(lastdata=b'"PJSIP/1@trunk"",""x,30,""quoted"""', disposition=b'"BUSY"'),  # "," inside a value
    master_line(clid=b'""', lastdata=b"", billsec=b"", disposition=b'"NO ANSWER"'),  # empty, quoted and bare
    master_line(clid='"""Олена Коваль"" <1001>"'.encode(), dstchannel='"PJSIP/київ-0000000a"'.encode(),
                disposition=b'"CONGESTION"'),                                    # non-ASCII
    master_line(lastdata=b'"bad \xff\xfe bytes"', dstchannel=b'"PJSIP/tr\xffunk-0000000b"'),  # invalid UTF-8
    master_line(disposition=b'"NO ""ANSWER"""'),                                  # a quote in a needed field
    master_line(dstchannel=b"PJSIP/lifecell-trunk-0000000c", disposition=b"BUSY"),  # bare needed fields
    master_line(dstchannel=b'"Local/100@ctx-0000000a;1"'),
    master_line(dstchannel=b'"DAHDI/1-2"', disposition=b'"FAILED"'),
    master_line(dstchannel=b'"sofia/gateway/gw-mango/380"'),
    master_line(dstchannel=b'"PJSIP/trunk-0000000A;12"'),
    master_line(dstchannel=b'""'),
    master_line(tail=b""),                                                       # loguniqueid, loguserfield off
    master_line(tail=b',"1795400000.3"'),                                        # 17 fields
    master_line(tail=b"")[: master_line(tail=b"").rindex(b',"DOCUMENTATION"')] + b"\n",   # 15 fields: just fits
    b'"","1000","2","3","4","5","6","7","8","9","10","11",12,13\n',               # 14 fields: malformed
    master_line(lastdata=b'"line one\nline two"'),                                # a record over two lines
    master_line(lastdata=b'"ends ""quoted""\nthen more"'),         # its first line looks whole: "..."\n
    master_line(tail=b',"1795400000.4","","q850","","","busy","later","The callee is busy.","17","0"'),  # done
    master_line(billsec=b'"busy"', disposition=b'"later"'),                       # looks done to the check
    master_line(clid=b'Caller "x" <1000>'),                                       # a quote in a bare field
    master_line(clid=b' "Caller"'),                                               # space before a quote
    master_line(lastdata=b'"carriage\rreturn"'),
    master_line(lastdata=b'"nul\x00byte"'),
    b"\n",
    b'"lone"\n',
    master_line(disposition=b'"BUSY"', eol=b""),                                  # no line end at the end
]


def enrich_both(tmp_path: Path, name: str, data: bytes, preset_name: str, make_annotator, **options):
    """Enrich `data` with the quick readers and with csv.reader only: (quick bytes, reader bytes, summaries)."""
    source = tmp_path / name
    source.write_bytes(data)
    preset = get_preset(preset_name)
    results = []
    for reader_only in (False, True):
        output = tmp_path / f"{'reader' if reader_only else 'quick'}-{name}"
        summary = enrich_file(source, preset, make_annotator(bindings=BINDINGS), output=output, progress=False,
                              reader_only=reader_only, **options)
        counts = summary.to_dict()
        for volatile in ("output", "elapsed_s", "rows_per_s"):
            counts.pop(volatile)
        results.append((output.read_bytes(), counts))
    (quick, quick_counts), (reader, reader_counts) = results
    return quick, reader, quick_counts, reader_counts


def test_tricky_master_rows_come_out_the_same_from_the_picker_and_from_csv_reader(tmp_path, make_annotator):
    data = b"".join(TRICKY_MASTER)
    quick, reader, quick_counts, reader_counts = enrich_both(tmp_path, "Master.csv", data, "asterisk-master-csv",
                                                             make_annotator)
    assert quick == reader
    assert quick_counts == reader_counts
    # One row carries the appended block; the row that only looks annotated has Master.csv's own width: annotated.
    assert quick_counts["annotated"] >= 20 and quick_counts["skipped_detail"]["already_annotated"] == 1


@pytest.mark.parametrize("line", TRICKY_MASTER, ids=range(len(TRICKY_MASTER)))
def test_each_tricky_master_row_alone_comes_out_the_same(tmp_path, make_annotator, line):
    quick, reader, quick_counts, reader_counts = enrich_both(tmp_path, "Master.csv", master_line() + line,
                                                             "asterisk-master-csv", make_annotator)
    assert quick == reader and quick_counts == reader_counts


def header_file(rows: list[list[str]], *, quoting: int = csv.QUOTE_MINIMAL, eol: str = "\n") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=quoting, lineterminator=eol)
    writer.writerow(["uniqueid", "clid", "dstchannel", "pbx_rawcause", "billsec", "disposition"])
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogateescape")


CHANNELS = ["PJSIP/lifecell-trunk-0000000a", "PJSIP/gw-mango-0000000b", "PJSIP/trunk-0000000c",
            "sofia/gateway/gw-mango/380671234567", "sofia/gateway/gw-other/380671234567", "DAHDI/1-2",
            "Local/100@ctx-0000000d;2", "", 'PJSIP/"odd"-0000000e', "PJSIP/lifecell-trunk-0000000F;1"]


def test_the_trunk_read_from_the_dialed_channel_is_the_same_on_every_path(tmp_path, make_annotator):
    rows = [[f"{i}.1", '"Caller" <1000>', channel, "SIP 409 Not enough money", str(i), "NO ANSWER"]
            for i, channel in enumerate(CHANNELS)]
    for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_ALL):
        quick, reader, quick_counts, reader_counts = enrich_both(
            tmp_path, f"cdr{quoting}.csv", header_file(rows, quoting=quoting), "asterisk-csv-header", make_annotator)
        assert quick == reader and quick_counts == reader_counts
        out = list(csv.reader(io.StringIO(quick.decode("utf-8"))))
        catalogs = {row[2]: row[6] for row in out[1:]}
        assert catalogs["PJSIP/lifecell-trunk-0000000a"] == "lifecell"
        assert catalogs["PJSIP/gw-mango-0000000b"] == catalogs["sofia/gateway/gw-mango/380671234567"] == "mango"
        assert catalogs["sofia/gateway/gw-other/380671234567"] == "sip"


#: Field values from pieces that matter to a CSV reader or to the trunk (\udcff is written as the byte 0xff).
FIELD_TEXT = st.lists(st.sampled_from(list('ab-,"\r\n 0Aé€;/') + ["\udcff", "PJSIP/", "0000000a", "BUSY", "SIP 486 x"]),
                      max_size=6).map("".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(FIELD_TEXT, min_size=6, max_size=6), min_size=1, max_size=6),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       eol=st.sampled_from(["\n", "\r\n"]))
def test_any_rows_csv_writes_come_out_the_same_from_the_quick_readers_and_csv_reader(make_annotator, rows,
                                                                                    quoting, eol):
    with tempfile.TemporaryDirectory() as folder:
        quick, reader, quick_counts, reader_counts = enrich_both(
            Path(folder), "cdr.csv", header_file(rows, quoting=quoting, eol=eol), "asterisk-csv-header",
            make_annotator)
    assert quick == reader and quick_counts == reader_counts


def master_picker(make_annotator, count: int = len(MASTER_CSV_COLUMNS)) -> tuple[FieldPicker, KeyPlan]:
    preset = get_preset("asterisk-master-csv")
    layout = Layout.build(preset.columns, preset, make_annotator(bindings=BINDINGS))
    done_from_end, minimum = _appended_done_at(layout)
    return FieldPicker.build(count, layout.plan, done_from_end, minimum, _CATEGORIES, _RETRIES), layout.plan


def test_the_picker_reads_a_stock_master_line_that_the_split_cannot(make_annotator):
    picker, plan = master_picker(make_annotator)
    line = master_line(dstchannel=b'"PJSIP/lifecell-trunk-0000000a"', disposition=b'"NO ANSWER"')
    m = picker.match(line)
    assert m is not None
    values = m.group(*picker.groups)
    assert not picker.is_done(values)
    assert values[picker.skip:] == (b"NO ANSWER", b"PJSIP/lifecell-trunk", None)   # disposition, channel stem
    row = next(csv.reader([line.decode()]))
    assert plan.row_key()(row) == ("NO ANSWER", "lifecell-trunk")
    assert picker.key_of(m) == (b"NO ANSWER", "lifecell-trunk")     # bytes, as the split gives: the same outcome


@pytest.mark.parametrize("line", [
    master_line(disposition=b'"NO ""ANSWER"""'),     # the reader unescapes a needed value
    master_line(clid=b'Caller "x" <1000>'),          # csv.reader keeps a quote inside a bare field
    master_line(lastdata=b'"open quote'),            # a record that goes on
    master_line(tail=b""),                           # another field count: another picker
])
def test_the_picker_leaves_lines_it_cannot_read_exactly_to_the_reader(make_annotator, line):
    picker, _ = master_picker(make_annotator)
    assert picker.match(line) is None


def test_a_whole_name_and_a_stem_never_share_a_cache_key(make_annotator):
    picker, _ = master_picker(make_annotator)
    stem = picker.match(master_line(dstchannel=b'"PJSIP/trunk-0000000a"')).group(*picker.groups)
    whole = picker.match(master_line(dstchannel=b'"PJSIP/trunk"')).group(*picker.groups)
    assert stem[picker.skip:] != whole[picker.skip:]
