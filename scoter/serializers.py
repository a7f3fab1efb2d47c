"""Encoding of task arguments, results and checkpoints.

The default is JSON with a small dialect for the types Python code passes around every day:
datetime, date, time, UUID, Decimal, bytes, tuple, set and frozenset, and dicts whose keys are
not strings. Each becomes an object with a single `"__scoter__"` tag; a user dict that happens to
have that key is tagged too, so everything round-trips. Pickle is available but never the
default: it executes code on load. A `Signer` adds HMAC-SHA256 signatures with key rotation.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import json
import pickle
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from scoter.exceptions import ConfigurationError, DecodeError

TAG = "__scoter__"


class Serializer(Protocol):
    """Turns a Python value into bytes and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


def _tag(kind: str, value: Any) -> dict[str, Any]:
    return {TAG: kind, "v": value}


_ENCODERS: list[tuple[type, Callable[[Any], dict[str, Any]]]] = [
    (dt.datetime, lambda v: _tag("datetime", v.isoformat())),
    (dt.date, lambda v: _tag("date", v.isoformat())),
    (dt.time, lambda v: _tag("time", v.isoformat())),
    (uuid.UUID, lambda v: _tag("uuid", str(v))),
    (decimal.Decimal, lambda v: _tag("decimal", str(v))),
    (bytes, lambda v: _tag("bytes", base64.b64encode(v).decode("ascii"))),
]

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
    "bytes": base64.b64decode,
}


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types JSON says as they are (exactly these: subclasses take the slower path)."""


def to_json(value: Any) -> Any:
    """Rewrite `value` into plain JSON types, tagging what JSON cannot say."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [v if type(v) in _SCALARS else to_json(v) for v in value]
    if kind is dict and TAG not in value and all(type(k) is str for k in value):
        return {k: v if type(v) in _SCALARS else to_json(v) for k, v in value.items()}
    return _to_json(value)


def _to_json(value: Any) -> Any:
    """`to_json` of anything but the exact plain types it handles itself."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        if TAG in value or not all(isinstance(k, str) for k in value):
            return _tag("dict", [[to_json(k), to_json(v)] for k, v in value.items()])
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return _tag("tuple", [to_json(v) for v in value])
    if isinstance(value, (set, frozenset)):
        kind = "set" if isinstance(value, set) else "frozenset"
        return _tag(kind, [to_json(v) for v in value])
    for cls, encode in _ENCODERS:
        if isinstance(value, cls):
            return encode(value)
    raise TypeError(
        f"cannot encode {type(value).__name__} as JSON: pass plain data (str, numbers, lists, "
        "dicts, datetime, UUID, Decimal, bytes, tuples, sets) or use serializer='pickle'"
    )


def from_json(value: Any) -> Any:
    """Undo `to_json`."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if kind is None:
        return {k: from_json(v) for k, v in value.items()}
    inner = value["v"]
    if kind == "dict":
        return {_hashable(from_json(k)): from_json(v) for k, v in inner}
    if kind in ("tuple", "set", "frozenset"):
        items = [_hashable(from_json(v)) for v in inner] if kind != "tuple" else from_json(inner)
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError(f"unknown type tag {kind!r} in message")
    return decoder(inner)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""json.dumps(..., separators=(",", ":")), without building an encoder per call."""
_DECODE = json.JSONDecoder().decode
"""json.loads of a str, without its checks and encoding detection per call."""


class JSONSerializer:
    """The default: compact UTF-8 JSON in the dialect above."""

    def dumps(self, value: Any) -> bytes:
        return _ENCODER.encode(to_json(value)).encode()

    def loads(self, data: bytes) -> Any:
        try:
            text = str(data, "utf-8")
            value = _DECODE(text)
            # Only a message with a tag in it needs rewriting; a key spelled with escapes
            # (which this encoder never writes) is left as it is.
            return from_json(value) if TAG in text else value
        except DecodeError:
            raise
        except Exception as exc:  # any malformed input: bad JSON, bad tag values
            raise DecodeError(f"not valid scoter JSON: {exc!r}") from exc


class PickleSerializer:
    """Opt-in pickle: any picklable value, but loading runs code — trust your producers."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise DecodeError(f"not a valid pickle: {exc}") from exc


class Signer:
    """HMAC-SHA256 signatures. The first key signs; every key verifies (for rotation)."""

    def __init__(self, keys: str | bytes | Sequence[str | bytes]) -> None:
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        if not keys:
            raise ConfigurationError("signing needs at least one secret key")
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]

    def sign(self, data: bytes) -> bytes:
        digest = hmac.new(self._keys[0], data, hashlib.sha256).hexdigest().encode()
        return digest + b"." + data

    def verify(self, signed: bytes) -> bytes:
        digest, sep, data = signed.partition(b".")
        if not sep or len(digest) != 64:
            raise DecodeError("message is not signed, and this app requires signatures")
        for key in self._keys:
            expected = hmac.new(key, data, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(digest, expected):
                return data
        raise DecodeError("bad signature: the message was tampered with or signed by another key")


SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    "json": JSONSerializer,
    "pickle": PickleSerializer,
}


def get_serializer(name_or_obj: str | Serializer) -> Serializer:
    """A serializer by name ('json', 'pickle') or the object itself."""
    if not isinstance(name_or_obj, str):
        return name_or_obj
    try:
        return SERIALIZERS[name_or_obj]()
    except KeyError:
        choices = ", ".join(SERIALIZERS)
        raise ConfigurationError(
            f"unknown serializer {name_or_obj!r}; choose one of {choices}"
        ) from None
