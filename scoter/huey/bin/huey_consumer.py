"""`huey_consumer`'s command line on scoter: `scoter huey-consumer myapp.huey -w 4 -k thread`
(and `huey_consumer ...` itself with the alias on). Exit codes: 0 after a stop, 1 wrong usage
or an app that cannot be loaded, 75 never (SIGHUP re-executes the same command line).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from scoter.exit import finish
from scoter.huey.consumer_options import ConsumerConfig, OptionParserHandler

EXIT_USAGE = 1


def err(text: str) -> None:
    sys.stderr.write(f"\033[91m{text}\033[0m\n")


def fail(text: str) -> NoReturn:
    err(text)
    sys.exit(EXIT_USAGE)


def load_huey(path: str) -> Any:
    """The object `package.module.name` (or `package.module:name`) names."""
    from scoter.huey.utils import load_class

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_class(path.replace(":", "."))
    except Exception as exc:
        fail(f"Error importing {path}: {exc!r}")


def app_path(path: str) -> str:
    """`module:attribute` of a huey_consumer path (`module.attribute`)."""
    if ":" in path:
        return path
    module, _, attribute = path.rpartition(".")
    return f"{module}:{attribute}"


def consumer_main(argv: Sequence[str] | None = None, prog: str = "huey_consumer") -> None:
    parser = OptionParserHandler().get_option_parser()
    parser.prog = prog
    options, args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args:
        err("Error:   missing import path to `Huey` instance")
        fail("Example: huey_consumer app.queue.huey_instance")
    config = ConsumerConfig(**{k: v for k, v in vars(options).items() if v is not None})
    try:
        config.validate()
    except ValueError as exc:
        fail(f"Error:   {exc}")
    huey = load_huey(args[0])
    if not hasattr(huey, "create_consumer") or not hasattr(huey, "scoter_app"):
        fail(f"{args[0]} is a {type(huey).__name__}, not a scoter.huey Huey app")
    config.setup_logger()
    try:
        consumer = huey.create_consumer(app_path=app_path(args[0]), **config.values)
    except ValueError as exc:
        fail(f"Error:   {exc}")
    finish(consumer.run(), consumer.scoter.abandoned_threads)


if __name__ == "__main__":
    consumer_main()
