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
    ("postgresql://u:s3cret@[::1:1/db", "postgresql://…"),
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
