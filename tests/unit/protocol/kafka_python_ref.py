"""kafka-python's protocol and record classes, our independent reference encoder.

Imported here once, quietly: its schema loader calls importlib.resources APIs
that are deprecated on Python 3.11 and would print a warning per message type.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse
    from kafka.protocol.producer import ProduceRequest
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

__all__ = [
    "ApiVersionsRequest", "ApiVersionsResponse", "MetadataRequest", "MetadataResponse",
    "ProduceRequest", "DefaultRecordBatch", "DefaultRecordBatchBuilder",
]
