"""The ``kavka`` entry point keeps kio from importing Hypothesis (a second of start-up, ~10 MB)."""

from __future__ import annotations

import subprocess
import sys


PROBE = """
import runpy, sys
sys.argv = ["kavka", "--version"]
try:
    runpy.run_module("kavka", run_name="__main__")
except SystemExit:
    pass
print("kio loaded:", "kio" in sys.modules, "hypothesis:", type(sys.modules.get("hypothesis")).__name__)
"""


def test_python_m_kavka_never_imports_hypothesis():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # the sub-command modules did load kio, and Hypothesis stayed blocked (None), not a module
    assert done.stdout.splitlines()[-1] == "kio loaded: True hypothesis: NoneType", done.stdout


def test_the_console_script_is_the_guarded_entry_point():
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["kavka"] == "kavka.cli:run"
