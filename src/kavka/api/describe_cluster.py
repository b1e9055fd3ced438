"""DescribeCluster (key 60): cluster id, controller and brokers (KIP-700).

The answer is the metadata view's (kavka.metadata): every live broker with its
rack, and the controller (-1 while there is none) — a lone broker is itself,
unfenced and controller.  A broker that is no longer live is left out rather
than listed as fenced.  The endpoint type (v1+,
KIP-919) is checked as Kafka's brokers do: 1 (brokers) is answered; 2
(controllers) is MISMATCHED_ENDPOINT_TYPE, since this listener is a broker's;
any other value is UNSUPPORTED_ENDPOINT_TYPE.  Authorized operations are only
computed when asked for (kavka.api.authorization); without an authorizer that is
everything a cluster resource supports.
"""

from __future__ import annotations

from kavka.api.authorization import NOT_REQUESTED, Res, authorized_operations
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 60
VERSIONS = (0, 2)
BROKERS, CONTROLLERS = 1, 2


@api(KEY, "DescribeCluster", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    endpoint_type = getattr(request.body, "endpoint_type", BROKERS)
    if endpoint_type != BROKERS:
        return _endpoint_error(r, endpoint_type)
    broker = request.broker
    operations = authorized_operations(request, Res.CLUSTER, asked=request.body.include_cluster_authorized_operations)
    brokers = tuple(
        r.DescribeClusterBroker(broker_id=node_id, host=host, port=port, rack=rack, is_fenced=False)
        for node_id, host, port, rack in _brokers(broker, request.listener))
    return r.DescribeClusterResponse(
        error_code=ErrorCode.none, error_message=None, endpoint_type=BROKERS, cluster_id=broker.cluster_id,
        controller_id=_controller_id(broker), brokers=brokers, cluster_authorized_operations=operations)


def _brokers(broker, listener: str) -> list[tuple[int, str, int, str | None]]:
    return [(b.broker_id, *b.on(listener), b.rack) for b in broker.metadata.brokers()]


def _controller_id(broker) -> int:
    return broker.metadata.controller_id()


def _endpoint_error(r, endpoint_type: int):
    if endpoint_type == CONTROLLERS:
        code = ErrorCode.mismatched_endpoint_type
        message = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
    else:
        code = ErrorCode.unsupported_endpoint_type
        message = f"Unsupported endpoint type {endpoint_type}"
    return r.DescribeClusterResponse(
        error_code=code, error_message=message, endpoint_type=BROKERS, cluster_id="", controller_id=-1,
        brokers=(), cluster_authorized_operations=NOT_REQUESTED)
