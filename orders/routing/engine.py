"""The routing engine: which locations fill which lines. Read only: it never writes.

Pickup and curbside: only the chosen store, and only if it is active, offers pickup and is not
excluded; what it cannot fill is returned in `unfilled` (never allocated elsewhere). Its daily
capacity is not applied: the customer chose the store. The decision's pipeline is
["ChosenPickupStore"].

Ship: eligible locations are active, ship orders, are not excluded, have available stock of
the order's SKUs (on hand - reserved - active holds - safety stock) and have free daily capacity
(daily_capacity 0 = unlimited; used = non-cancelled fulfillments created at the location since
midnight of the location's own timezone). The pipeline of strategies (base.py) then chooses one
location at a time; each takes every remaining line it can fill completely, and a line is split
across locations only when no single eligible location can fill it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.utils.module_loading import import_string

from .base import RoutingContext, RoutingStrategy
from .data import Candidate, fulfillments_today, load_candidates
from .types import METHODS, Allocation, ConsideredRow, RoutingDecision, RoutingLine, RoutingRequest

DEFAULT_STRATEGY_MODULE = "orders.routing.strategies"
PICKUP_PIPELINE = ["ChosenPickupStore"]
MAX_SHORT_REASONS = 3
DETAILED_RUNNERS_UP = 50  # losers whose shortages are spelled out


@functools.lru_cache(maxsize=16)
def _load_pipeline(paths: tuple[str, ...]) -> tuple[RoutingStrategy, ...]:
    strategies = []
    for path in paths:
        cls = import_string(path if "." in path else f"{DEFAULT_STRATEGY_MODULE}.{path}")
        if not (isinstance(cls, type) and issubclass(cls, RoutingStrategy)):
            raise TypeError(f"{path} is not a RoutingStrategy")
        strategies.append(cls())
    return tuple(strategies)


def routing_pipeline() -> tuple[RoutingStrategy, ...]:
    """The strategies in settings.OMS["ROUTING_PIPELINE"] (dotted paths, or bare names in strategies.py)."""
    return _load_pipeline(tuple(settings.OMS["ROUTING_PIPELINE"]))


def merge_lines(lines: Iterable[RoutingLine]) -> list[RoutingLine]:
    """One line per SKU, in first-seen order. Quantities must be positive integers."""
    merged: dict[int, int] = {}
    for line in lines:
        if not isinstance(line.quantity, int) or isinstance(line.quantity, bool) or line.quantity <= 0:
            raise ValueError(f"routing line quantity must be a positive integer, got {line.quantity!r}")
        merged[line.sku_id] = merged.get(line.sku_id, 0) + line.quantity
    return [RoutingLine(sku_id, q) for sku_id, q in merged.items()]


def route(request: RoutingRequest) -> RoutingDecision:
    """Decide which locations fill the request's lines. At most three queries; writes nothing."""
    if request.method not in METHODS:
        raise ValueError(f"unknown fulfillment method {request.method!r}")
    lines = merge_lines(request.lines)
    if request.method == "ship":
        return _route_ship(request, lines)
    return _route_pickup(request, lines)


def _sku(codes: dict[int, str], sku_id: int) -> str:
    return codes.get(sku_id) or f"sku #{sku_id}"


def _shortages(c: Candidate, lines: Iterable[RoutingLine], codes: dict[int, str]) -> str | None:
    """What the location lacks of the order, e.g. "short: no stock of SKU-B, only 2 of 5 SKU-A"."""
    out = []
    for line in lines:
        have = c.stock.get(line.sku_id, 0)
        if have < line.quantity:
            if len(out) == MAX_SHORT_REASONS:
                out.append("...")
                break
            sku = _sku(codes, line.sku_id)
            out.append(f"only {have} of {line.quantity} {sku}" if have else f"no stock of {sku}")
    return "short: " + ", ".join(out) if out else None


def _entry(c: Candidate, *, chosen: bool, reasons: Iterable[str]) -> ConsideredRow:
    return ConsideredRow(c.code, c.location_id, chosen, tuple(reasons), c.distance_km)


def _route_pickup(request: RoutingRequest, lines: list[RoutingLine]) -> RoutingDecision:
    loc_id = request.pickup_location_id
    if loc_id is None:
        raise ValueError(f"{request.method} routing needs pickup_location_id")
    cands, codes = load_candidates(sku_ids=[ln.sku_id for ln in lines], location_id=loc_id)
    c = cands.get(loc_id)
    decision = RoutingDecision(
        allocations=[],
        unfilled=[],
        considered_rows=(),
        pipeline=list(PICKUP_PIPELINE),
        method=request.method,
        sku_codes=codes,
    )
    if c is None:
        decision.unfilled = list(lines)
        return decision
    decision.location_codes[c.location_id] = c.code
    reasons = [f"the customer's chosen store for {request.method}"]
    if loc_id in request.exclude_location_ids:
        reasons.append("excluded from this routing")
    if not c.is_active:
        reasons.append("inactive")
    if not c.offers_pickup:
        reasons.append("does not offer pickup")
    usable = len(reasons) == 1
    for line in lines:
        take = min(c.stock.get(line.sku_id, 0), line.quantity) if usable else 0
        if take:
            decision.allocations.append(Allocation(loc_id, line.sku_id, take))
        if take < line.quantity:
            decision.unfilled.append(RoutingLine(line.sku_id, line.quantity - take))
    if usable:
        reasons.append(_shortages(c, lines, codes) or "can fill the whole order")
    if decision.unfilled:
        reasons.append("never allocated elsewhere: pickup is at the chosen store only")
    decision.considered_rows = (_entry(c, chosen=bool(decision.allocations), reasons=reasons),)
    return decision


def pickup_record(*, method: str, store, lines: Sequence[tuple[int, str, int]]) -> dict:
    """The record `route()` writes when the chosen pickup store fills every line, built without
    reading: order placement checked the store's stock in its lookup, and its guarded reservation
    is the real check. `lines`: (sku_id, sku code, quantity), one per SKU."""
    return {
        "method": method,
        "complete": True,
        "pipeline": list(PICKUP_PIPELINE),
        "destination": None,
        "allocations": [
            {
                "location": store.code,
                "location_id": store.pk,
                "sku": code,
                "sku_id": sku_id,
                "quantity": quantity,
            }
            for sku_id, code, quantity in lines
        ],
        "unfilled": [],
        "considered": [
            {
                "location": store.code,
                "location_id": store.pk,
                "chosen": True,
                "reasons": [f"the customer's chosen store for {method}", "can fill the whole order"],
                "distance_km": None,
            }
        ],
        "considered_omitted": 0,
        "considered_count": 1,
    }


def _eligibility(request: RoutingRequest, cands: dict[int, Candidate]) -> list[Candidate]:
    excluded = request.exclude_location_ids
    for c in cands.values():
        if c.location_id in excluded:
            c.skip += ("excluded from this routing",)
        if not c.is_active:
            c.skip += ("inactive",)
        if not c.ships_orders:
            c.skip += ("does not ship orders",)
        if request.only_kind and c.kind != request.only_kind:
            c.skip += (f"not a {request.only_kind}",)
        if not c.stock:
            c.skip += ("nothing available of this order's SKUs (held, reserved or safety stock)",)
    limited = [c for c in cands.values() if not c.skip and c.capacity > 0]
    if limited:
        used = fulfillments_today(candidates=limited)
        for c in limited:
            c.used_today = used.get(c.location_id, 0)
            if c.used_today >= c.capacity:
                c.skip += (f"daily capacity full ({c.used_today} of {c.capacity} fulfillments today)",)
    eligible = [c for c in cands.values() if not c.skip]
    eligible.sort(key=lambda c: c.code)
    return eligible


def _prepare_step(eligible: list[Candidate], remaining: dict[int, int]) -> list[Candidate]:
    """Set what each candidate would take of `remaining`; return those that would take something.

    A candidate takes a line completely when it has enough; it takes part of a line only when
    no eligible location has enough for that line (the only case in which a line is split).
    """
    index = {sku_id: 1 << i for i, sku_id in enumerate(remaining)}
    split = set(remaining)  # lines no single candidate can fill, found by elimination
    for c in eligible:
        for sku_id, a in c.stock.items():
            if sku_id in split and a >= remaining[sku_id]:
                split.discard(sku_id)
        if not split:
            break
    n = len(remaining)
    pool = []
    for c in eligible:
        take: dict[int, int] = {}
        mask = full = units = 0
        for sku_id, a in c.stock.items():
            q = remaining.get(sku_id)
            if q is None or a <= 0:
                continue
            if a >= q:
                take[sku_id] = q
                mask |= index[sku_id]
                full += 1
                units += q
            elif sku_id in split:
                take[sku_id] = a
                units += a
        c.take, c.mask, c.full_lines, c.units, c.covers_all = take, mask, full, units, full == n
        if take:
            pool.append(c)
    return pool


def _route_ship(request: RoutingRequest, lines: list[RoutingLine]) -> RoutingDecision:
    cands, codes = load_candidates(sku_ids=[ln.sku_id for ln in lines], near=request.destination)
    eligible = _eligibility(request, cands)
    return decide(request, lines, cands, eligible, codes, routing_pipeline())


def decide(
    request: RoutingRequest,
    lines: list[RoutingLine],
    cands: dict[int, Candidate],
    eligible: list[Candidate],
    codes: dict[int, str],
    pipeline: tuple[RoutingStrategy, ...],
) -> RoutingDecision:
    """The ship decision on loaded candidates (no queries): the pipeline chooses one location per
    step, which takes what it can of the remaining lines, until nothing remains or nobody can help."""
    remaining = {ln.sku_id: ln.quantity for ln in lines}
    line_pos = {ln.sku_id: i for i, ln in enumerate(lines)}
    allocations: list[Allocation] = []
    chosen: list[tuple[Candidate, list[str]]] = []
    # location_id -> (how far it got in the last tournament it lost, its loss reason)
    lost: dict[int, tuple[int, str]] = {}
    step = 0
    while remaining and eligible:
        pool = _prepare_step(eligible, remaining)
        if step == 0:
            for c in eligible:
                c.covers_order = c.covers_all
        if not pool:
            break
        step += 1
        ctx = RoutingContext(request=request, remaining=remaining, pool=pool, step=step, sku_codes=codes)
        winner = _tournament(pool, pipeline, ctx, lost)
        reasons = [f"chosen at step {step}"]
        reasons.extend(s.describe(winner, ctx) for s in pipeline)
        take = sorted(winner.take.items(), key=lambda item: line_pos[item[0]])
        reasons.append("ships " + ", ".join(f"{q} x {_sku(codes, sku_id)}" for sku_id, q in take))
        for sku_id, q in take:
            allocations.append(Allocation(winner.location_id, sku_id, q))
            left = remaining[sku_id] - q
            if left:
                remaining[sku_id] = left
            else:
                del remaining[sku_id]
        lost.pop(winner.location_id, None)
        chosen.append((winner, reasons))
        eligible.remove(winner)

    return RoutingDecision(
        allocations=allocations,
        unfilled=[RoutingLine(sku_id, q) for sku_id, q in remaining.items()],
        considered_rows=_considered(chosen, eligible, lost, cands, lines, codes),
        pipeline=[s.name for s in pipeline],
        method=request.method,
        destination=request.destination,
        sku_codes=codes,
        location_codes={c.location_id: c.code for c, _ in chosen},
    )


def _tournament(
    pool: list[Candidate], pipeline: tuple[RoutingStrategy, ...], ctx: RoutingContext, lost: dict
) -> Candidate:
    """One step: each strategy in turn keeps the best-ranked contenders; the winner is the first
    left (the pool is in code order, so a full tie goes to the first code). Records each loser's
    reason in `lost`."""
    contenders = pool
    # Losers and the index of the strategy that eliminated them (parallel lists, no tuples:
    # routing keeps its allocations few, see ConsideredRow).
    out: list[Candidate] = []
    out_at: list[int] = []
    for i, strategy in enumerate(pipeline):
        if len(contenders) == 1:
            break
        ranks = [strategy.rank(c, ctx) for c in contenders]
        top = min(ranks)
        best = []
        for r, c in zip(ranks, contenders, strict=True):
            if r == top:
                best.append(c)
            else:
                out.append(c)
                out_at.append(i)
        contenders = best
    winner = contenders[0]
    out.extend(contenders[1:])
    out_at.extend([len(pipeline)] * (len(contenders) - 1))
    for c, i in zip(out, out_at, strict=True):
        reason = (
            pipeline[i].loss_reason(c, winner, ctx)
            if i < len(pipeline)
            else f"tied with {winner.code} on every rule; location code decides"
        )
        lost[c.location_id] = (i, f"step {ctx.step}: {reason}")
    return winner


def _considered(chosen, eligible, lost, cands, lines, codes) -> tuple[ConsideredRow, ...]:
    """Every location's row in the record: the chosen in order, then the runners-up (furthest in
    the tournaments first), then those that were never eligible."""
    considered = [_entry(c, chosen=True, reasons=r) for c, r in chosen]
    losers = []
    for c in eligible:
        if c.location_id in lost:
            reached, reason = lost[c.location_id]
            losers.append(((0, -reached, c.distance_km or 0.0, c.code), c, reason))
        else:
            reason = "cannot fill any remaining line completely"
            losers.append(((1, 0, c.distance_km or 0.0, c.code), c, reason))
    losers.sort(key=lambda t: t[0])
    for i, (_, c, reason) in enumerate(losers):
        # What each of the first runners-up lacks (the ones as_json shows); the rest keep their loss reason.
        short = None if c.covers_order or i >= DETAILED_RUNNERS_UP else _shortages(c, lines, codes)
        considered.append(_entry(c, chosen=False, reasons=(reason, short) if short else (reason,)))
    skipped = sorted((c for c in cands.values() if c.skip), key=lambda c: (c.distance_km or 0.0, c.code))
    considered.extend(_entry(c, chosen=False, reasons=c.skip) for c in skipped)
    return tuple(considered)
