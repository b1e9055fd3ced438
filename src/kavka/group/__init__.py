"""The consumer-group coordinator: classic groups and consumer-protocol (KIP-848) groups.

Layers, from the wire inwards:

* ``runner``      asyncio glue: parks JoinGroup/SyncGroup requests on futures and
                  runs ``tick()`` when the next deadline is due.
* ``coordinator`` one object per broker: validates, asks the logic below for an
                  :class:`~kavka.group.outcome.Outcome` (records + replies), appends
                  the records to ``__consumer_offsets`` and applies them with the
                  same ``replay()`` that loads the topic at startup.
* ``join``, ``membership``, ``rebalance``  the classic state machine
                  (table in ``state``) over the ``model`` (Group, Member).
* ``consumer_group``, ``assignors``, ``consumer_protocol``  KIP-848 groups: the
                  ConsumerGroupHeartbeat state machine, the server-side
                  ``uniform`` and ``range`` assignors, the subscriptions.
* ``describe``    read-only views of groups for ListGroups and DescribeGroups.
* ``offsets``     committed offsets: validation, fetch, expiry.
* ``log_format``, ``offsets_topic``  the records and the internal topic.

Imports point one way: api -> group -> log; nothing here knows about sockets.
"""
