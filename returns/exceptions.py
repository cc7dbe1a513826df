"""Refund errors. Each is a config.errors DomainError rendered by the one exception handler."""

from config.errors import Conflict, InvalidInput, NotFound, PolicyViolation


class UnknownRefund(NotFound):
    code = "unknown_refund"


class AlreadyRefunded(Conflict):
    """More units of an order line than were bought would be refunded: they already were."""

    code = "already_refunded"


class RefundAlreadyCompleted(Conflict):
    code = "refund_already_completed"


class RefundAlreadyFailed(Conflict):
    code = "refund_already_failed"


class RefundLineInvalid(InvalidInput):
    code = "invalid_refund_line"


# --- Returns -------------------------------------------------------------------------------------


class UnknownReturn(NotFound):
    code = "unknown_return"


class ReturnRefused(PolicyViolation):
    """A return policy refuses a line (422): `code` names the rule, `details` the line (its index,
    SKU and the figures), and `details.violations` every line the rules refused."""

    code = "return_refused"


class LocationNotTakingReturns(PolicyViolation):
    code = "location_not_accepting_returns"


class NoReturnsWarehouse(PolicyViolation):
    code = "no_returns_warehouse"


class ExchangeUnavailable(Conflict):
    """No replacement for an exchange: the receiving store has none and no location can ship it (or
    there is no address to ship to), or another order took the last unit first. `details` name the
    line (`field`: lines[i].exchange_for) and `violations` every such line; nothing was received."""

    code = "exchange_unavailable"
