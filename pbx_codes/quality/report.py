"""The trunk quality report: per trunk (or PBX), optionally per hour or day, as a text table, CSV, JSON lines or one
self-contained HTML page with inline SVG charts (no external asset, no script)."""
from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pbx_codes.quality.classes import ClassTable
from pbx_codes.quality.legs import Leg
from pbx_codes.quality.measures import bucketed, per_trunk, trunk_key
from pbx_codes.text import csv_cell

GROUPINGS = {"trunk": None, "pbx": None, "instance": None, "hour": 3600, "day": 86400}
FORMATS = ("text", "csv", "json", "html")
#: The columns of the text, CSV and HTML tables (JSON carries every field).
COLUMNS = ("pbx", "trunk", "seizures", "answered", "asr", "ner", "ser", "seer", "isa", "pdd_p50_ms", "pdd_p95_ms",
           "srd_p95_ms", "acd_s")
_RATIOS = {"asr", "ner", "ser", "seer", "isa"}


def build(legs: Iterable[Leg], table: ClassTable, by: str = "trunk") -> list[dict[str, Any]]:
    """One result per trunk (``by="trunk"``), per PBX (``"pbx"``), or per trunk and hour/day (``"hour"``/``"day"``)."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    if by == "pbx":
        results = per_trunk(legs, table, key=lambda leg: (leg.pbx, "*"))
    elif by == "instance":  # per agent of a fleet and trunk
        results = per_trunk(legs, table, key=lambda leg: (leg.pbx, leg.trunk, leg.instance or "-"))
        for result in results:
            result["instance"] = result.pop("bucket")
    elif step := GROUPINGS[by]:
        results = per_trunk(legs, table, key=bucketed(step))
    else:
        results = per_trunk(legs, table, key=trunk_key)
    for result in results:
        if "bucket" in result:
            result["period"] = _iso(result.pop("bucket"), by)
    return results


def _iso(start: int, by: str) -> str:
    moment = datetime.fromtimestamp(start, tz=UTC)
    return moment.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%dT%H:00Z")


def cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in _RATIOS:
        return f"{value * 100:.1f}%"
    if name.endswith("_ms"):
        return f"{value:.0f}"
    if name == "acd_s":
        return f"{value:.1f}"
    return str(value)


def _columns(results: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return (("period",) if results and "period" in results[0] else ()) + \
        (("instance",) if results and "instance" in results[0] else ()) + COLUMNS


def top_failure(result: dict[str, Any]) -> str:
    top = result.get("top_failures") or []
    if not top:
        return ""
    first = top[0]
    words = " ".join(str(p) for p in (first["category"], first["code"], first["phrase"]) if p)
    return f"{words} ({first['count']})"


def as_text(results: Sequence[dict[str, Any]]) -> str:
    columns = _columns(results)
    header = [c.upper() if c in _RATIOS else c for c in columns]
    header.append("top failure")
    rows = [[_one_line(cell(c, r.get(c))) for c in columns] + [_one_line(top_failure(r))] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    if not rows:
        lines.append("(no seizures in this range)")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """Carrier text never breaks a table line."""
    return " ".join(str(text).split())


def _csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote; one line only."""
    if not isinstance(value, str):
        return value
    return csv_cell(_one_line(value))


def as_csv(results: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(results)
    writer.writerow([*columns, "top_failure"])
    for r in results:
        writer.writerow([_csv_safe(r.get(c)) if r.get(c) is not None else "" for c in columns]
                        + [_csv_safe(top_failure(r))])
    return out.getvalue()


def as_json_lines(results: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)


# --- HTML ------------------------------------------------------------------------------------------------------------

_CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#1d2733}table{border-collapse:collapse;margin:12px 0}
th,td{padding:4px 10px;border-bottom:1px solid #dde3ea;text-align:right}th:nth-child(-n+3),td:nth-child(-n+3)
{text-align:left}th{background:#f2f5f8}h1{font-size:20px}h2{font-size:16px;margin-top:28px}.legend span{margin-right:
14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}svg text{font:11px system-ui,sans-serif}"""
_SERIES = (("asr", "ASR", "#2f6fb0"), ("ner", "NER", "#2e9d5b"), ("seer", "SEER", "#c28a16"), ("isa", "ISA", "#c0392b"))


def _bars(results: Sequence[dict[str, Any]]) -> str:
    """Grouped bars: ASR, NER, SEER, ISA per trunk, 0-100 %."""
    width, height, left, top, bottom = 760, 220, 40, 10, 40
    group = (width - left) / max(1, len(results))
    bar = min(24.0, group / 5)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="ASR, NER, SEER and ISA per trunk">']
    plot = height - top - bottom
    for pct in (0, 50, 100):
        y = top + plot * (1 - pct / 100)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dde3ea"/>'
                     f'<text x="2" y="{y + 4:.1f}">{pct}%</text>')
    for i, r in enumerate(results):
        x0 = left + i * group + (group - 4 * bar) / 2
        for j, (key, label, color) in enumerate(_SERIES):
            value = r.get(key)
            if value is None:
                continue
            h = plot * value
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + plot - h:.1f}" width="{bar - 2:.1f}" '
                         f'height="{h:.1f}" fill="{color}"><title>{html.escape(label)} {value:.1%}</title></rect>')
        name = html.escape(f"{r['trunk']}" + (f" {r['period']}" if "period" in r else ""))
        parts.append(f'<text x="{left + i * group + group / 2:.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{name[:24]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _lines(results: Sequence[dict[str, Any]], key: str, label: str) -> str:
    """One line per trunk over the periods (hour/day reports)."""
    periods = sorted({r["period"] for r in results})
    trunks = sorted({(r["pbx"], r["trunk"]) for r in results})
    if len(periods) < 2:
        return ""
    width, height, left, top, bottom = 760, 200, 40, 10, 30
    plot_w, plot_h = width - left - 10, height - top - bottom
    palette = ("#2f6fb0", "#2e9d5b", "#c28a16", "#c0392b", "#7d3c98", "#17a2b8", "#6c757d")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(label)} per trunk over time">']
    for pct in (0, 50, 100):
        y = top + plot_h * (1 - pct / 100)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dde3ea"/>'
                     f'<text x="2" y="{y + 4:.1f}">{pct}%</text>')
    legend = []
    for n, (pbx, trunk) in enumerate(trunks):
        color = palette[n % len(palette)]
        points = []
        for r in results:
            if (r["pbx"], r["trunk"]) == (pbx, trunk) and r.get(key) is not None:
                x = left + plot_w * periods.index(r["period"]) / (len(periods) - 1)
                points.append(f"{x:.1f},{top + plot_h * (1 - r[key]):.1f}")
        if points:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>')
        legend.append(f'<span><i class="sw" style="background:{color}"></i>{html.escape(trunk)}</span>')
    parts.append(f'<text x="{left}" y="{height - 8}">{html.escape(periods[0])}</text>'
                 f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{html.escape(periods[-1])}</text></svg>')
    return f'<h2>{html.escape(label)} over time</h2>{"".join(parts)}<div class="legend">{"".join(legend)}</div>'


def as_html(results: Sequence[dict[str, Any]], title: str = "Trunk quality", subtitle: str = "") -> str:
    columns = _columns(results)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "<th>top failure</th>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(c, r.get(c)))}</td>" for c in columns)
                   + f"<td>{html.escape(top_failure(r))}</td></tr>" for r in results)
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i>{n}</span>' for _, n, c in _SERIES)
    charts = f'<h2>Ratios per trunk</h2>{_bars(results)}<div class="legend">{legend}</div>' if results else ""
    if results and "period" in results[0]:
        charts += _lines(results, "asr", "ASR") + _lines(results, "ner", "NER")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{charts}"
            "<p>ASR = answered / seizures (ITU-T E.411); NER = (answered + user-determined failures) / seizures "
            "(ITU-T E.425); SER, SEER, ISA (over the INVITEs sent), SRD: RFC 6076; PDD: dial to first ringing or "
            "progress; ACD: mean "
            "duration of answered seizures.</p></body></html>\n")


def render(results: Sequence[dict[str, Any]], fmt: str, *, title: str = "Trunk quality", subtitle: str = "") -> str:
    if fmt == "text":
        return as_text(results)
    if fmt == "csv":
        return as_csv(results)
    if fmt == "json":
        return as_json_lines(results)
    if fmt == "html":
        return as_html(results, title, subtitle)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


__all__ = ["COLUMNS", "FORMATS", "GROUPINGS", "as_csv", "as_html", "as_json_lines", "as_text", "build", "render"]
