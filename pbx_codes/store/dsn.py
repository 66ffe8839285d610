"""A PostgreSQL URL as it may appear in a log line or an error message: never with its password.

A password can sit in the user part (`postgresql://u:pw@host/db`) or in the query (`?password=pw`), and libpq's
own messages about a URL it cannot parse quote the URL, or the piece it choked on (which may be the password),
verbatim. So the URL is rebuilt without either, and a driver message has every quoted piece blanked.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_QUOTED = re.compile(r'"[^"]*"')
_SECRET_KEYS = frozenset({"password", "sslpassword"})
_QUERY_SECRET = re.compile(r"(?i)[?&](?:ssl)?password=([^&#]*)")


def safe_url(url: str) -> str:
    """The URL with any password replaced by `***`; a URL that does not parse is reduced to its scheme."""
    scheme = url.partition("://")[0] if "://" in url else "postgresql"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}{':***' if colon else ''}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k.lower() in _SECRET_KEYS else v) for k, v in pairs], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return f"{scheme}://…"


def safe_error(exc: BaseException, url: str) -> str:
    """The first line of a driver's message, with the URL and any quoted piece holding a password kept out."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if not url:
        return text
    text = text.replace(url, safe_url(url))
    secrets = _secrets(url)

    def blank(match: re.Match[str]) -> str:
        piece = match.group(0)[1:-1]
        return '"…"' if piece and any(s in piece or piece in s for s in secrets) else match.group(0)

    return _QUOTED.sub(blank, text) if secrets else text


def _secrets(url: str) -> list[str]:
    """The password pieces of a URL, raw and percent-decoded, found without trusting the URL to parse."""
    rest = url.partition("://")[2]
    found = []
    authority = rest.split("?", 1)[0]
    if "@" in authority:
        found.append(authority.rpartition("@")[0].partition(":")[2])
    found += _QUERY_SECRET.findall(url)
    out = []
    for secret in found:
        if secret:
            out += [secret, unquote(secret)]
    return out


__all__ = ["safe_error", "safe_url"]
