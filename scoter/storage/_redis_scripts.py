"""The Lua scripts of the Redis storage: each sent with the blocks of lib.lua it uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.commands.core import Script

SCRIPTS = (
    "enqueue", "claim", "ack", "ack_many_and_claim", "heartbeat", "retry", "release", "dead",
    "checkpoint", "isolate", "crash", "progress", "rescue", "promote", "requeue_dead", "purge",
    "expire_results", "get", "counts", "list", "enqueue_slot", "hand_back", "find",
    "revoke", "restore", "revocations", "take_revocation", "next_eta",
    "enqueue_unique", "lock_acquire", "lock_renew", "lock_release", "locks", "limits_set",
    "limit_states", "take_rate", "claim_ahead", "ack_flows_and_claim", "dead_and_enqueue",
)  # fmt: skip
CLUSTER_SCRIPTS = (
    "ids_take", "ids_forget", "id_leave", "forgotten", "slot_advance", "slot_settle",
    "ack_and_hand_off", "dead_and_hand_off", "chord_join",
)  # fmt: skip
"""Scripts only a Redis Cluster uses (see redis_cluster.py)."""
FOLLOWED_BY = {"enqueue_slot": "enqueue"}
"""Scripts sent with another one's text after their own (see enqueue_slot.lua)."""
CALLING = {
    "ack_flows_and_claim": ("enqueue",), "dead_and_enqueue": ("dead", "enqueue"),
    "dead_and_hand_off": ("dead",),
}  # fmt: skip
"""Scripts sent with other scripts' texts in front, each as a function `<name>_script` that
returns what that script returns, reading the ARGV the caller leaves it."""
EMBEDS = {"enqueue_unique": "enqueue"}
"""Scripts sent with another one's text in place of the line `--{name}` of their own: the
body of a function (see enqueue_unique.lua)."""
LIB_FILES = ("lib.lua", "lib_claims.lua")
LUA_LOCAL = re.compile(r"^local (?:function )?(\w+)", re.MULTILINE)
LUA_COMMENT = re.compile(r"--[^\n]*")


def load_scripts(client: Any, names: Sequence[str] = SCRIPTS) -> dict[str, Script]:
    """Each script of `names` with what it uses of lib.lua in front, registered to run by SHA
    (reloaded after NOSCRIPT) with `client` (a redis-py client or cluster client)."""
    folder = resources.files("scoter.storage").joinpath("redis_scripts")
    lib = lib_blocks()

    def text(name: str) -> str:
        own = folder.joinpath(f"{name}.lua").read_text("utf-8")
        embedded = EMBEDS.get(name)
        if embedded is not None:
            own = own.replace(f"--{{{embedded}}}", text(embedded))
        after = FOLLOWED_BY.get(name)
        own = own if after is None else f"{own}\n{text(after)}"
        called = [f"local function {c}_script()\n{text(c)}\nend\n" for c in CALLING.get(name, ())]
        return "\n".join([*called, own])

    return {name: client.register_script(_with_lib(lib, text(name))) for name in names}


def lib_blocks() -> list[str]:
    """The blocks of the scripts' library (LIB_FILES, in order), each one `local` definition
    with its comment; a block uses only those before it."""
    folder = resources.files("scoter.storage").joinpath("redis_scripts")
    texts = [folder.joinpath(name).read_text(encoding="utf-8") for name in LIB_FILES]
    return "\n\n".join(texts).split("\n\n")


def _with_lib(blocks: list[str], script: str) -> str:
    """`script` after the blocks of lib.lua that it uses, directly or through a later block (a
    block uses only those before it, as Lua's locals require)."""
    used = LUA_COMMENT.sub("", script)
    kept: list[str] = []
    for block in reversed(blocks):
        names = LUA_LOCAL.findall(block)
        if any(re.search(rf"\b{name}\b", used) for name in names):
            kept.append(block)
            used += LUA_COMMENT.sub("", block)
    return "\n\n".join([*reversed(kept), script])
