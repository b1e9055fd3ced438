"""The ``kavka`` command line; :func:`run` is its entry point (console script and ``python -m kavka``)."""

from __future__ import annotations

import sys


def keep_kio_from_loading_hypothesis() -> None:
    """kio registers Hypothesis strategies at import time when Hypothesis is installed; that
    costs up to a second (it builds a unicode table), ~10 MB of resident memory, and leaves a
    ``.hypothesis`` folder in the working directory.  The command line never needs it, so the
    import is made to fail before kio is first imported.  This must run before any sub-command
    module is imported (several import kio), hence :func:`run` rather than ``cli/main.py``."""
    if "kio" not in sys.modules:
        sys.modules.setdefault("hypothesis", None)


def run() -> int:
    keep_kio_from_loading_hypothesis()
    from kavka.cli.main import main
    return main()
