"""The JSON dialect, opt-in pickle, and HMAC signing with key rotation."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import pytest

from scoter import ConfigurationError, DecodeError, Scoter
from scoter.serializers import (
    TAG,
    JSONSerializer,
    PickleSerializer,
    Signer,
    get_serializer,
)

UTC = dt.timezone.utc
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))


def roundtrip(value: Any) -> Any:
    return JSONSerializer().loads(JSONSerializer().dumps(value))


def assert_same(value: Any) -> None:
    """Equal after a round trip, and of the same type, recursively."""
    back = roundtrip(value)
    assert back == value
    assert _types(back) == _types(value)


def _types(value: Any) -> Any:
    """A structural fingerprint of types, so that tuple != list and set != frozenset show up."""
    if isinstance(value, dict):
        return ("dict", sorted((repr(_types(k)), repr(_types(v))) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_types(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(_types(v)) for v in value))
    return type(value).__name__


class Custom:
    """A class the JSON dialect does not know (module level, so pickle can find it)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


# -- the JSON dialect -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 2, 29, 23, 59, 58, 123456),
        dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC),
        dt.datetime(1999, 12, 31, 1, 2, 3, tzinfo=PLUS_0530),
        dt.date(2024, 2, 29),
        dt.time(13, 14, 15, 16),
        dt.time(13, 14, tzinfo=PLUS_0530),
        dt.timedelta(days=-3, seconds=5, microseconds=7),
        dt.timedelta(days=999_999_999, seconds=86399, microseconds=999_999),
        dt.timedelta(0),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        decimal.Decimal("3.14159265358979323846264338327950288"),
        decimal.Decimal("-0.00"),
        decimal.Decimal("1E+30"),
        b"\x00\xff binary \x80",
        b"",
        (1, "two", 3.0),
        (),
        {1, 2, 3},
        set(),
        frozenset({"a", "b"}),
        frozenset(),
        None,
        True,
        0,
        -(2**70),
        1.5,
        "text ü ✓",
        [],
        {},
    ],
    ids=repr,
)
def test_dialect_roundtrips_each_type(value: Any) -> None:
    assert_same(value)


def test_a_timedelta_argument_reaches_the_task_as_a_timedelta() -> None:
    app = Scoter("td", immediate=True)

    @app.task
    def wait(how_long: dt.timedelta) -> float:
        assert type(how_long) is dt.timedelta
        return how_long.total_seconds()

    assert wait(dt.timedelta(minutes=90)).get() == 5400.0


def test_naive_and_aware_datetimes_keep_their_awareness() -> None:
    naive = roundtrip(dt.datetime(2024, 1, 1, 12, 0))
    aware = roundtrip(dt.datetime(2024, 1, 1, 12, 0, tzinfo=PLUS_0530))
    assert naive.tzinfo is None
    assert aware.utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_datetime_is_not_decoded_as_a_date() -> None:
    """datetime subclasses date: the more specific tag must win."""
    value = roundtrip(dt.datetime(2024, 1, 1, 0, 0))
    assert type(value) is dt.datetime
    assert type(roundtrip(dt.date(2024, 1, 1))) is dt.date


def test_nested_combinations_roundtrip() -> None:
    value = {
        "when": [dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), dt.date(2020, 1, 1)],
        "ids": (uuid.uuid4(), uuid.uuid4()),
        "money": {"eur": decimal.Decimal("10.50"), "raw": b"\x01\x02"},
        "tags": frozenset({("a", 1), ("b", 2)}),
        "sets": {frozenset({1, 2}), frozenset({3})},
        "deep": [[({"x": (1, [2, (3, {4})])},)]],
    }
    assert_same(value)


def test_dicts_with_non_string_keys_roundtrip() -> None:
    value = {
        1: "int",
        2.5: "float",
        None: "none",
        (1, "a"): "tuple",
        frozenset({1}): "frozenset",
        uuid.UUID(int=7): "uuid",
        dt.date(2024, 1, 1): "date",
        b"k": "bytes",
    }
    assert_same(value)


def test_user_dict_with_the_tag_key_roundtrips() -> None:
    for value in (
        {TAG: "datetime", "v": "2024-01-01T00:00:00"},
        {TAG: "tuple", "v": [1, 2]},
        {TAG: "no such tag"},
        {TAG: None, "other": 1},
        {"outer": {TAG: {TAG: "dict"}}},
    ):
        assert_same(value)


def test_encoded_form_is_plain_json() -> None:
    data = JSONSerializer().dumps({"t": (1, 2), "b": b"x"})
    decoded = json.loads(data)
    assert decoded["t"] == {TAG: "tuple", "v": [1, 2]}
    assert decoded["b"][TAG] == "bytes"


def test_subclasses_of_plain_types_encode_as_their_base_type() -> None:
    class Name(str):
        pass

    class Level(enum.IntEnum):
        LOW = 1

    value = {"name": Name("x"), Name("key"): [Level.LOW, True, 1.5, None, [Name("y")]]}
    assert JSONSerializer().dumps(value) == b'{"name":"x","key":[1,true,1.5,null,["y"]]}'


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (object(), "object"),
        (Custom(1), "Custom"),
        (bytearray(b"x"), "bytearray"),
        ({"nested": [(1, Custom(2))]}, "Custom"),
    ],
)
def test_unsupported_type_raises_a_helpful_type_error(value: Any, type_name: str) -> None:
    with pytest.raises(TypeError) as info:
        JSONSerializer().dumps(value)
    message = str(info.value)
    assert type_name in message
    assert "pickle" in message


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00garbage",
        b"",
        b"{not json",
        b'{"__scoter__": "no-such-tag", "v": 1}',
        b'{"__scoter__": "tuple"}',
        b'{"__scoter__": "datetime", "v": "yesterday"}',
        b'{"__scoter__": "bytes", "v": 5}',
        b'{"__scoter__": "set", "v": [{"a": 1}]}',
        b'{"__scoter__": "dict", "v": [1, 2]}',
    ],
)
def test_garbage_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JSONSerializer().loads(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"__scoter__": "decimal", "v": "not a number"}',
        b'{"__scoter__": "uuid", "v": 5}',
        b'{"__scoter__": "timedelta", "v": [1, 2]}',
        b'{"__scoter__": "timedelta", "v": [1, 2, "3"]}',
        b'{"__scoter__": "timedelta", "v": [1e999, 0, 0]}',
    ],
)
def test_malformed_tag_values_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JSONSerializer().loads(data)


# -- choosing a serializer --------------------------------------------------------------------


def test_json_is_the_default_and_pickle_is_opt_in() -> None:
    assert isinstance(Scoter(immediate=True).serializer, JSONSerializer)
    assert isinstance(Scoter(immediate=True, serializer="pickle").serializer, PickleSerializer)


def test_default_app_encodes_messages_as_json_and_refuses_custom_objects() -> None:
    app = Scoter(immediate=True)

    @app.task
    def echo(x: Any) -> Any:
        return x

    assert json.loads(app.encode_message(echo.s(1, (2, 3))))["args"][0] == 1
    with pytest.raises(TypeError, match="pickle"):
        echo(Custom(1))


def test_pickle_app_runs_tasks_with_arbitrary_objects() -> None:
    app = Scoter(immediate=True, serializer="pickle")

    @app.task
    def echo(x: Any) -> Any:
        return x

    assert echo(Custom(5)).get() == Custom(5)


def test_pickle_serializer_garbage_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        PickleSerializer().loads(b"certainly not a pickle")


def test_unknown_serializer_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="yaml"):
        get_serializer("yaml")
    with pytest.raises(ConfigurationError, match="json"):
        Scoter(immediate=True, serializer="yaml")


def test_serializer_object_is_used_as_given() -> None:
    serializer = PickleSerializer()
    assert get_serializer(serializer) is serializer


# -- signing ----------------------------------------------------------------------------------

K1, K2 = "key one, 16 bytes+", "key two, 16 bytes+"
OLD, NEW = "the old key, retiring", "the new key, signing"


def test_sign_then_verify_returns_the_data() -> None:
    signer = Signer([K1])
    data = JSONSerializer().dumps({"args": [1.5, "x.y"], "kwargs": {}})
    signed = signer.sign(data)
    assert signed != data
    assert signer.verify(signed) == data


def test_key_rotation_new_key_signs_old_key_still_verifies() -> None:
    old, new = Signer([OLD]), Signer([NEW, OLD])
    data = b'{"args":[]}'
    assert new.verify(old.sign(data)) == data
    assert new.sign(data) != old.sign(data)
    assert new.sign(data) == Signer([NEW.encode()]).sign(data)
    with pytest.raises(DecodeError):
        old.verify(new.sign(data))


def test_tampered_message_raises_decode_error() -> None:
    signer = Signer([K1])
    signed = bytearray(signer.sign(b'{"args":[1]}'))
    signed[-3] ^= 0x01
    with pytest.raises(DecodeError, match="signature"):
        signer.verify(bytes(signed))


def test_message_signed_with_an_unknown_key_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        Signer([K1]).verify(Signer([K2]).sign(b"data"))


@pytest.mark.parametrize("data", [b'{"args":[1.5]}', b"", b"." * 70, b"x" * 64])
def test_unsigned_message_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Signer([K1]).verify(data)


def test_signer_needs_a_key() -> None:
    with pytest.raises(ConfigurationError):
        Signer([])


@pytest.mark.parametrize("key", ["correct horse battery staple", b"correct horse battery staple"])
def test_secret_keys_given_as_one_string_is_one_key(key: str | bytes) -> None:
    """Not one key per character: a bare string would otherwise sign with its first letter."""
    app = Scoter(immediate=True, secret_keys=key)
    assert app.signer is not None
    data = b'{"args":[],"kwargs":{}}'
    assert app.signer.sign(data) == Signer(["correct horse battery staple"]).sign(data)
    for other in ("correct horse battery stapl", "correct horse battery staple!"):
        with pytest.raises(DecodeError):
            app.signer.verify(Signer([other]).sign(data))


def test_signed_app_round_trip_in_immediate_mode() -> None:
    app = Scoter(immediate=True, secret_keys=[K2, K1])

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3).get() == 5
    info = app.storage.get(add(1, 1).id)
    assert info is not None
    assert Signer([K2]).verify_task(info.payload)
