"""Passwords in URLs: hidden from every printed URL, and read as meant (scoter.config)."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from scoter import ConfigurationError, Scoter
from scoter.config import quote_userinfo, redact, storage_from_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pa#ss@127.0.0.1/test", "postgresql://u:***@127.0.0.1/test"),
        ("redis://:se/cr?et@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://u:a?b#c@h:1/0?prefix=x", "redis://u:***@h:1/0?prefix=x"),
        ("postgresql://u:p@ss/x@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h/db?password=a#b&sslmode=x", "postgresql://h/db?password=***&sslmode=x"),
        ("redis://h/0?%70assword=abc&Token=x", "redis://h/0?%70assword=***&Token=***"),
        ("postgresql://db/app?x=a:b@c&password=zz", "postgresql://db/app?x=a:***@c&password=***"),
        ("postgresql://db/app?password=a@b", "postgresql://db/app?password=***"),
        ("redis://u:x&password=y@h", "redis://u:***@h"),
        ("host=db password=secret user=me", "host=db password=*** user=me"),
        ("host=db password = 'a b' user=me", "host=db password = *** user=me"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
        ("postgresql://h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"),
    ],
)
def test_redact_hides_passwords_urllib_would_split(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redact_hides_more_rather_than_less_when_an_at_sign_is_ambiguous() -> None:
    """`u:12#x@h` may be a password `12#x`, or host `u`, port 12 and a fragment: hidden."""
    assert redact("postgresql://u:12#x@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://h:5432/db?application_name=a@b") == "postgresql://h:***@b"


passwords = st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=1)


@settings(max_examples=300, deadline=None, database=None)
@given(passwords)
def test_redact_never_shows_a_password_however_it_is_spelled(password: str) -> None:
    shown = redact(f"redis://user:{password}@cache:6379/0")
    assert shown == "redis://user:***@cache:6379/0"
    query = password.replace("&", "%26")  # a raw '&' would start another parameter
    shown = redact(f"postgresql://db/app?sslmode=x&password={query}")
    assert shown == "postgresql://db/app?sslmode=x&password=***"


@pytest.mark.parametrize(
    "password", ["pa#ss", "se/cr?et", "p@ss", "a?b#c/d@e", ":colon", "plain", "p%2Fq"]
)
def test_quote_userinfo_gives_clients_the_password_meant(password: str) -> None:
    meant = password.replace("%2F", "/")  # an encoded password stays encoded: clients decode it
    redis_url = quote_userinfo(f"redis://:{password}@127.0.0.1:6379/0")
    assert redis.connection.parse_url(redis_url)["password"] == meant
    libpq = conninfo_to_dict(quote_userinfo(f"postgresql://me:{password}@db:5432/app?sslmode=x"))
    assert (libpq["user"], libpq["password"], libpq["host"]) == ("me", meant, "db")
    assert (libpq["port"], libpq["dbname"], libpq["sslmode"]) == ("5432", "app", "x")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h:5432/db?application_name=a@b",  # an '@' in a query value
        "postgresql://h1:5432,h2:5433/db?x=a@b",
        "postgresql://[::1]:5432/db?x=a@b",
        "sqlite:////tmp/a:b@c.db",
        "redis://cache:6379/0",
        "host=db password=secret",
    ],
)
def test_quote_userinfo_leaves_urls_without_a_broken_user_info_alone(url: str) -> None:
    assert quote_userinfo(url) == url


def test_repr_names_the_storage_without_its_password_or_opening_it() -> None:
    app = Scoter("x", "redis://:se/cr?et@127.0.0.1:1/0")
    assert repr(app) == "<Scoter x redis://:***@127.0.0.1:1/0>"
    assert app._storage is None


def test_a_bad_sqlite_url_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        storage_from_url("sqlite://me:hunter2@host/x.db")
    assert "hunter2" not in str(refused.value)
    assert "me:***@host" in str(refused.value)
