"""docs/CONFIG.md is what scripts/gen_config_docs.py generates from kavka/config.py, so it cannot drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kavka.config import BROKER_KEYS, TOPIC_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_md_is_what_the_script_generates():
    generated = _generator().generate()
    assert (ROOT / "docs" / "CONFIG.md").read_text() == generated, \
        "docs/CONFIG.md is stale: run python3 scripts/gen_config_docs.py"


def test_every_setting_has_a_row_with_its_meaning():
    text = _generator().generate()
    for name, key in {**BROKER_KEYS, **TOPIC_KEYS}.items():
        assert key.doc, f"{name} has no meaning in config.py"
        assert f"| `{name}` | {key.type} |" in text
    assert "| `segment.ms` | long | `604800000` | `log.roll.ms`, `log.roll.hours` |" in text
    assert "| `num.io.threads` | int | `8` | yes |" in text.split("## Kafka settings with no effect")[1]
