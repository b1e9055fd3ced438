"""kavka dump-log on a .txnindex: the aborted transactions in kafka-dump-log's wording."""

from __future__ import annotations

import argparse

from kavka.cli import dump_log
from kavka.log.txn_index import AbortedTxn, TxnIndex


def test_a_txnindex_prints_its_aborted_transactions(tmp_path, capsys):
    path = tmp_path / "00000000000000000000.txnindex"
    index = TxnIndex.create(path)
    index.append(AbortedTxn(7, 0, 4, 2))
    index.append(AbortedTxn(9, 5, 12, 13))
    index.close()
    args = argparse.Namespace(files=[str(path)], print_data_log=False, max_batches=0)
    assert dump_log.run(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Dumping {path}",
        "version: 0 producerId: 7 firstOffset: 0 lastOffset: 4 lastStableOffset: 2",
        "version: 0 producerId: 9 firstOffset: 5 lastOffset: 12 lastStableOffset: 13",
    ]
