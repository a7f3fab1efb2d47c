"""Key-value data (scoter.storage.keyvalue): a value per key, shared by every process of the
storage; `put_data_if_empty` and `pop_data` are atomic, so of racing callers one wins; a
value with a ttl is gone once it passed."""

from __future__ import annotations

import time
from typing import Any

from scoter.storage.base import Storage

from .conftest import Backend
from .helpers import race


def test_put_peek_pop_delete(storage: Storage) -> None:
    assert storage.peek_data("k") is None and storage.pop_data("k") is None
    storage.put_data("k", b"one")
    storage.put_data("k", b"two")  # replaces
    assert storage.peek_data("k") == b"two" and storage.peek_data("k") == b"two"
    assert storage.pop_data("k") == b"two"
    assert storage.pop_data("k") is None and storage.peek_data("k") is None
    storage.put_data("k", b"\x00\xff")
    assert storage.delete_data("k") and not storage.delete_data("k")


def test_put_if_empty_stores_only_into_an_empty_key(storage: Storage) -> None:
    assert storage.put_data_if_empty("k", b"first")
    assert not storage.put_data_if_empty("k", b"second")
    assert storage.pop_data("k") == b"first"
    assert storage.put_data_if_empty("k", b"third")


def test_a_value_with_a_ttl_is_gone_once_it_passed(storage: Storage) -> None:
    storage.put_data("short", b"v", ttl=0.2)
    assert storage.put_data_if_empty("held", b"v", ttl=0.2)
    storage.put_data("kept", b"v")
    assert storage.peek_data("short") == b"v"
    time.sleep(0.3)
    assert storage.peek_data("short") is None and storage.pop_data("short") is None
    assert storage.put_data_if_empty("held", b"again"), "an expired value leaves the key empty"
    assert storage.peek_data("held") == b"again" and storage.peek_data("kept") == b"v"


def test_flush_deletes_every_key_of_this_storage_only(
    storage: Storage, backend: Backend, tmp_path: Any
) -> None:
    for key in ("a", "b*", "[c]", "d\\"):
        storage.put_data(key, key.encode())
    (tmp_path / "other").mkdir()
    other = backend.open(backend.locate(tmp_path / "other"))
    try:
        other.put_data("a", b"other's")
        assert storage.flush_data() == 4
        assert all(storage.peek_data(k) is None for k in ("a", "b*", "[c]", "d\\"))
        if backend.shared:
            assert other.peek_data("a") == b"other's"
    finally:
        other.flush_data()
        other.close()


def _pop_and_put(open_: Any, location: str, name: str, start: Any, out: Any) -> None:
    storage = open_(location)
    try:
        start.wait()
        out.put(
            (name, storage.pop_data("prize"), storage.put_data_if_empty("claim", name.encode()))
        )
    finally:
        storage.close()


def test_of_racing_processes_one_pops_the_value_and_one_fills_the_key(
    backend: Backend, location: str, storage: Storage
) -> None:
    if not backend.shared:
        return
    storage.put_data("prize", b"gold")
    reports = race(_pop_and_put, 4, backend.open, location)
    assert [r[1] for r in reports].count(b"gold") == 1
    winners = [name for name, _, stored in reports if stored]
    assert len(winners) == 1 and storage.peek_data("claim") == winners[0].encode()
