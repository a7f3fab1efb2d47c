"""What the inspection commands print of stored data is text: never rich markup, never an
escape sequence the terminal obeys (docs/security.md).

Real `scoter` processes on a real SQLite file. The hostile names are written with
`Storage.enqueue`, as an older producer or another client could have written them: the app
refuses such names since, but a store may hold them.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from scoter.storage.base import NewTask

MARKUP_NAME = "report[/]"
MARKUP_ERROR = "[/x] closes nothing, [bold]opens"
ESCAPES_NAME = "evil\x1b[2J\x1b]0;pwned\x07\u202eboss\nline"
ESCAPES_ERROR = "plain \x1b[31mred\x1b[0m and an emoji code :thumbs_up:"
CONSUMER = "host\x1b[5m[/]:1:abc"
RAW = ("\x1b", "\x07", "\u202e")
"""Characters no output may carry raw (rich adds no colour codes when it writes to a pipe)."""

APP = """\
from scoter import Scoter

app = Scoter("terminal", {url!r})


@app.task
def markup():
    raise ValueError({markup!r})


@app.task
def escapes():
    raise ValueError({escapes!r})
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An app on a SQLite file in tmp_path, imported here as the CLI imports it."""
    name = f"terminal_app_{uuid.uuid4().hex[:8]}"
    source = APP.format(
        url=f"sqlite:///{tmp_path / 'q.db'}", markup=MARKUP_ERROR, escapes=ESCAPES_ERROR
    )
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = importlib.import_module(name)
    yield loaded
    loaded.app.storage.close()
    sys.modules.pop(name, None)


def scoter(module: ModuleType, *args: str) -> subprocess.CompletedProcess[str]:
    """`scoter ARGS` in a real process, its output 200 columns wide, exit 0 expected."""
    directory = Path(module.__file__ or "").parent
    env = {**os.environ, "PYTHONPATH": str(directory), "COLUMNS": "200"}
    env.pop("SCOTER_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "scoter", *args], cwd=directory, env=env, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def app_of(module: ModuleType) -> str:
    return f"{module.__name__}:app"


def dead_tasks(module: ModuleType) -> dict[str, str]:
    """Four dead tasks: two hostile names (unknown tasks) and two hostile errors; by kind."""
    storage = module.app.storage
    storage.enqueue([NewTask("markup-name", MARKUP_NAME, "default", b'{"args": []}')])
    storage.enqueue([NewTask("escapes-name", ESCAPES_NAME, "default", b'{"args": []}')])
    ids = {
        "markup-name": "markup-name",
        "escapes-name": "escapes-name",
        "markup-error": module.markup().id,
        "escapes-error": module.escapes().id,
    }
    assert module.app.run_pending() == 4
    return ids


def test_markup_in_names_and_errors_prints_as_written(module: ModuleType) -> None:
    """`[/]` in a name or an error used to end `dead list` and `show` with a MarkupError."""
    ids = dead_tasks(module)
    listed = scoter(module, "dead", "list", app_of(module)).stdout
    assert MARKUP_NAME in listed
    assert MARKUP_ERROR in listed
    for kind in ("markup-name", "markup-error"):
        shown = scoter(module, "show", app_of(module), ids[kind]).stdout
        assert (MARKUP_NAME if kind == "markup-name" else MARKUP_ERROR) in shown


def test_escape_sequences_in_stored_data_are_shown_not_obeyed(module: ModuleType) -> None:
    ids = dead_tasks(module)
    outputs = [
        scoter(module, "dead", "list", app_of(module)).stdout,
        scoter(module, "show", app_of(module), ids["escapes-name"]).stdout,
        scoter(module, "show", app_of(module), ids["escapes-error"]).stdout,
    ]
    for output in outputs:
        for char in RAW:
            assert char not in output, output
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\u202eboss\\nline" in outputs[0]
    assert "\\x1b[31mred\\x1b[0m" in outputs[2]
    assert ":thumbs_up:" in outputs[2]  # an emoji code is text too
    assert "\N{THUMBS UP SIGN}" not in outputs[2]


def test_info_prints_a_hostile_consumer_id_and_task_name_as_text(module: ModuleType) -> None:
    storage = module.app.storage
    storage.enqueue([NewTask("running", MARKUP_NAME + "\x1b[1m", "default", b'{"args": []}')])
    assert len(storage.claim(["default"], 1, 60.0, CONSUMER)) == 1
    output = scoter(module, "info", app_of(module)).stdout
    for char in RAW:
        assert char not in output, output
    assert "host\\x1b[5m[/]:1:abc" in output
    assert "report[/]\\x1b[1m" in output
