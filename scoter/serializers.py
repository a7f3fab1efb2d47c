"""Encoding of task arguments, results and checkpoints.

The default is JSON with a small dialect for the types Python code passes around every day:
datetime, date, time, timedelta, UUID, Decimal, bytes, tuple, set and frozenset, and dicts whose
keys are not strings. Each becomes an object with a single `"__scoter__"` tag; a user dict that
happens to have that key is tagged too, so everything round-trips. Pickle is available but never the
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
from typing import Any, NamedTuple, Protocol

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
    (dt.timedelta, lambda v: _tag("timedelta", [v.days, v.seconds, v.microseconds])),
    (uuid.UUID, lambda v: _tag("uuid", str(v))),
    (decimal.Decimal, lambda v: _tag("decimal", str(v))),
    (bytes, lambda v: _tag("bytes", base64.b64encode(v).decode("ascii"))),
]

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(*_three_ints(v)),
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
        "dicts, datetime, timedelta, UUID, Decimal, bytes, tuples, sets) or use "
        "serializer='pickle'"
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


def _three_ints(value: Any) -> list[int]:
    """A timedelta's [days, seconds, microseconds], as `to_json` wrote them."""
    if not (isinstance(value, list) and len(value) == 3 and all(type(n) is int for n in value)):
        raise DecodeError(f"a timedelta is three integers, not {value!r}")
    return value


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


MIN_KEY_BYTES = 16
"""The shortest secret key accepted; 32 random bytes are recommended."""

TASK = b"task"
RESULT = b"result"
CHECKPOINT = b"checkpoint"
"""What a signed value is: part of what its signature covers, so that one cannot pass for
another (a checkpoint copied into the result column)."""

SIGNED = b"sig2:"
"""How a signed value starts: `sig2:<hex HMAC-SHA256>:<data>`."""
_DIGEST_END = len(SIGNED) + 64
_UNSIGNED = "not signed, and this app requires signatures"


class Decided(NamedTuple):
    """What the producer of a task decided besides its arguments; its signature covers them.
    (A named tuple: built once per enqueue and per claim, it costs less than a dataclass.)"""

    id: str
    name: str
    queue: str
    priority: int
    eta: float | None
    """The eta the producer asked for, in seconds since the epoch (retries move the stored
    one later)."""
    max_crashes: int

    def encode(self) -> bytes:
        return _ENCODER.encode(self).encode()

    @classmethod
    def decode(cls, data: bytes) -> Decided:
        try:
            return cls(*_DECODE(str(data, "utf-8")))
        except Exception as exc:  # signed by a key, yet not ours in shape: a leaked key
            raise DecodeError(f"the signed task fields are malformed: {exc!r}") from exc


class Signer:
    """HMAC-SHA256 signatures with key rotation: the first key signs, every key verifies.

    A signature covers what the value is (TASK, RESULT, CHECKPOINT), the id of its task for a
    result or checkpoint, and the bytes; a task's covers what its producer decided (`Decided`).
    """

    def __init__(self, keys: str | bytes | Sequence[str | bytes]) -> None:
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        if not keys:
            raise ConfigurationError(
                "secret_keys is empty: give at least one key, or secret_keys=None for no signing"
            )
        # Keyed once: a copy per signature skips HMAC's key set-up.
        self._macs = [
            hmac.new(_key(k, i, len(keys)), digestmod=hashlib.sha256) for i, k in enumerate(keys, 1)
        ]

    def sign(self, data: bytes, kind: bytes = TASK, task_id: str = "") -> bytes:
        """`data` signed with the first key as a `kind` value of task `task_id`."""
        return SIGNED + _digest(self._macs[0], kind, task_id, data) + b":" + data

    def verify(self, signed: bytes, kind: bytes = TASK, task_id: str = "") -> bytes:
        """The data of `signed`; raises DecodeError unless a key signed it as this `kind` of
        value of this task. Nothing else is read from bytes that fail."""
        if not is_signed(signed):
            raise DecodeError(_unsigned_reason(signed))
        digest, data = signed[len(SIGNED) : _DIGEST_END], signed[_DIGEST_END + 1 :]
        for mac in self._macs:
            if hmac.compare_digest(digest, _digest(mac, kind, task_id, data)):
                return data
        raise DecodeError(
            "bad signature: it was changed after it was written, signed by a key this app "
            "does not have, or copied from another task"
        )

    def sign_task(self, decided: Decided, data: bytes) -> bytes:
        """A task's payload: `decided` and the encoded arguments `data`, signed as one."""
        return self.sign(decided.encode() + b"\n" + data)

    def verify_task(self, payload: bytes) -> tuple[Decided, bytes]:
        """What the producer decided and the encoded arguments; raises DecodeError."""
        fields, _, data = self.verify(payload).partition(b"\n")
        return Decided.decode(fields), data


def _key(key: str | bytes, position: int, count: int) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    if not isinstance(raw, bytes):
        raise ConfigurationError(f"secret key {position} of {count} is not a str or bytes")
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"secret key {position} of {count} is {len(raw)} bytes; a key needs at least "
            f"{MIN_KEY_BYTES} (32 random bytes are recommended: "
            "python -c 'import secrets; print(secrets.token_hex(32))'), or pass "
            "secret_keys=None for no signing"
        )
    return raw


def _digest(keyed: hmac.HMAC, kind: bytes, task_id: str, data: bytes) -> bytes:
    """HMAC-SHA256 of kind, task id and data, hex: the task id is length-prefixed, so no two
    (task id, data) pairs give the same input."""
    tid = task_id.encode()
    mac = keyed.copy()
    mac.update(b"%s %d %s " % (kind, len(tid), tid))
    mac.update(data)
    return mac.hexdigest().encode()


def is_signed(value: bytes) -> bool:
    """Whether `value` has the shape of a signed value (not whether its signature is good)."""
    return value.startswith(SIGNED) and value[_DIGEST_END : _DIGEST_END + 1] == b":"


def _unsigned_reason(value: bytes) -> str:
    digest, sep, _ = value.partition(b".")
    if sep and len(digest) == 64:
        return (
            "signed in the format of an older scoter, which does not cover the task's name, id "
            "or queue and is no longer accepted: enqueue it again from an upgraded producer"
        )
    return f"{_UNSIGNED} ({len(value)} bytes without a signature)"


def unsigned(value: bytes) -> bytes:
    """The data of a signed value without checking its signature (an app without keys), or
    `value` itself when it is not signed."""
    return value[_DIGEST_END + 1 :] if is_signed(value) else value


def seal(
    serializer: Serializer, signer: Signer | None, value: Any, kind: bytes, task_id: str
) -> bytes:
    """A result or checkpoint (`kind`) of task `task_id` as it is stored: signed by `signer`."""
    data = serializer.dumps(value)
    return data if signer is None else signer.sign(data, kind, task_id)


def unseal(
    serializer: Serializer, signer: Signer | None, data: bytes, kind: bytes, task_id: str
) -> Any:
    """Undo `seal`. With a signer the signature is checked before the serializer reads a byte
    (an unsigned pickle is never loaded): DecodeError when it is not this task's `kind`."""
    if signer is None:
        return serializer.loads(unsigned(data))
    try:
        verified = signer.verify(data, kind, task_id)
    except DecodeError as exc:
        raise DecodeError(f"the {kind.decode()} of task {task_id} is not trusted: {exc}") from None
    return serializer.loads(verified)


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
