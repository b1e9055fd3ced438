"""scripts/check_imports.py: kavka's imports point one way, and the checker sees when they do not."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_imports.py"


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


def test_the_tree_has_no_violations_beyond_the_known_list():
    report = checker.check(ROOT / "src", checker.read_known(checker.DEFAULT_KNOWN))
    assert [v.key + " at " + v.where for v in report.new] == []


def test_the_known_list_names_only_violations_that_still_exist():
    report = checker.check(ROOT / "src", checker.read_known(checker.DEFAULT_KNOWN))
    assert report.stale == [], "delete these lines from scripts/import_layers_known.txt"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"kavka/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    return _tree(tmp_path, {
        "kavka/config.py": "",
        "kavka/api/__init__.py": "",
        "kavka/api/handler.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from kavka.replication import manager

            def handle(request):
                from kavka.cluster import node  # a lazy import is a dependency too
                import aetcd.exceptions
                return request.broker.cluster
            """,
        "kavka/api/fine.py": "from kavka.api import handler\nimport kavka.config\n",
        "kavka/cluster/__init__.py": "",
        "kavka/cluster/node.py": "from ..api.handler import handle\n",
        "kavka/replication/__init__.py": "",
        "kavka/replication/manager.py": "",
        "kavka/protocol/__init__.py": "",
        "kavka/protocol/codec.py": "import os\nfrom kavka.config import X\nfrom . import frames\n",
        "kavka/protocol/frames.py": "import struct\n",
        "kavka/log/__init__.py": "",
        "kavka/log/segment.py": "def f():\n    from kavka.group import state\n",
        "kavka/group/__init__.py": "",
        "kavka/group/state.py": "",
        "kavka/alpha.py": "def f():\n    import kavka.beta\n",
        "kavka/beta.py": "from kavka import alpha\n",
    })


def test_every_rule_is_detected_in_a_tree_that_breaks_it(bad_tree: Path):
    report = checker.check(bad_tree)
    assert sorted(v.key for v in report.new) == [
        "api-no-cluster kavka.api.handler -> .cluster",
        "api-no-cluster kavka.api.handler -> aetcd.exceptions",
        "api-no-cluster kavka.api.handler -> kavka.cluster.node",
        "api-no-cluster kavka.api.handler -> kavka.replication.manager",
        "cluster-no-api kavka.cluster.node -> kavka.api.handler",
        "cycle alpha -> beta -> alpha",
        "cycle api -> cluster -> api",
        "log-below kavka.log.segment -> kavka.group.state",
        "protocol-alone kavka.protocol.codec -> kavka.config",
        "protocol-alone kavka.protocol.codec -> os",
    ]
    by_key = {v.key: v for v in report.new}
    assert by_key["api-no-cluster kavka.api.handler -> kavka.cluster.node"].where == \
        "kavka/api/handler.py:7 (in a function)"
    assert by_key["cycle alpha -> beta -> alpha"].where == (
        "kavka/alpha.py:2 (in a function) imports kavka.beta; kavka/beta.py:1 imports kavka.alpha")
    assert checker.main(["--src", str(bad_tree), "--no-known"]) == 1


def test_known_violations_do_not_fail_and_leave_the_cycle_search(bad_tree: Path, tmp_path: Path, capsys):
    known = tmp_path / "known.txt"
    known.write_text(textwrap.dedent("""\
        # comment lines and blank lines are ignored

        cluster-no-api   kavka.cluster.node -> kavka.api.handler
        api-no-cluster kavka.api.handler -> .cluster
        log-below kavka.log.gone -> kavka.group.state
        """))
    report = checker.check(bad_tree, checker.read_known(known))
    assert sorted(v.key for v in report.known) == [
        "api-no-cluster kavka.api.handler -> .cluster",
        "cluster-no-api kavka.cluster.node -> kavka.api.handler"]
    # the tolerated cluster -> api import no longer closes the api <-> cluster cycle
    assert "cycle api -> cluster -> api" not in {v.key for v in report.new}
    assert report.stale == ["log-below kavka.log.gone -> kavka.group.state"]
    assert checker.main(["--src", str(bad_tree), "--known", str(known)]) == 1
    out = capsys.readouterr().out
    assert "no longer violated (remove it from the known list): log-below kavka.log.gone" in out
    assert "known: cluster-no-api kavka.cluster.node -> kavka.api.handler" in out


def test_a_tree_that_keeps_the_rules_passes(tmp_path: Path):
    tree = _tree(tmp_path, {
        "kavka/config.py": "",
        "kavka/protocol/__init__.py": "",
        "kavka/protocol/codec.py": "import struct\nfrom kavka.protocol import frames\n",
        "kavka/protocol/frames.py": "",
        "kavka/log/__init__.py": "",
        "kavka/log/segment.py": "from kavka.protocol import codec\nfrom kavka.config import X\n",
        "kavka/api/__init__.py": "",
        "kavka/api/handler.py": "from kavka.log import segment\n\ndef f(cluster_id):\n    return cluster_id\n",
        "kavka/cluster/__init__.py": "",
        "kavka/cluster/node.py": "from kavka.log import segment\nfrom kavka.protocol.codec import encode\n",
    })
    report = checker.check(tree)
    assert (report.new, report.known, report.stale) == ([], [], [])
    assert checker.main(["--src", str(tree), "--no-known"]) == 0
