"""The Lua scripts of the Redis backend as loaded: each with the blocks of lib.lua it uses."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from scoter.storage._redis_scripts import CLUSTER_SCRIPTS, SCRIPTS, _with_lib, lib_blocks

FOLDER = resources.files("scoter.storage").joinpath("redis_scripts")
LIB = lib_blocks()
LIB_NAMES = {
    name for block in LIB for name in re.findall(r"^local (?:function )?(\w+)", block, re.M)
}


def _code(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


@pytest.mark.parametrize("name", [*SCRIPTS, *CLUSTER_SCRIPTS])
def test_a_loaded_script_defines_every_lib_name_it_uses_before_its_own_code(name: str) -> None:
    script = FOLDER.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    loaded = _with_lib(LIB, script)
    assert loaded.endswith(script)
    blocks = loaded[: -len(script)].split("\n\n")[:-1]
    defined: list[str] = []
    for block in blocks:  # each block uses only itself and the blocks before it
        names = re.findall(r"^local (?:function )?(\w+)", block, re.M)
        uses = {n for n in LIB_NAMES if re.search(rf"\b{n}\b", _code(block))}
        assert uses <= {*defined, *names}, block
        defined += names
    assert len(defined) == len(set(defined))
    used = {n for n in LIB_NAMES if re.search(rf"\b{n}\b", _code(script))}
    assert used <= set(defined)


def test_a_script_gets_only_what_it_uses() -> None:
    enqueue = _with_lib(LIB, FOLDER.joinpath("enqueue.lua").read_text(encoding="utf-8"))
    assert "local function claim(" not in enqueue
    assert "local function record(" not in enqueue
    assert "local function take_id(" in enqueue and "local function forget(" in enqueue
    heartbeat = _with_lib(LIB, FOLDER.joinpath("heartbeat.lua").read_text(encoding="utf-8"))
    assert "local function settle(" not in heartbeat
