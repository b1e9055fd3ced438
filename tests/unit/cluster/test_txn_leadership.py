"""The transaction coordinator follows the ``__transaction_state`` leaders (cluster/reconcile.py):
a partition gained is loaded, one lost unloaded, and one led again at a new leader epoch is
unloaded and loaded again (another coordinator may have written to it meanwhile)."""

from __future__ import annotations

from types import SimpleNamespace

from kavka.cluster.reconcile import Reconciler


class Transactions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def load_partition(self, index: int) -> None:
        self.calls.append(("load", index))

    def unload_partition(self, index: int) -> None:
        self.calls.append(("unload", index))


def test_loads_unloads_and_reloads_on_a_new_leader_epoch():
    transactions = Transactions()
    reconciler = Reconciler(SimpleNamespace(broker=SimpleNamespace(transactions=transactions)))
    steps = [({0: 3, 1: 3}, [("load", 0), ("load", 1)]),
             ({0: 3, 1: 4}, [("unload", 1), ("load", 1)]),
             ({1: 4}, [("unload", 0)]),
             ({1: 4}, []),
             ({}, [("unload", 1)])]
    for led, expected in steps:
        transactions.calls.clear()
        reconciler.set_txn_leadership(led)
        assert transactions.calls == expected, led
        assert reconciler.led_txn == led
