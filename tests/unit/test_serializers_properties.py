"""Property tests of the JSON dialect (hypothesis, from the dev extra)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoter import DecodeError
from scoter.serializers import TAG, JSONSerializer

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
zones = st.none() | offsets

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(timezones=zones),
    st.uuids(),
    st.decimals(allow_nan=False),
)

hashables = st.recursive(
    leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)

keys = st.text() | st.sampled_from([TAG, "v"])

values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=20,
)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return ("dict", sorted((repr(_types(k)), repr(_types(v))) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_types(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(_types(v)) for v in value))
    if isinstance(value, (dt.datetime, dt.time)):
        return (type(value).__name__, value.utcoffset())
    return type(value).__name__


@SETTINGS
@given(values)
def test_every_supported_value_roundtrips_with_its_types(value: Any) -> None:
    serializer = JSONSerializer()
    back = serializer.loads(serializer.dumps(value))
    assert back == value
    assert _types(back) == _types(value)


KINDS = [
    *("datetime", "date", "time", "uuid", "decimal", "bytes"),
    *("tuple", "set", "frozenset", "dict", "unknown"),
]


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tagged = st.fixed_dictionaries({TAG: st.sampled_from(KINDS), "v": inner})
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3) | tagged


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    _json_containers,
    max_leaves=8,
)


@settings(SETTINGS, derandomize=True, max_examples=500)
@given(json_values)
def test_any_json_document_decodes_or_raises_decode_error(document: Any) -> None:
    with contextlib.suppress(DecodeError):
        JSONSerializer().loads(json.dumps(document).encode())
