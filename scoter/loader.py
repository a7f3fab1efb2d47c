"""Find a Scoter app by its import path (`module.path:attribute`), and the path of an app."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from types import ModuleType
from typing import TYPE_CHECKING

from scoter.display import one_line

if TYPE_CHECKING:
    from scoter.app import Scoter


class AppLoadError(Exception):
    """The path does not name an importable Scoter app."""


def load_app(path: str) -> Scoter:
    """Import `module.path:attribute` (or `module.path`, finding its one Scoter; or Huey's
    `module.attribute`). An object with a `scoter_app` attribute (a `scoter.huey.Huey`) stands
    for that app."""
    from scoter.app import Scoter

    module_name, colon, attribute = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = _import(module_name)
    except _NotFound as missing:
        app = _dotted(module_name) if not colon else None
        if app is None:
            raise AppLoadError(str(missing)) from None
        return app
    if attribute:
        app = getattr(module, attribute, None)
        if app is None:
            raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}")
        app = getattr(app, "scoter_app", app)
    else:
        found = (getattr(v, "scoter_app", v) for v in vars(module).values())
        apps = list({id(v): v for v in found if isinstance(v, Scoter)}.values())
        if len(apps) != 1:
            raise AppLoadError(
                f"module {module_name!r} defines {len(apps)} Scoter apps; name one: "
                f"{module_name}:app"
            )
        app = apps[0]
    if not isinstance(app, Scoter):
        raise AppLoadError(f"{path} is a {type(app).__name__}, not a Scoter app")
    return app


_OURS = (__file__, importlib.__file__)
"""The files of the frames between `scoter worker` and the code it imports."""


class _NotFound(AppLoadError):
    """The module itself (or a package above it) does not exist."""


def _import(module_name: str) -> ModuleType:
    """The module; AppLoadError with the code's own traceback when importing it fails, or
    _NotFound when there is no such module."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            raise _NotFound(
                f"cannot import module {module_name!r}: no module named {exc.name!r} in "
                f"{os.getcwd()} or on sys.path"
            ) from None
        raise AppLoadError(_failure(module_name, exc)) from exc
    except Exception as exc:
        raise AppLoadError(_failure(module_name, exc)) from exc


def _dotted(name: str) -> Scoter | None:
    """Huey's `module.attribute` form: the app that attribute of that module holds, or None
    (AppLoadError with a hint when the module exists but the attribute is no app)."""
    from scoter.app import Scoter

    module_name, _, attribute = name.rpartition(".")
    if not module_name:
        return None
    try:
        module = _import(module_name)
    except _NotFound:
        return None
    app = getattr(module, attribute, None)
    if isinstance(app, Scoter):
        return app
    raise AppLoadError(
        f"no module named {name!r}, and module {module_name!r} has no Scoter app "
        f"{attribute!r}: name the app as module:attribute, e.g. {module_name}:app"
    )


def _failure(module_name: str, exc: BaseException) -> str:
    """Why importing the module failed: the exception, then the traceback of the code that
    raised it (importlib's own frames left out)."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen") and frame.filename not in _OURS
    ]
    trace = "".join(traceback.StackSummary.from_list(frames).format())
    last = "".join(traceback.format_exception_only(type(exc), exc))
    return (
        f"cannot import module {module_name!r}: {one_line(exc)}\n"
        f"Traceback (most recent call last):\n{trace}{last}".rstrip()
    )


def path_of(app: Scoter) -> str | None:
    """`module:attribute` under which an importable module holds `app`, or None."""
    for name, module in list(sys.modules.items()):
        if name in ("__main__", "__mp_main__") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is app:
                return f"{name}:{attribute}"
    return None
