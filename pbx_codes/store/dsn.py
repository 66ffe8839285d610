"""A PostgreSQL URL as it may appear in a log line or an error message: never with its password.

The URL is read the way libpq reads it, not the way `urllib.parse` does: libpq's user part runs to the first `@`
before a `/`, so a password may hold `#` or `?` (urllib would cut there and print the rest as a fragment or a
query), and its query runs to the end, split on `&` only (`?password=a#b` is the password `a#b`). Where libpq and
a person would disagree (an unescaped `@` or `/` in a password), the wider reading is hidden. A password can also sit
in the query (`password`, `sslpassword`, keys percent-decoded) or in a `key=value` connection string.

Driver messages quote the URL, or the piece libpq choked on (which may be part of the password), verbatim: so in a
message the URL is replaced by its safe form, every password piece is blanked, and so is every quoted piece that
overlaps one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

MASK = "***"
_SCHEMES = ("postgresql://", "postgres://")
_SECRET_KEYS = frozenset({"password", "sslpassword"})
_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
# A key=value connection string: values are bare words or single-quoted with backslash escapes.
_KV_SECRET = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
# Pieces of a password a message may quote on their own (libpq splits a mangled URL on these).
_SPLIT = re.compile(r"[@/:?#&=,\[\]]")
_MIN_PIECE = 3


@dataclass(frozen=True, slots=True)
class _Parts:
    """A URL cut where libpq cuts it: the shown text and the secrets found."""

    shown: str
    secrets: tuple[str, ...]


def _split_uri(url: str) -> _Parts:
    scheme = next(s for s in _SCHEMES if url.lower().startswith(s))
    rest = url[len(scheme):]
    secrets: list[str] = []
    slash = _first(rest, "/")
    at = _first(rest[:slash], "@") if slash else _first(rest, "@")
    user_shown = ""
    if at < len(rest) and at < slash:                      # libpq: user[:password]@ before any "/"
        userinfo, rest = rest[:at], rest[at + 1:]
        user, colon, password = userinfo.partition(":")
        slash = _first(rest, "/")
        more = rest[:slash].rfind("@")
        if more >= 0:                                      # an unescaped "@" in the password: hide up to the last
            secrets.append(rest[:slash])                   # (libpq reads the rest as the host: a secret too)
            password += "@" + rest[:more]
            rest = rest[more + 1:]
            colon = colon or ":"
        if colon:
            secrets.append(password)
        user_shown = f"{user}{':' + MASK if colon else ''}@"
    else:
        # No "@" before the first "/": a password holding "/" (libpq would read host and port out of it).
        cut, later = _first(rest, ":"), rest.rfind("@", 0, _first(rest, "?"))
        if cut < slash and later > cut:
            secrets.append(rest[cut + 1:later])
            user_shown = f"{rest[:cut]}:{MASK}@"
            rest = rest[later + 1:]
    query_at = _first(rest, "?")
    head, query = rest[:query_at], rest[query_at + 1:]
    shown = scheme + user_shown + head
    if query_at < len(rest):
        params = []
        for param in query.split("&"):
            key, eq, value = param.partition("=")
            if eq and unquote(key).strip().lower() in _SECRET_KEYS:
                secrets.append(value)
                value = MASK
            params.append(f"{key}{eq}{value}")
        shown += "?" + "&".join(params)
    return _Parts(shown, tuple(secrets))


def _split_keywords(conninfo: str) -> _Parts:
    secrets = [m.group(2).strip("'") for m in _KV_SECRET.finditer(conninfo)]
    return _Parts(_KV_SECRET.sub(lambda m: m.group(1) + MASK, conninfo), tuple(secrets))


def _first(text: str, char: str) -> int:
    """Index of the first `char`, or len(text) when there is none."""
    i = text.find(char)
    return len(text) if i < 0 else i


def _parts(url: str) -> _Parts:
    if url.lower().startswith(_SCHEMES):
        return _split_uri(url)
    return _split_keywords(url)


def safe_url(url: str) -> str:
    """The URL (or key=value connection string) with every password replaced by `***`."""
    return _parts(url).shown


def secret_pieces(url: str) -> list[str]:
    """Every form in which a password of `url` may appear in a message: as written, percent-decoded, and the pieces
    libpq may quote on their own; longest first."""
    found: set[str] = set()
    for secret in _parts(url).secrets:
        for form in (secret, unquote(secret)):
            if form:
                found.add(form)
                found.update(p for p in _SPLIT.split(form) if len(p) >= _MIN_PIECE)
    return sorted(found, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """`text` (a message about `url`) with the URL shown safely and no password piece left in it."""
    if not url:
        return text
    shown = safe_url(url)
    text = text.replace(url, shown)
    pieces = secret_pieces(url)
    if not pieces:
        return text

    def blank(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        if inner and inner != shown and any(p in inner or inner in p for p in pieces):
            return match.group(0)[0] + "…" + match.group(0)[-1]
        return match.group(0)

    text = _QUOTED.sub(blank, text)
    for piece in pieces:             # unquoted: only pieces long enough not to blank ordinary words' letters
        if len(piece) >= _MIN_PIECE:
            text = text.replace(piece, MASK)
    return text


def safe_error(exc: BaseException, url: str) -> str:
    """The first line of a driver's message, with the URL and every piece of its password kept out."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return redact(text, url)


__all__ = ["MASK", "redact", "safe_error", "safe_url", "secret_pieces"]
