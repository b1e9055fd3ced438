"""The cluster metadata view loads and works with the etcd client unavailable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"

# aetcd and grpc made unimportable: any import of them, however indirect, raises.
PROGRAM = """
import sys
sys.modules["aetcd"] = None
sys.modules["grpc"] = None
from kavka.cluster.keys import KeyLayout
from kavka.cluster.model import BrokerInfo, TopicAssignment
from kavka.cluster.view import ClusterView, Snapshot, decode_change

layout = KeyLayout("c1")
broker = decode_change(layout, layout.broker(1), BrokerInfo(1, "127.0.0.1", 9092).encode(), 5, 5)
topic = decode_change(layout, layout.topic("t"), TopicAssignment("t", "id-t", {0: (1,)}).encode(), 6, 6)
view = ClusterView()
view.apply(Snapshot(6, (broker, topic)))
view.apply(decode_change(layout, layout.broker(1), None, 7))
print(sorted(view.brokers), sorted(view.topics), view.revision,
      sorted(m for m in sys.modules if m.split(".")[0] in ("aetcd", "grpc") and sys.modules[m]))
"""


def test_cluster_view_needs_no_etcd_client():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "['t']", "7", "[]"], done.stdout
