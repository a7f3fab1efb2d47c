"""The `huey` import alias: `import huey`, `from huey.contrib.djhuey import task`, ... give
scoter.huey's modules, so a Huey app runs on scoter without changing an import.

Turn it on in one process: `import scoter.huey.alias; scoter.huey.alias.install()` before
anything imports huey (`scoter huey-consumer` does it itself). Turn it on for every process of
an environment (producers too: a web app and its consumers must agree):

    python -m scoter.huey.alias on       # writes scoter_huey_alias.pth into site-packages,
                                         # and a huey_consumer script when none exists
    python -m scoter.huey.alias off      # removes both
    python -m scoter.huey.alias status

The .pth line imports nothing, not even this module, until `huey` is imported: it costs an
interpreter start nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import sysconfig
from collections.abc import Sequence
from types import ModuleType
from typing import Any

PTH_NAME = "scoter_huey_alias.pth"
PTH_LINE = (
    "import sys; sys.meta_path.insert(0, __import__('types').SimpleNamespace(find_spec=lambda "
    "name, path=None, target=None: __import__('scoter.huey.alias').huey.alias.find_lazily("
    "name, path, target) if name == 'huey' or name.startswith('huey.') else None))\n"
)
"""The .pth line: a finder that imports nothing until `huey` is imported, then hands over to
`find_lazily` (importing scoter at every interpreter start would cost each one ~0.15 s)."""
SCRIPT_MARK = "# scoter huey alias"
SCRIPT = f"""#!{sys.executable}
{SCRIPT_MARK}
import sys
import scoter.huey.alias
scoter.huey.alias.install()
from scoter.huey.bin.huey_consumer import consumer_main
sys.exit(consumer_main())
"""


class AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `huey` and `huey.*` as the scoter.huey module of the same path."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[Any, Any]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "huey" and not fullname.startswith("huey."):
            return None
        real = "scoter.huey" + fullname[len("huey") :]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as exc:
            if exc.name != real:
                raise
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: scoter's Huey drop-in has no {real} "
                "(docs/from-huey.md lists what it maps)",
                name=fullname,
            ) from None
        package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=package)
        spec.submodule_search_locations = list(getattr(module, "__path__", [])) or None
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = sys.modules["scoter.huey" + spec.name[len("huey") :]]
        self._specs[spec.name] = (module.__spec__, getattr(module, "__loader__", None))
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The scoter.huey module is imported already: give it back its own spec, which
        the import system replaced with the alias's."""
        for name, (spec, loader) in list(self._specs.items()):
            if sys.modules.get("scoter.huey" + name[len("huey") :]) is module:
                module.__spec__, module.__loader__ = spec, loader
                del self._specs[name]


_finder = AliasFinder()


def install() -> None:
    """Make `huey` imports give scoter.huey's modules in this process. Raises RuntimeError
    when the real huey package was imported first (its objects are in use already)."""
    loaded = sys.modules.get("huey")
    if loaded is not None and not getattr(loaded, "__name__", "").startswith("scoter."):
        raise RuntimeError(
            "the huey package was imported before the scoter alias was turned on: call "
            "scoter.huey.alias.install() first thing (or `python -m scoter.huey.alias on`)"
        )
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def find_lazily(
    fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
) -> importlib.machinery.ModuleSpec | None:
    """The .pth line's finder asks here at the first `huey` import: turn the alias on and
    find `fullname` with it."""
    install()
    return _finder.find_spec(fullname, path, target)


def uninstall() -> None:
    """Stop aliasing (modules imported under `huey` stay imported)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "huey" or n.startswith("huey.")]:
        if sys.modules[name].__name__.startswith("scoter."):
            del sys.modules[name]


def installed() -> bool:
    return _finder in sys.meta_path


def _pth_path() -> str:
    return os.path.join(sysconfig.get_paths()["purelib"], PTH_NAME)


def _script_path() -> str:
    return os.path.join(sysconfig.get_paths()["scripts"], "huey_consumer")


def turn_on() -> list[str]:
    """Write the .pth file (and a huey_consumer script where none exists); the paths."""
    written = [_pth_path()]
    with open(written[0], "w") as pth:
        pth.write(PTH_LINE)
    script = _script_path()
    if not os.path.exists(script):
        with open(script, "w") as out:
            out.write(SCRIPT)
        os.chmod(script, 0o755)
        written.append(script)
    return written


def turn_off() -> list[str]:
    """Remove what `turn_on` wrote; the paths removed."""
    removed = []
    script = _script_path()
    candidates = [_pth_path()]
    if os.path.exists(script):
        with open(script, errors="replace") as text:
            if SCRIPT_MARK in text.read():
                candidates.append(script)
    for path in candidates:
        if os.path.exists(path):
            os.remove(path)
            removed.append(path)
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    command = (list(sys.argv[1:] if argv is None else argv) or ["status"])[0]
    if command == "on":
        print("alias on:", ", ".join(turn_on()))
    elif command == "off":
        print("alias off:", ", ".join(turn_off()) or "nothing to remove")
    elif command == "status":
        print("alias is", "on" if os.path.exists(_pth_path()) else "off", f"({_pth_path()})")
    else:
        print("usage: python -m scoter.huey.alias on|off|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
