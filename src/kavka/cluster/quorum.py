"""The controller quorum of a cluster, which is etcd's raft group, as DescribeQuorum shows it.

The mapping (KRaft term -> etcd):

* voters: etcd's members; a voter's id is the member id's low 31 bits (member ids are
  64-bit, Kafka's replica ids 32-bit), its endpoint the host and port of its first
  client URL;
* leader: etcd's raft leader; leader epoch: the raft term;
* a voter's log end offset: that member's raft index, asked of the member itself
  (-1 when it does not answer in time); high watermark: the leader's raft index.

Members are asked concurrently, each through a short-lived client bounded by the
shell's timeout.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aetcd

from kavka.cluster.errors import EtcdUnavailable
from kavka.cluster.etcd_client import Etcd
from kavka.metadata.model import QuorumState, QuorumVoter

VOTER_ID_MASK = 0x7FFFFFFF
UNKNOWN_OFFSET = -1


def voter_id(member_id: int) -> int:
    return member_id & VOTER_ID_MASK


async def quorum_state(etcd: Etcd) -> QuorumState:
    status = await etcd.call(etcd.client.status())
    members = await etcd.call(_members(etcd.client))
    addresses = [_address(m.client_urls) for m in members]
    indexes = await asyncio.gather(*(_raft_index(host, port, etcd.op_timeout) for host, port in addresses))
    leader = status.leader.id if status.leader is not None else None
    voters = tuple(QuorumVoter(voter_id(m.id), index, host, port)
                   for m, (host, port), index in zip(members, addresses, indexes))
    high_watermark = next((v.log_end_offset for m, v in zip(members, voters) if m.id == leader), status.raft_index)
    return QuorumState(-1 if leader is None else voter_id(leader), status.raft_term, high_watermark, voters)


async def _members(client: aetcd.Client) -> list:
    return sorted([m async for m in client.members()], key=lambda m: m.id)


def _address(client_urls) -> tuple[str, int]:
    if not client_urls:
        return "", 0
    url = urlsplit(client_urls[0])
    return url.hostname or "", url.port or 2379


async def _raft_index(host: str, port: int, timeout: float) -> int:
    if not host:
        return UNKNOWN_OFFSET
    member = Etcd(aetcd.Client(host=host, port=port, timeout=timeout), timeout)
    try:
        return (await member.call(member.client.status())).raft_index
    except EtcdUnavailable:
        return UNKNOWN_OFFSET
    finally:
        await member.close()
