"""Turn URLs and SCOTER_* environment variables into storage and settings."""

from __future__ import annotations

import importlib
import os
import urllib.parse

from scoter.exceptions import ConfigurationError
from scoter.serializers import Signer
from scoter.storage.base import Storage

ENV_URL = "SCOTER_URL"
ENV_SECRET_KEYS = "SCOTER_SECRET_KEYS"
SECRET_PARAMETERS = {"password", "passwd", "pass", "secret", "token", "sslpassword"}

EXTRA_SCHEMES = {
    # scheme: (module, class, extra that installs its client library)
    "redis": ("scoter.storage.redis", "RedisStorage", "redis"),
    "rediss": ("scoter.storage.redis", "RedisStorage", "redis"),
    "postgres": ("scoter.storage.postgres", "PostgresStorage", "postgres"),
    "postgresql": ("scoter.storage.postgres", "PostgresStorage", "postgres"),
}


def redact(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs and errors."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    userinfo, at, host = parts.netloc.rpartition("@")  # the last '@', as urlsplit splits
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(key.lower() in SECRET_PARAMETERS for key, _ in query)
    if not (at and ":" in userinfo) and not secret_query:
        return url  # unchanged: urlunsplit would not give back sqlite:////abs intact
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}")
    hidden = [(k, "***" if k.lower() in SECRET_PARAMETERS else v) for k, v in query]
    parts = parts._replace(query=urllib.parse.urlencode(hidden, safe="*"))
    return urllib.parse.urlunsplit(parts)


def default_url(app_name: str) -> str:
    """$SCOTER_URL, else a SQLite file named after the app in the working directory."""
    return os.environ.get(ENV_URL) or f"sqlite:///{app_name}.db"


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
    """Open the storage a URL names: sqlite:///path, memory://, redis://, postgresql://."""
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
        "sqlite:////absolute/path.db, memory://, redis://host:6379/0 or postgresql://host/db"
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
            f"bad SQLite URL {url!r}: write sqlite:///relative.db or sqlite:////absolute.db "
            "(three slashes, then the path)"
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
        raise ConfigurationError(f"cannot open {url!r}: directory {directory} does not exist")
    return SQLiteStorage(path, synchronous=synchronous)
