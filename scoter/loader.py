"""Find a Scoter app by its import path (`module.path:attribute`), and the path of an app."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoter.app import Scoter


class AppLoadError(Exception):
    """The path does not name an importable Scoter app."""


def load_app(path: str) -> Scoter:
    """Import `module.path:attribute` (or `module.path`, finding its one Scoter). An object
    with a `scoter_app` attribute (a `scoter.huey.Huey`) stands for that app."""
    from scoter.app import Scoter

    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"cannot import module {module_name!r}: {exc!r}") from exc
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


def path_of(app: Scoter) -> str | None:
    """`module:attribute` under which an importable module holds `app`, or None."""
    for name, module in list(sys.modules.items()):
        if name in ("__main__", "__mp_main__") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is app:
                return f"{name}:{attribute}"
    return None
