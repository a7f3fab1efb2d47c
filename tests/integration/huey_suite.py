"""Run Huey's own test suite (shipped inside the huey package, `huey/tests`) against scoter's
drop-in, through the `huey` import alias, and report which tests fail.

The suite is copied as it is into a scratch directory as the package `hueytests`: only its
imports of itself (`from huey.tests.base import ...`) are renamed, since under the alias
`huey` is scoter.huey, which has no tests package. Every other line runs unchanged.

    python tests/integration/huey_suite.py      # prints each failing test and the totals
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

MODULES = (
    "test_api", "test_asyncio", "test_crontab", "test_helpers", "test_immediate",
    "test_priority", "test_registry", "test_serializer", "test_signals", "test_utils",
    "test_wrappers",
)  # fmt: skip
"""The modules of Huey's suite that test what an app uses. Left out: test_consumer and
test_storage (Huey's consumer and storage internals: scoter's are its own), test_mini,
test_sql_huey, test_stats, test_postgres and test_django_tasks (contribs scoter does not
map; Django runs in tests/integration/test_django.py)."""
PER_TEST_TIMEOUT_S = 15
SELF_IMPORT = re.compile(r"\bhuey\.tests\b")
CONFTEST = "import scoter.huey.alias\n\nscoter.huey.alias.install()\n"


@dataclass
class SuiteRun:
    version: str
    passed: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """test id (module::Class::test) -> the first line of its failure."""


def huey_version() -> str | None:
    try:
        return importlib.metadata.version("huey")
    except importlib.metadata.PackageNotFoundError:
        return None


def suite_source() -> Path | None:
    """Where the installed huey keeps its tests (found without importing huey)."""
    spec = importlib.util.find_spec("huey")
    if spec is None or not spec.submodule_search_locations:
        return None
    tests = Path(next(iter(spec.submodule_search_locations))) / "tests"
    return tests if (tests / "test_api.py").exists() else None


def prepare(source: Path, workdir: Path) -> Path:
    target = workdir / "hueytests"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for module in target.glob("*.py"):
        module.write_text(SELF_IMPORT.sub("hueytests", module.read_text()))
    (target / "__init__.py").write_text("")  # the original imports every module
    (workdir / "conftest.py").write_text(CONFTEST)
    (workdir / "pytest.ini").write_text("[pytest]\n")
    return target


def run_suite(workdir: Path, source: Path, version: str) -> SuiteRun:
    prepare(source, workdir)
    report = workdir / "report.xml"
    paths = [f"hueytests/{m}.py" for m in MODULES]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no",
         "--continue-on-collection-errors",
         f"--timeout={PER_TEST_TIMEOUT_S}", f"--junitxml={report}", *paths],
        cwd=workdir, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return parse(report, version)


def parse(report: Path, version: str) -> SuiteRun:
    run = SuiteRun(version)
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = _test_id(case.get("classname", ""), case.get("name", ""))
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            message = (problem.get("message") or "").strip().splitlines()
            run.failed[test_id] = message[0][:160] if message else ""
        elif case.find("skipped") is not None:
            run.skipped += 1
        else:
            run.passed += 1
    return run


def _test_id(classname: str, name: str) -> str:
    """`test_api::TestQueue::test_workflow`; a module that did not import: `test_utils`."""
    parts = classname.split(".")
    if len(parts) < 3:  # a collection error: classname is empty, name the module's path
        return Path(name.replace(".", "/")).name.removesuffix("/py")
    return f"{parts[1]}::{parts[2]}::{name}"


def main() -> int:
    version, source = huey_version(), suite_source()
    if version is None or source is None:
        print("huey is not installed: pip install 'scoter[dev]'")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        run = run_suite(Path(tmp), source, version)
    for test_id, message in sorted(run.failed.items()):
        print(f"{test_id}: {message}")
    print(f"huey {run.version}: {run.passed} passed, {len(run.failed)} failed, "
          f"{run.skipped} skipped")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
