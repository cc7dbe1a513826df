"""Order routing (sourcing): which locations fill which lines.

    decision = route(RoutingRequest(lines=(RoutingLine(sku_id, qty), ...), method="ship",
                                    destination=(lat, lng)))
    decision.allocations  # [Allocation(location_id, sku_id, quantity)] to reserve
    decision.unfilled     # the shortfall per line; empty when complete
    decision.as_json()    # the record for the order's events and the admin

route() only reads (at most three queries). The policy is the pipeline of strategies in
settings.OMS["ROUTING_PIPELINE"]; see orders/routing/base.py for the interface and
orders/routing/strategies.py for the strategies.
"""

from .base import RoutingContext, RoutingStrategy
from .data import nearby_sources
from .engine import pickup_record, route, routing_pipeline
from .types import Allocation, ConsideredRow, RoutingDecision, RoutingLine, RoutingRequest

__all__ = [
    "Allocation",
    "ConsideredRow",
    "RoutingContext",
    "RoutingDecision",
    "RoutingLine",
    "RoutingRequest",
    "RoutingStrategy",
    "nearby_sources",
    "pickup_record",
    "route",
    "routing_pipeline",
]
