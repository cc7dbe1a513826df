"""The routing engine's request and decision types (re-exported by orders.routing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

METHODS = ("ship", "pickup", "curbside")


@dataclass(frozen=True)
class RoutingLine:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class RoutingRequest:
    lines: tuple[RoutingLine, ...]  # merged: one per SKU
    method: str  # "ship" | "pickup" | "curbside"
    pickup_location_id: int | None = None  # pickup/curbside: the chosen store
    destination: tuple[float, float] | None = None  # ship: (lat, lng) if known
    exclude_location_ids: frozenset[int] = frozenset()  # e.g. the location that short-picked
    only_kind: str | None = None  # ship: only locations of this kind (ship to store: "warehouse")


@dataclass(frozen=True)
class Allocation:
    location_id: int
    sku_id: int
    quantity: int


class ConsideredRow(NamedTuple):
    """One location the engine looked at. Kept as tuples of plain values, which Python's garbage
    collector stops tracking at once: a decision holds one per location of the network, and
    hundreds of tracked dicts per order would trigger full collections (tens of ms each) often."""

    location: str  # code
    location_id: int
    chosen: bool
    reasons: tuple[str, ...]
    distance_km: float | None

    def as_dict(self) -> dict:
        return {
            "location": self.location,
            "location_id": self.location_id,
            "chosen": self.chosen,
            "reasons": list(self.reasons),
            "distance_km": self.distance_km,
        }


@dataclass
class RoutingDecision:
    allocations: list[Allocation]  # what to reserve where
    unfilled: list[RoutingLine]  # the shortfall per line that nothing can fill (empty = fully routed)
    considered_rows: tuple[ConsideredRow, ...]  # chosen first, then the others as ranked, then skipped
    pipeline: list[str]  # strategy names used, in order
    method: str = ""
    destination: tuple[float, float] | None = None
    sku_codes: dict[int, str] = field(default_factory=dict)
    location_codes: dict[int, str] = field(default_factory=dict)

    @property
    def considered(self) -> list[dict]:
        """Per location considered: {"location": code, "location_id", "chosen", "reasons": [str, ...],
        "distance_km": float | None} (built on each access from considered_rows)."""
        return [row.as_dict() for row in self.considered_rows]

    @property
    def complete(self) -> bool:
        return not self.unfilled

    @property
    def location_ids(self) -> list[int]:
        """The chosen locations, in the order they were chosen."""
        return list(dict.fromkeys(a.location_id for a in self.allocations))

    def as_json(self, *, max_considered: int = 50) -> dict:
        """A JSON-serialisable record for the order's events and the admin.

        `considered` lists the chosen locations first, then the others in the order the engine
        ranked them; beyond `max_considered` entries only their number is kept.
        """
        considered = self.considered_rows[:max_considered]
        return {
            "method": self.method,
            "complete": self.complete,
            "pipeline": list(self.pipeline),
            "destination": list(self.destination) if self.destination else None,
            "allocations": [
                {
                    "location": self.location_codes.get(a.location_id, str(a.location_id)),
                    "location_id": a.location_id,
                    "sku": self.sku_codes.get(a.sku_id, str(a.sku_id)),
                    "sku_id": a.sku_id,
                    "quantity": a.quantity,
                }
                for a in self.allocations
            ],
            "unfilled": [
                {
                    "sku": self.sku_codes.get(u.sku_id, str(u.sku_id)),
                    "sku_id": u.sku_id,
                    "quantity": u.quantity,
                }
                for u in self.unfilled
            ],
            "considered": [row.as_dict() for row in considered],
            "considered_omitted": len(self.considered_rows) - len(considered),
            "considered_count": len(self.considered_rows),
        }
