"""huey_consumer's flags on `scoter huey-consumer`, and the `huey` import alias."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scoter.huey import alias
from scoter.huey.bin.huey_consumer import app_path
from scoter.huey.consumer_options import ConsumerConfig, OptionParserHandler

EVERY_FLAG = [
    "-w", "4", "-k", "process", "-d", "0.2", "-m", "5", "-b", "1.5", "-c", "3", "-C", "-f",
    "-L", "a,b", "-M", "100", "-t", "7", "-g", "TERM", "-s", "2", "-n", "-l", "x.log", "-v",
    "-S", "-u", "app.huey",
]  # fmt: skip


def test_every_huey_consumer_flag_parses() -> None:
    options, args = OptionParserHandler().get_option_parser().parse_args(EVERY_FLAG)
    config = ConsumerConfig(**{k: v for k, v in vars(options).items() if v is not None})
    config.validate()
    assert args == ["app.huey"]
    assert (config.workers, config.worker_type, config.shutdown_timeout) == (4, "process", 7.0)
    assert (config.periodic, config.flush_locks, config.extra_locks) == (False, True, "a,b")
    assert (config.scheduler_interval, config.max_tasks, config.graceful_signal) == (2, 100, "TERM")
    long_options, _ = (
        OptionParserHandler()
        .get_option_parser()
        .parse_args(
            ["--workers", "2", "--worker-type", "thread", "--localtime", "--quiet", "x.huey"]
        )
    )
    assert (long_options.workers, long_options.utc, long_options.verbose) == (2, False, False)


def test_bad_flag_values_are_refused() -> None:
    with pytest.raises(ValueError, match="factor of 60"):
        ConsumerConfig(scheduler_interval=7).validate()


def test_help_lists_the_flags() -> None:
    shown = subprocess.run([sys.executable, "-m", "scoter", "huey-consumer", "--help"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    for flag in ("--workers", "--worker-type", "--shutdown-timeout", "--no-periodic", "--simple"):
        assert flag in shown.stdout


def test_app_path_of_a_huey_consumer_path() -> None:
    assert app_path("myapp.tasks.huey") == "myapp.tasks:huey"
    assert app_path("myapp:huey") == "myapp:huey"


def test_the_alias_maps_huey_imports() -> None:
    code = (
        "import scoter.huey.alias as a; a.install()\n"
        "from huey import RedisHuey, crontab\n"
        "from huey.api import Result\n"
        "from huey.signals import SIGNAL_ERROR\n"
        "from huey.exceptions import TaskException, TaskLockedException\n"
        "from huey.consumer_options import ConsumerConfig\n"
        "import huey, scoter.huey\n"
        "assert huey is scoter.huey and RedisHuey.__module__ == 'scoter.huey.api'\n"
        "assert scoter.huey.__spec__.name == 'scoter.huey'\n"
        "try:\n    import huey.contrib.mini\nexcept ModuleNotFoundError as e:\n    print(e)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "scoter's Huey drop-in has no scoter.huey.contrib.mini" in ran.stdout


def test_the_alias_refuses_after_the_real_huey(monkeypatch: pytest.MonkeyPatch) -> None:
    class Real:
        __name__ = "huey"

    monkeypatch.setitem(sys.modules, "huey", Real())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="imported before"):
        alias.install()


def test_alias_on_and_off_write_and_remove_the_pth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = {"purelib": str(tmp_path / "site"), "scripts": str(tmp_path / "bin")}
    (tmp_path / "site").mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.setattr(alias.sysconfig, "get_paths", lambda: paths)
    written = alias.turn_on()
    assert [Path(p).name for p in written] == [alias.PTH_NAME, "huey_consumer"]
    assert (tmp_path / "site" / alias.PTH_NAME).read_text() == alias.PTH_LINE
    assert sorted(alias.turn_off()) == sorted(written)
    assert not list((tmp_path / "site").iterdir())


def test_the_pth_line_imports_nothing_until_huey_is_imported(tmp_path: Path) -> None:
    (tmp_path / alias.PTH_NAME).write_text(alias.PTH_LINE)
    probe = (
        "import site, sys, warnings; warnings.simplefilter('error')\n"
        f"site.addsitedir({str(tmp_path)!r})\n"
        "assert 'scoter' not in sys.modules, 'the .pth line imported scoter'\n"
        "from huey import RedisHuey, crontab\n"
        "import huey.contrib.asyncio\n"
        "print(RedisHuey.__module__, crontab.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["scoter.huey.api", "scoter.huey.schedules"]
