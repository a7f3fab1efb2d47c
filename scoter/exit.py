"""How a consumer's process ends once `Consumer.run()` returned: shared by the commands that
run one (`scoter huey-consumer`, `manage.py run_huey`, `manage.py scoter_worker`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from scoter.consumer.supervisor import EXIT_RESTART


def finish(code: int, abandoned_threads: int) -> NoReturn:
    """Exit with `code`: after SIGHUP (EXIT_RESTART) re-execute the same command line; with
    threads still inside released tasks (their leases are released) leave without waiting."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if code == EXIT_RESTART:
        os.execv(sys.executable, sys.orig_argv)
    if abandoned_threads:
        os._exit(code)
    sys.exit(code)
