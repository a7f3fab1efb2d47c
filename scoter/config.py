"""Turn URLs and SCOTER_* environment variables into storage and settings."""

from __future__ import annotations

import importlib
import os
import re
import sqlite3
import urllib.parse

from scoter.exceptions import ConfigurationError
from scoter.serializers import Signer
from scoter.storage.base import Storage

ENV_URL = "SCOTER_URL"
ENV_SECRET_KEYS = "SCOTER_SECRET_KEYS"
SECRET_PARAMETERS = {"password", "passwd", "pass", "secret", "token", "sslpassword"}
_SECRET_KEYWORD = re.compile(
    rf"\b((?:{'|'.join(sorted(SECRET_PARAMETERS))})\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|\S*)",
    re.IGNORECASE,
)
"""A secret in libpq's keyword form (`password=x`, `password = 'a b'`)."""
_QUERY_PAIR = re.compile(r"([?&])([^&=?#]*)=([^&]*)")
"""A query parameter, its value running to the next '&' ('#' and '?' included)."""
_AUTHORITY_END = re.compile(r"[/?#]")
_HOST = r"(?:\[[^\]]*\]|[^:,@\[\]]*)(?::\d*)?"
_HOST_LIST = re.compile(rf"{_HOST}(?:,{_HOST})*")
_QUOTED = str.maketrans({"/": "%2F", "?": "%3F", "#": "%23", "@": "%40"})

EXTRA_SCHEMES = {
    # scheme: (module, class, extra that installs its client library)
    "redis": ("scoter.storage.redis", "RedisStorage", "redis"),
    "rediss": ("scoter.storage.redis", "RedisStorage", "redis"),
    "redis+cluster": ("scoter.storage.redis_cluster", "RedisClusterStorage", "redis"),
    "rediss+cluster": ("scoter.storage.redis_cluster", "RedisClusterStorage", "redis"),
    "postgres": ("scoter.storage.postgres", "PostgresStorage", "postgres"),
    "postgresql": ("scoter.storage.postgres", "PostgresStorage", "postgres"),
}


def redact(url: str) -> str:
    """The URL with its password and secret query parameters replaced by ***: safe to print,
    log or put in an error, however the password is spelled.

    The user info runs to the LAST '@' of the URL, not to the first '/', '?' or '#' as urllib
    reads it: a password such as `pa#ss` or `se/cr?et` is hidden whole, even where that hides
    more than the password (an '@' in a query value). A secret query value runs to the next
    '&', whatever it holds.
    """
    head, sep, rest = url.partition("://")
    if not sep:  # libpq's keyword form: host=db password=secret
        return _SECRET_KEYWORD.sub(r"\1***", url)
    userinfo, at, after = rest.rpartition("@") if not rest.startswith("/") else ("", "", rest)
    if ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***{at}{after}"
    return f"{head}://{_QUERY_PAIR.sub(_hide_pair, rest)}"


def _hide_pair(pair: re.Match[str]) -> str:
    secret = urllib.parse.unquote(pair[2]).strip().lower() in SECRET_PARAMETERS
    return f"{pair[1]}{pair[2]}=***" if secret else pair[0]


def quote_userinfo(url: str) -> str:
    """The URL with '/', '?', '#' and '@' in its user name and password percent-encoded, so
    that a client library reads the password that was meant.

    urllib (redis-py) ends the user info at the first '/', '?' or '#', libpq at the first '@':
    each reads `redis://:se/cr?et@host/0` or `postgresql://u:p@ss@host/db` as another password,
    host or port. When the part before the first '/', '?' or '#' is not a host list
    (`host:port,...`), the user info is read up to the last '@' instead.
    """
    head, sep, rest = url.partition("://")
    if not sep or rest.startswith("/"):
        return url
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        after = host + rest[len(authority) :]
    elif "@" in rest and not _HOST_LIST.fullmatch(authority):
        userinfo, _, after = rest.rpartition("@")
    else:
        return url
    user, colon, password = userinfo.partition(":")
    quoted = f"{user.translate(_QUOTED)}{colon}{password.translate(_QUOTED)}"
    return f"{head}://{quoted}@{after}"


def default_url(app_name: str) -> str:
    """$SCOTER_URL, else a SQLite file named after the app in the working directory."""
    return os.environ.get(ENV_URL) or f"sqlite:///{app_name}.db"


def absolute_url(url: str) -> str:
    """A sqlite:/// URL with its path made absolute, from the working directory now (the
    file a storage opened from it now would be); any other URL as it is."""
    head, sep, rest = url.partition(":///")
    if head.lower() != "sqlite" or not sep or rest.startswith("/") or not rest:
        return url
    path, query, options = rest.partition("?")
    return f"{head}:///{os.path.abspath(path)}{query}{options}"


def secret_keys_from_env(name: str = ENV_SECRET_KEYS) -> list[str] | None:
    """The signing keys in $SCOTER_SECRET_KEYS — comma-separated, the signing key first — for
    `Scoter(secret_keys=...)`; None (no signing) when the variable is unset.

    Set but empty, or naming an empty or short key, is a ConfigurationError: a secret that did
    not reach the process must not turn signing off.
    """
    value = os.environ.get(name)
    if value is None:
        return None
    keys = [key.strip() for key in value.split(",")]
    if not any(keys):
        raise ConfigurationError(
            f"${name} is set but empty: give it the signing keys (comma-separated), or unset "
            "it for no signing"
        )
    try:
        Signer(keys)
    except ConfigurationError as exc:
        raise ConfigurationError(f"${name}: {exc}") from None
    return keys


def storage_from_url(url: str) -> Storage:
    """Open the storage a URL names: sqlite:///path, memory://, redis://, redis+cluster://,
    postgresql://."""
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme == "memory":
        from scoter.storage.memory import MemoryStorage

        return MemoryStorage()
    if scheme == "sqlite":
        return _sqlite(url, parsed)
    if scheme in EXTRA_SCHEMES:
        return _from_extra(url, *EXTRA_SCHEMES[scheme])
    raise ConfigurationError(
        f"cannot use storage URL {redact(url)!r}: expected sqlite:///relative.db, "
        "sqlite:////absolute/path.db, memory://, redis://host:6379/0, "
        "redis+cluster://host:7000,host:7001 or postgresql://host/db"
    )


def _from_extra(url: str, module_name: str, class_name: str, extra: str) -> Storage:
    """A backend whose client library comes with an extra (`pip install 'scoter[redis]'`)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{redact(url)} needs the {extra} extra: pip install 'scoter[{extra}]' ({exc})"
        ) from exc
    storage: Storage = getattr(module, class_name).from_url(url)
    return storage


def _sqlite(url: str, parsed: urllib.parse.SplitResult) -> Storage:
    from scoter.storage.sqlite import SYNCHRONOUS_MODES, SQLiteStorage

    if parsed.netloc or not parsed.path.startswith("/") or len(parsed.path) < 2:
        raise ConfigurationError(
            f"bad SQLite URL {redact(url)!r}: write sqlite:///relative.db or "
            "sqlite:////absolute.db (three slashes, then the path)"
        )
    path = parsed.path[1:]
    options = dict(urllib.parse.parse_qsl(parsed.query))
    synchronous = options.pop("synchronous", "normal").lower()
    if options:
        raise ConfigurationError(f"unknown SQLite URL option(s): {', '.join(options)}")
    if synchronous not in SYNCHRONOUS_MODES:
        raise ConfigurationError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(
            f"cannot open {redact(url)!r}: directory {directory} does not exist"
        )
    try:
        return SQLiteStorage(path, synchronous=synchronous)
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):  # an outage: another process holds it
            raise
        raise ConfigurationError(f"cannot open SQLite file {os.path.abspath(path)}: {exc}") from exc
