"""Loading APP: an import that fails shows where, and Huey's `module.app` form works."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scoter.cli import EXIT_APP, cli
from scoter.loader import AppLoadError, load_app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)


def module(directory: Path, source: str, name: str | None = None) -> str:
    name = name or f"loadme_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


APP = """\
from scoter import Scoter

app = Scoter("loaded", "memory://")
not_an_app = 5
"""


def test_an_error_in_a_module_the_tasks_import_shows_its_file_line_and_traceback(
    workdir: Path,
) -> None:
    helper = module(workdir, "def compute():\n    return undefined_name + 1\n\nVALUE = compute()\n")
    tasks = module(workdir, f"import {helper}\nfrom scoter import Scoter\napp = Scoter('x')\n")
    result = invoke("info", f"{tasks}:app")
    assert result.exit_code == EXIT_APP
    first, *rest = result.stderr.splitlines()
    assert first == (
        f"error: cannot import module {tasks!r}: NameError: name 'undefined_name' is not defined"
    )
    trace = "\n".join(rest)
    assert f'{workdir / helper}.py", line 2, in compute' in trace
    assert f'{workdir / helper}.py", line 4, in <module>' in trace
    assert f'{workdir / tasks}.py", line 1, in <module>' in trace
    assert "importlib" not in trace and "loader.py" not in trace


def test_a_syntax_error_names_the_file_and_line(workdir: Path) -> None:
    name = module(workdir, "x = 1\ndef broken(:\n    pass\n")
    with pytest.raises(AppLoadError) as info:
        load_app(f"{name}:app")
    message = str(info.value)
    assert message.startswith(f"cannot import module {name!r}: SyntaxError: ")
    assert f"{name}.py, line 2" in message.splitlines()[0]
    assert "def broken(:" in message


def test_hueys_dotted_form_finds_the_app(workdir: Path) -> None:
    name = module(workdir, APP)
    assert load_app(f"{name}.app") is sys.modules[name].app
    assert invoke("info", f"{name}.app").exit_code == 0


def test_a_dotted_name_that_is_no_app_hints_at_the_colon_form(workdir: Path) -> None:
    name = module(workdir, APP)
    for attribute in ("not_an_app", "missing"):
        with pytest.raises(AppLoadError) as info:
            load_app(f"{name}.{attribute}")
        assert f"name the app as module:attribute, e.g. {name}:app" in str(info.value)


def test_a_missing_module_is_one_line_naming_where_it_looked(workdir: Path) -> None:
    for path in ("nosuch_module_x:app", "nosuch_module_x.app", "nosuch_module_x"):
        with pytest.raises(AppLoadError) as info:
            load_app(path)
        message = str(info.value)
        assert "\n" not in message
        assert f"no module named 'nosuch_module_x' in {workdir}" in message


def test_a_package_module_in_dotted_path_still_imports(workdir: Path) -> None:
    (workdir / "pkg_loader_test").mkdir()
    (workdir / "pkg_loader_test" / "__init__.py").write_text("")
    module(workdir / "pkg_loader_test", APP, name="tasks")
    app = load_app("pkg_loader_test.tasks:app")
    assert app is load_app("pkg_loader_test.tasks") is load_app("pkg_loader_test.tasks.app")
