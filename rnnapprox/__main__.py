"""``python -m rnnapprox``: the command-line entry point (see :mod:`rnnapprox.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
