"""The ``plugboard`` command line, from the package: ``plugboard query pets_db "SELECT 1"``
or ``python -m plugboard ...``. It is the same program as the Rust binary, and the worker
program of isolated plugins."""

from __future__ import annotations

import os
import sys

from . import _plugboard


def main() -> None:
    program = sys.argv[0]
    # Isolated plugins run in workers started with this same command, when it is one.
    if os.access(program, os.X_OK) and not program.endswith(".py"):
        os.environ.setdefault("PLUGBOARD_WORKER", os.path.abspath(program))
    sys.exit(_plugboard.cli([program, *sys.argv[1:]]))


if __name__ == "__main__":
    main()
