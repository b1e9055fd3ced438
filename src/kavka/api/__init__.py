"""Kafka API handlers, one module per API.

Importing this package imports every handler module, and each registers itself
in :data:`kavka.api.registry.REGISTRY`; ApiVersions answers from that table.
"""

from kavka.api import (  # noqa: F401  (imported for their registration)
    api_versions,
    create_partitions,
    create_topics,
    delete_topics,
    describe_cluster,
    describe_configs,
    fetch,
    find_coordinator,
    init_producer_id,
    list_offsets,
    metadata,
    offset_for_leader_epoch,
    produce,
)
