"""Webhook event catalogue and the SSRF guard for endpoint URLs."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Every event type a storefront may subscribe to; "order.*" or "*" select several.
WEBHOOK_EVENTS = {
    "order.placed": "An order was placed (confirmed to the customer)",
    "order.status_changed": "The order's summary status changed",
    "order.cancelled": "The whole order was cancelled",
    "order.line_cancelled": "A line (or part of it) was cancelled",
    "order.in_transit_to_store": "Ship to store: a warehouse sent the goods to the pickup store (transfer, ready_by)",
    "order.arrived_at_store": "Ship to store: the pickup store received the goods (missing: a short arrival)",
    "order.ship_to_store_replanned": "Ship to store: units that did not arrive come from another warehouse (new ready_by)",
    "fulfillment.picking": "A fulfillment is being picked",
    "fulfillment.packed": "A fulfillment was packed",
    "fulfillment.shipped": "A fulfillment left with a carrier",
    "fulfillment.ready_for_pickup": "A pickup is waiting at the counter",
    "fulfillment.collected": "A pickup was handed over",
    "fulfillment.cancelled": "A fulfillment was cancelled",
    "return.requested": "A return was asked for (number, method, location, lines, refund_amount)",
    "return.received": "A return was received (location, lines with their condition, refund)",
    "return.cancelled": "A return was withdrawn before anything was received",
    "return.exchanged": "Returned units were exchanged: the replacement's new order (exchange_order, lines with prices)",
    "return.payment_due": "An exchange costs more than what came back: charge the customer `amount` (return, currency)",
    "refund.requested": "Money is owed back (order, lines, amount): pay it and report back",
    "refund.completed": "The payment system reported a refund paid",
    "refund.failed": "The payment system reported a refund it could not pay",
    "refund.issued": "Kept for existing subscriptions; nothing sends it (see refund.completed)",
    "stock.back_in_stock": "A SKU became available at a location",
    "stock.out_of_stock": "A SKU became unavailable at a location",
}
WEBHOOK_GROUPS = sorted({name.split(".")[0] for name in WEBHOOK_EVENTS})


def event_pattern_valid(pattern: str) -> bool:
    if pattern == "*" or pattern in WEBHOOK_EVENTS:
        return True
    return pattern.endswith(".*") and pattern[:-2] in WEBHOOK_GROUPS


def event_matches(patterns: list[str], event_type: str) -> bool:
    group = event_type.split(".")[0]
    return any(p in ("*", event_type, f"{group}.*") for p in patterns)


class UnsafeUrl(ValueError):
    """The URL could reach something inside our network."""


BLOCKED_HOSTNAMES = {"localhost", "metadata", "metadata.google.internal", "instance-data"}


def _resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (tests swap this for a fixed table; DNS is the dependency)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def _ip_is_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _loopback_allowed(host: str) -> bool:
    return settings.NOTIFICATIONS["WEBHOOK_ALLOW_LOOPBACK"] and host in ("127.0.0.1", "::1")


def check_url(url: str) -> str:
    """Raise UnsafeUrl unless `url` is https to a host that resolves only to public addresses.

    http://127.0.0.1 passes only when settings.NOTIFICATIONS["WEBHOOK_ALLOW_LOOPBACK"] is set
    (tests). Checked at registration and again before every delivery (DNS can change).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("The URL is malformed.") from exc
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("Credentials in the URL are not allowed.")
    if _loopback_allowed(host):
        if parts.scheme not in ("http", "https"):
            raise UnsafeUrl("Only http(s) URLs are allowed.")
        return url
    if parts.scheme != "https":
        raise UnsafeUrl("Only https URLs are allowed.")
    if host in BLOCKED_HOSTNAMES or host.endswith((".localhost", ".internal", ".local")):
        raise UnsafeUrl(f"The host {host!r} is internal.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = _resolve(host, port or 443)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"The host {host!r} does not resolve.") from exc
        if not addresses:
            raise UnsafeUrl(f"The host {host!r} does not resolve.")
    for address in addresses:
        if _ip_is_internal(ipaddress.ip_address(address.split("%")[0])):
            raise UnsafeUrl(f"The host {host!r} resolves to an internal address ({address}).")
    return url
