"""`pbx-codes tail` and `pbx-codes stats`: the console's live feed and window counts in a terminal.

Both speak to a running console over HTTP (standard library only, so they work on a machine without the server's
dependencies). Carrier phrases are untrusted: control characters are replaced before anything reaches the terminal,
so a phrase cannot move the cursor, retitle the window or fake a line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any, TextIO

from pbx_codes.cli.common import EXIT_OK, CliError, add_lang_option
from pbx_codes.text import TERMINAL, clean

DEFAULT_URL = "http://127.0.0.1:8088"
TOKEN_ENV = "PBX_CODES_CONSOLE_TOKEN"
RESET = "\x1b[0m"
CATEGORY_COLOURS: Mapping[str, str] = {
    "ok": "32", "busy": "33", "no_answer": "33", "declined": "33", "cancelled": "90", "pending": "90",
    "unavailable": "31", "capacity": "31", "network": "31", "media": "36", "billing": "35", "auth": "35",
    "forbidden": "35", "config": "35", "invalid_number": "34", "not_found": "34", "request_error": "34",
    "unknown": "1;37",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tail", help="follow a running console's live feed of annotated hangups")
    _add_connection_options(p)
    add_lang_option(p, default="en")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour lines by category (auto: only on a terminal)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N hangups")
    p.add_argument("--json", action="store_true", help="print each event as one JSON line")
    p.add_argument("--instance", metavar="NAME", help="only this agent's hangups (a fleet's central console)")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("stats", help="print a running console's hangup counts over 1/5/15 minutes")
    _add_connection_options(p)
    p.add_argument("--json", action="store_true", help="print the console's JSON as it is")
    p.add_argument("--instance", metavar="NAME", help="only this agent's counts (a fleet's central console)")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("console", help="run the console alone over a store a fleet of agents shares (live feed of "
                                       "every agent)")
    p.add_argument("--store", metavar="URL", help="the shared store: postgresql://… (or sqlite:///…, polled); "
                                                  "default: [store] url")
    p.add_argument("--listen", metavar="HOST:PORT", help="console address (default [console] listen or "
                                                         "127.0.0.1:8088)")
    p.add_argument("--config", metavar="FILE", help="pbx-codes.toml ([console], [store], [quality], [[alerts]])")
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                   help="how often the feed checks for rows no notification announced (default 2)")
    p.set_defaults(func=cmd_console)


def _add_connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"console address (default {DEFAULT_URL})")
    p.add_argument("--token-file", metavar="FILE",
                   help=f"file holding the console's access token (default: ${TOKEN_ENV})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the console to answer")


# ---- untrusted text ----------------------------------------------------------------------------------------

def terminal_safe(value: Any) -> str:
    """The value as one printable line: control and format characters (ESC, CR, LF, bidi overrides) become `?`."""
    return clean(value, TERMINAL)


# ---- server-sent events ------------------------------------------------------------------------------------

@dataclass(slots=True)
class SseParser:
    """Lines of an event stream in, (event name, data) out, as the EventSource rules read them."""

    event: str = ""
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                self.event = ""
                return None
            out = (self.event or "message", "\n".join(self.data))
            self.event, self.data = "", []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


def read_events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Decoded JSON events from the stream's lines; an event whose data is not a JSON object is skipped."""
    parser = SseParser()
    for line in lines:
        item = parser.feed(line)
        if item is None:
            continue
        try:
            data = json.loads(item[1])
        except ValueError:
            continue
        if isinstance(data, dict):
            yield item[0], data


# ---- formatting --------------------------------------------------------------------------------------------

def _paint(text: str, colour: str | None) -> str:
    return f"\x1b[{colour}m{text}{RESET}" if colour else text


def format_hangup(event: Mapping[str, Any], lang: str = "en", colour: bool = False) -> str:
    """`12:04:05 asterisk lifecell-trunk *********4567 503 "Simultaneous calls limit reached" [capacity] text`."""
    when = event.get("time")
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) if isinstance(when, (int, float)) else "--:--:--"
    texts = event.get("texts") or {}
    category = terminal_safe(event.get("category") or "unknown")
    parts = [stamp, *([terminal_safe(event["instance"])] if event.get("instance") else []),
             terminal_safe(event.get("pbx") or "-"), terminal_safe(event.get("trunk") or "-"),
             terminal_safe(event.get("number") or "-"), terminal_safe(event.get("code") or event.get("sip") or "-")]
    if event.get("phrase"):
        parts.append(f'"{terminal_safe(event["phrase"])}"')
    parts.append(_paint(f"[{category}]", CATEGORY_COLOURS.get(category, "1;37") if colour else None))
    parts.append(terminal_safe(texts.get(lang) or texts.get("en") or ""))
    return " ".join(parts)


def format_alert(event: Mapping[str, Any], colour: bool = False) -> str:
    state = terminal_safe(event.get("state") or "fired")
    head = _paint(f"ALERT {state.upper()}", ("32" if state == "cleared" else "1;31") if colour else None)
    return f"{head} {terminal_safe(event.get('name') or 'alert')}: {terminal_safe(event.get('message') or '')}"


def format_stats(stats: Mapping[str, Any]) -> str:
    """Two tables (per trunk, per category) with a column per window, then the failure rate per minute."""
    windows = [f"{w} min" for w in stats.get("windows", [1, 5, 15])]
    lines: list[str] = []
    for title, rows in (("trunk", stats.get("by_trunk") or {}), ("category", stats.get("by_category") or {})):
        names = sorted(rows, key=lambda k: (-(list(rows[k])[-1] if rows[k] else 0), k))
        width = max([len(title), *(len(terminal_safe(n)) for n in names)])
        lines.append(f"{title:<{width}}" + "".join(f"{w:>8}" for w in windows))
        for name in names:
            lines.append(f"{terminal_safe(name):<{width}}" + "".join(f"{n:>8}" for n in rows[name]))
        if not names:
            lines.append("(no hangups)")
        lines.append("")
    total = stats.get("total")
    if total:
        lines.append("total " + " ".join(f"{w}: {n}" for w, n in zip(windows, total)))
    series = stats.get("failure_rate") or []
    if series:
        rates = " ".join("  -" if not p.get("total") else f"{round(100 * float(p.get('rate', 0))):>3}"
                         for p in series)
        lines.append(f"failure rate % per minute, oldest first: {rates}")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---- HTTP --------------------------------------------------------------------------------------------------

def _token(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_file", None):
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"token file {args.token_file!r} cannot be read: {exc.strerror or exc}") from None
        return text.strip().splitlines()[0] if text.strip() else None
    return os.environ.get(TOKEN_ENV) or None


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port, the default port filled in: what decides whether a redirect leaves the console."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class SameOriginAuthRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects as urllib does, but the token goes only where it was meant to: a redirect to another
    origin (host, port or scheme) loses the Authorization header, and it is not given back later."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(new.full_url) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _open(args: argparse.Namespace, path: str, accept: str, timeout: float | None) -> Any:
    base = args.url.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise CliError(f"--url must be an http:// or https:// address, got {args.url!r}")
    request = urllib.request.Request(base + path, headers={"Accept": accept})
    token = _token(args)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.build_opener(SameOriginAuthRedirects).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        hint = " (set $PBX_CODES_CONSOLE_TOKEN or --token-file)" if exc.code == 401 else ""
        raise CliError(f"console at {base} answered {exc.code} {exc.reason}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"console at {base} cannot be reached: {reason}") from None


def _scoped(path: str, args: argparse.Namespace) -> str:
    name = getattr(args, "instance", None)
    return f"{path}?{urllib.parse.urlencode({'instance': name})}" if name else path


def cmd_console(args: argparse.Namespace) -> int:
    """The central console: no listener, the store's rows as the live feed."""
    import asyncio
    import logging

    from pbx_codes.cli.common import config_from, loop_factory
    from pbx_codes.console.central import run_central

    config = config_from(args)
    url = args.store or (config.store.url if config.store else None)
    if not url:
        raise CliError("console: give --store URL (or [store] url in the configuration)")
    if args.poll <= 0:
        raise CliError("--poll must be a positive number of seconds")
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("pbx_codes").setLevel(logging.INFO)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(run_central(config, url, listen=args.listen, poll_interval=args.poll))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        from pbx_codes.store.dsn import redact
        raise CliError(redact(str(exc), url)) from None
    return EXIT_OK


def _use_colour(choice: str, out: TextIO) -> bool:
    if choice != "auto":
        return choice == "always"
    return hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR")


def cmd_tail(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    colour = _use_colour(args.color, out)
    if args.count is not None and args.count < 1:
        raise CliError("--count must be at least 1")
    seen = 0
    # the connect timeout also bounds the wait between bytes; keep-alives come every 15 s, so allow more
    with _open(args, _scoped("/events", args), "text/event-stream", timeout=max(args.timeout, 60.0)) as response:
        lines = (raw.decode("utf-8", "replace") for raw in response)
        for name, data in read_events(lines):
            if args.json:
                out.write(json.dumps({"event": name, **data}, ensure_ascii=False) + "\n")
            elif name == "hangup":
                out.write(format_hangup(data, args.lang, colour) + "\n")
            elif name == "alert":
                out.write(format_alert(data, colour) + "\n")
            out.flush()
            if name == "hangup":
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _open(args, _scoped("/api/stats", args), "application/json", timeout=args.timeout) as response:
        try:
            stats = json.loads(response.read().decode("utf-8"))
        except ValueError:
            raise CliError("the console's /api/stats answer is not JSON") from None
    if args.json:
        out.write(json.dumps(stats, ensure_ascii=False) + "\n")
    else:
        out.write(format_stats(stats))
    return EXIT_OK


__all__ = ["SseParser", "format_alert", "format_hangup", "format_stats", "read_events", "register",
           "terminal_safe"]
