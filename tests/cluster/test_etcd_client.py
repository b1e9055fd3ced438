"""The bounded etcd shell: endpoint fallback, and a paused etcd becoming EtcdUnavailable."""

from __future__ import annotations

import time

import pytest
from cluster_helpers import run

from kavka.cluster.errors import EtcdUnavailable
from kavka.cluster.etcd_client import Etcd
from kavka.cluster.etcd_server import free_port


def test_connect_skips_dead_endpoints(etcd):
    async def main():
        dead = f"127.0.0.1:{free_port()}"
        client = await Etcd.connect(f"etcd://{dead},{etcd.endpoint}", op_timeout=2)
        await client.client.put(b"/kavka-client-test", b"1")
        assert (await client.get(b"/kavka-client-test")).value == b"1"
        await client.close()
        with pytest.raises(EtcdUnavailable):
            await Etcd.connect(dead, op_timeout=1)
    run(main())


def test_calls_to_a_paused_etcd_fail_within_the_timeout(private_etcd):
    async def main():
        client = await Etcd.connect(private_etcd.endpoint, op_timeout=0.5)
        private_etcd.pause()
        t0 = time.monotonic()
        try:
            with pytest.raises(EtcdUnavailable):
                await client.get(b"/x")
        finally:
            private_etcd.resume()
        assert time.monotonic() - t0 < 2
        assert await client.get(b"/x") is None  # and works again afterwards
        await client.close()
    run(main())
