"""A PostgreSQL URL in a log line or an error message never carries its password, wherever the URL put it."""
from __future__ import annotations

import pytest

from pbx_codes.store.dsn import safe_error, safe_url

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:s3cret@db.example:5432/cdr", "postgresql://u:***@db.example:5432/cdr"),
    ("postgresql://u@h/db?password=s3cret&sslmode=disable", "postgresql://u@h/db?password=***&sslmode=disable"),
    ("postgresql://h/db?sslpassword=s3cret", "postgresql://h/db?sslpassword=***"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://u:s3cret@[::1:1/db", "postgresql://u:***@[::1:1/db"),
])
def test_safe_url_drops_the_password_from_the_user_part_and_the_query(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@[::1:1/db", "postgresql://u:s3%zzcret@h/db",
                                 "postgresql://u@h/db?password=s3%zzcret"])
def test_a_message_libpq_gives_for_an_unreadable_url_keeps_the_password_out(url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    with pytest.raises(psycopg.Error) as caught:
        conninfo_to_dict(url)
    assert "s3" in str(caught.value)  # libpq quotes the URL or the piece holding the password
    assert "s3" not in safe_error(caught.value, url)


# ---- libpq's reading of a URL, not urllib's ---------------------------------------------------------------

@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:pa#ss@db.example/cdr", "postgresql://u:***@db.example/cdr"),
    ("postgresql://u:pa?ss@db.example/cdr", "postgresql://u:***@db.example/cdr"),
    ("postgresql://u:pa?s#s@db.example:5432/cdr?sslmode=disable",
     "postgresql://u:***@db.example:5432/cdr?sslmode=disable"),
    ("postgresql://u:p@ss@db.example/cdr", "postgresql://u:***@db.example/cdr"),
    ("postgresql://u:pa/ss@db.example/cdr", "postgresql://u:***@db.example/cdr"),
    ("postgresql://h/db?password=a#b&sslmode=disable", "postgresql://h/db?password=***&sslmode=disable"),
    ("postgresql://h/db?sslmode=disable&sslpassword=k?e#y", "postgresql://h/db?sslmode=disable&sslpassword=***"),
    ("postgresql://h/db?pass%77ord=s3cret", "postgresql://h/db?pass%77ord=***"),
    ("postgres://u:s3cret@h1:5432,h2:5433/db", "postgres://u:***@h1:5432,h2:5433/db"),
    ("host=h password=s3cret dbname=cdr", "host=h password=*** dbname=cdr"),
    ("host=h password = 's3 cr\\'et' dbname=cdr", "host=h password = *** dbname=cdr"),
])
def test_safe_url_reads_the_url_as_libpq_does(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize("url, secret", [
    ("postgresql://u:pa#ss@127.0.0.1:1/cdr", "pa#ss"),
    ("postgresql://u:pa?ss@127.0.0.1:1/cdr", "pa?ss"),
    ("postgresql://u@127.0.0.1:1/cdr?password=hid#den", "hid#den"),
])
def test_libpq_takes_the_password_safe_url_hides(url: str, secret: str) -> None:
    """What libpq itself reads as the password is exactly what is hidden."""
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(url)["password"] == secret
    assert secret not in safe_url(url) and secret.split("#")[-1].split("?")[-1] not in safe_url(url)


@pytest.mark.parametrize("message", [
    'invalid connection option "x" in postgresql://u:pa#ss@h/db',
    "password authentication failed for pa#ss",
    'invalid integer value "pa#ss" for connection option "port"',
])
def test_a_message_quoting_the_url_or_a_piece_of_the_password_is_redacted(message: str) -> None:
    url = "postgresql://u:pa#ss@h/db"
    text = safe_error(RuntimeError(message), url)
    assert "pa#ss" not in text and '"ss@h"' not in text and "pa#" not in text


def test_the_host_libpq_reads_out_of_a_password_with_an_at_sign_is_redacted() -> None:
    url = "postgresql://u:p@ss@h/db"           # libpq: password "p", host "ss@h"
    text = safe_error(RuntimeError('could not translate host name "ss@h" to address: Name or service not known'), url)
    assert "ss@h" not in text and "p@ss" not in text


def test_an_unreadable_url_with_a_hash_in_the_password_keeps_it_out_of_libpqs_message() -> None:
    from psycopg.conninfo import conninfo_to_dict

    url = "postgresql://u:s3#c%zzret@h/db"
    with pytest.raises(psycopg.Error) as caught:
        conninfo_to_dict(url)
    assert "cret" not in safe_error(caught.value, url)
