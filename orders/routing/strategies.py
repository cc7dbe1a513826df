"""Routing strategies. The pipeline in settings.OMS["ROUTING_PIPELINE"] names them in order.

Default policy (Shopify's and Salesforce's order): SingleLocationFirst, FewestShipments,
NearestToDestination, LocationPriority. Alternatives a retailer can switch to without touching
the engine: StoresBeforeWarehouses (clear store stock first), WarehousesBeforeStores (keep store
shelves for walk-in shoppers), MostStockFirst (take from the deepest stock, fewer short picks).
See base.py for the interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stores.models import LocationKind

from .base import RoutingContext, RoutingStrategy

if TYPE_CHECKING:
    from .data import Candidate


class SingleLocationFirst(RoutingStrategy):
    """Prefer a location that can fill everything that is left, on its own (one shipment)."""

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> int:
        return 0 if candidate.covers_all else 1

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        if candidate.covers_all:
            return f"can fill {ctx.lines_phrase()} on its own"
        return f"cannot fill {ctx.lines_phrase()} on its own ({candidate.full_lines} of {ctx.n_lines} lines)"


class FewestShipments(RoutingStrategy):
    """Prefer the location that leads to the fewest shipments.

    Rank: (shipments needed with it: 1 if it fills everything left, 2 if one other location can
    fill the rest, otherwise 3 or more), then more lines filled completely, then more units.
    The two-location look-ahead is exact; beyond two shipments the engine is greedy (the
    classic set-cover approximation), which keeps routing linear in the number of locations.
    """

    def _shipments(self, candidate: Candidate, ctx: RoutingContext) -> int:
        if candidate.covers_all:
            return 1
        return 2 if ctx.one_location_covers(ctx.full_mask & ~candidate.mask) else 3

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> tuple[int, int, int]:
        return (self._shipments(candidate, ctx), -candidate.full_lines, -candidate.units)

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        n = self._shipments(candidate, ctx)
        total = "1 shipment" if n == 1 else ("2 shipments" if n == 2 else "3 or more shipments")
        return (
            f"{total} with it (fills {candidate.full_lines} of {ctx.n_lines} lines, {candidate.units} units)"
        )


class NearestToDestination(RoutingStrategy):
    """Prefer the location nearest to the destination (great-circle distance); abstains without one."""

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> float:
        return candidate.distance_km if candidate.distance_km is not None else 0.0

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        if candidate.distance_km is None:
            return "no destination to measure from"
        return f"{candidate.distance_km:g} km from the destination"

    def loss_reason(self, candidate: Candidate, winner: Candidate, ctx: RoutingContext) -> str:
        return f"farther: {candidate.distance_km:g} km ({winner.code} is {winner.distance_km:g} km)"


class LocationPriority(RoutingStrategy):
    """Prefer the location's fulfillment_priority (lower first)."""

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> int:
        return candidate.priority

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        return f"priority {candidate.priority}"

    def loss_reason(self, candidate: Candidate, winner: Candidate, ctx: RoutingContext) -> str:
        return f"lower priority: {candidate.priority} ({winner.code} has {winner.priority})"


class StoresBeforeWarehouses(RoutingStrategy):
    """Prefer stores to warehouses: clear store stock first (markdown-free sell-through)."""

    preferred = LocationKind.STORE

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> int:
        return 0 if candidate.kind == self.preferred else 1

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        return f"a {candidate.kind}"

    def loss_reason(self, candidate: Candidate, winner: Candidate, ctx: RoutingContext) -> str:
        return f"a {candidate.kind}, {self.preferred}s go first ({winner.code} is a {winner.kind})"


class WarehousesBeforeStores(StoresBeforeWarehouses):
    """Prefer warehouses to stores: keep store shelves for walk-in shoppers."""

    preferred = LocationKind.WAREHOUSE


class MostStockFirst(RoutingStrategy):
    """Prefer the location with the most available units of what it would ship (deepest stock)."""

    def _depth(self, candidate: Candidate) -> int:
        return sum(candidate.stock.get(sku_id, 0) for sku_id in candidate.take)

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> int:
        return -self._depth(candidate)

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        return f"{self._depth(candidate)} units available of what it would ship"
