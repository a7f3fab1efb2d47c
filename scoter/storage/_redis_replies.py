"""Replies of the Redis storage's scripts, read into scoter's records, and the arguments they
take (times in microseconds, lease tokens)."""

from __future__ import annotations

import logging
import os
from typing import Any

from scoter.states import CORRUPT, State
from scoter.storage._records import Fields
from scoter.storage.base import Lease, Rescued, TaskInfo

log = logging.getLogger("scoter.storage")

TOKEN_HEX = 32
"""A lease token is this many random hex digits followed by its queue's name."""
US = 1_000_000
RESCUED_FIELDS = 5
"""Fields per task in a crash's or rescue's reply (see crash in lib.lua)."""
LEASE_NAMES = (
    "token", "id", "name", "queue", "payload", "attempt", "errors", "interruptions", "crashes",
    "checkpoint", "suspect", "priority", "max_crashes",
)  # fmt: skip
"""The fields of a lease in a claim's reply, by name (see claim.lua)."""
LEASE_FIELDS = len(LEASE_NAMES)
LEASE_FIELDS_OF_TASK = ("consumer", "lease_expires", "progress")
"""Task hash fields that describe its last lease: they mean something only while running."""


def wake_keys(bases: list[str]) -> list[str]:
    return [base + "wake" for base in bases]


def us(seconds: float) -> int:
    return round(seconds * US)


def new_tokens(n: int) -> list[str]:
    raw = os.urandom(TOKEN_HEX // 2 * n).hex()
    return [raw[i : i + TOKEN_HEX] for i in range(0, TOKEN_HEX * n, TOKEN_HEX)]


def result_args(result: bytes | None, ttl: float | None) -> tuple[str, bytes, str | int]:
    """The has-result flag, result and TTL arguments of ack.lua."""
    ttl_us = "" if ttl is None else us(ttl)
    return ("", b"", ttl_us) if result is None else ("1", result, ttl_us)


def reported(reply: list[Any]) -> list[Any]:
    """A reply that starts with the script's problems: logs them, returns the rest."""
    report(reply[0])
    return reply[1:]


def report(problems: list[bytes]) -> None:
    """Log what a script quarantined, dropped or skipped (pairs: what, what was done)."""
    for i in range(0, len(problems), 2):
        what, done = (p.decode("utf-8", "replace") for p in problems[i : i + 2])
        log.error("%s: %s", what, done)


def lease_of(r: list[Any], expires: float) -> Lease:
    """One lease of a claim's reply (LEASE_FIELDS values from `r[0]`); raises
    UnicodeDecodeError for text that is not UTF-8."""
    return Lease(
        r[0].decode(), r[1].decode(), r[2].decode(), r[3].decode(), r[4], expires, int(r[5]),
        int(r[6]), int(r[7]), int(r[8]), r[9], r[10] == 1, int(r[11]), int(r[12]),
    )  # fmt: skip


def rescued_of(r: list[Any]) -> list[Rescued]:
    return [
        Rescued(r[i].decode(), r[i + 1].decode(), State(r[i + 2].decode()), int(r[i + 3]),
                r[i + 4] == 1)
        for i in range(0, len(r), RESCUED_FIELDS)
    ]  # fmt: skip


def task_info(task_id: str, pairs: list[bytes], broken: str | None = None) -> TaskInfo:
    """The task hash as inspection reads it, field by field: what cannot be read is marked in
    `corrupt` (a state this scoter does not know reads as dead, reason `corrupt`)."""
    values = {k.decode("utf-8", "replace"): v for k, v in zip(pairs[::2], pairs[1::2], strict=True)}
    f = Fields(values, encoded=True)
    if broken:
        f.problems.append(broken)
    state = f.state()
    unknown_state = bool(f.problems)
    if state is not State.RUNNING:
        for name in LEASE_FIELDS_OF_TASK:
            values.pop(name, None)
    return TaskInfo(
        id=task_id, name=f.text("name"), queue=f.text("queue"), state=state,
        priority=f.integer("priority"), eta=f.time("eta", 1 / US),
        attempts=f.integer("attempts", default=0), errors=f.integer("errors", default=0),
        interruptions=f.integer("interruptions", default=0),
        crashes=f.integer("crashes", default=0), max_crashes=f.integer("max_crashes"),
        consumer=f.optional_text("consumer"), lease_expires=f.time("lease_expires", 1 / US),
        result=f.optional_blob("result"), error=f.optional_text("error"),
        reason=CORRUPT if unknown_state else f.optional_text("reason"),
        payload=f.blob("payload"), created_at=f.time("created_at", 1 / US) or 0.0,
        updated_at=f.time("updated_at", 1 / US) or 0.0, history=f.history(),
        progress=f.progress(), suspect=values.get("suspect") == b"1", corrupt=f.corrupt,
    )  # fmt: skip
