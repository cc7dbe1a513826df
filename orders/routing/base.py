"""The strategy interface and the per-step context strategies read.

A routing pipeline is an ordered list of strategies (settings.OMS["ROUTING_PIPELINE"]). The engine
fills the order in steps; at each step every eligible location that can take something of what is
left becomes a candidate, and the strategies decide which one is chosen, in the style of a
tournament: the first strategy ranks all candidates and only those with the best (lowest) rank go
on to the next strategy, and so on; location code breaks a final tie. The winner takes every
remaining line it can fill completely (and, for a line no single location can fill, what it has),
then the next step starts with what is left.

Write a strategy by subclassing RoutingStrategy and implementing `rank` (lower is better; any
values comparable with each other) and `describe` (a short reason in words). Strategies only
rank: which locations may be used at all (active, ships, stock, capacity, excluded) is decided
by the engine before they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .data import Candidate
    from .types import RoutingRequest

# Look ahead for a two-location cover only for orders up to this many remaining lines (2**n states).
LOOKAHEAD_MAX_LINES = 12


class RoutingContext:
    """What strategies may read at one step of the engine."""

    def __init__(
        self,
        *,
        request: RoutingRequest,
        remaining: dict[int, int],
        pool: list[Candidate],
        step: int,
        sku_codes: dict[int, str],
    ) -> None:
        self.request = request
        self.remaining = remaining  # sku_id -> units still to route, in line order
        self.pool = pool  # this step's candidates
        self.step = step  # 1 for the first location chosen
        self.sku_codes = sku_codes
        self.n_lines = len(remaining)
        self.full_mask = (1 << self.n_lines) - 1
        self._coverable: bytearray | None = None

    @property
    def destination(self) -> tuple[float, float] | None:
        return self.request.destination

    def one_location_covers(self, lines_mask: int) -> bool:
        """Whether some candidate can fill, completely, every remaining line in `lines_mask`.

        A superset-closure over the candidates' masks, computed once per step (2**n entries).
        Returns False (no look-ahead) for orders with more than LOOKAHEAD_MAX_LINES lines left.
        """
        if lines_mask == 0:
            return True
        if self.n_lines > LOOKAHEAD_MAX_LINES:
            return False
        if self._coverable is None:
            size = 1 << self.n_lines
            cov = bytearray(size)
            for c in self.pool:
                cov[c.mask] = 1
            for bit in range(self.n_lines):
                b = 1 << bit
                for s in range(size):
                    if s & b and cov[s]:
                        cov[s ^ b] = 1
            self._coverable = cov
        return bool(self._coverable[lines_mask])

    def lines_phrase(self) -> str:
        return "the whole order" if self.step == 1 else "all remaining lines"


class RoutingStrategy:
    """One rule of the routing policy. Stateless; one instance serves every request."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__

    def rank(self, candidate: Candidate, ctx: RoutingContext) -> Any:
        """Lower is better. Only candidates with the best rank go on to the next strategy."""
        raise NotImplementedError

    def describe(self, candidate: Candidate, ctx: RoutingContext) -> str:
        """The candidate's standing under this rule, in words (goes into the decision's reasons)."""
        raise NotImplementedError

    def loss_reason(self, candidate: Candidate, winner: Candidate, ctx: RoutingContext) -> str:
        """Why `candidate` lost to `winner` on this rule."""
        return f"{self.name}: {self.describe(candidate, ctx)}; {winner.code} {self.describe(winner, ctx)}"
