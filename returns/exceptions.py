"""Refund errors. Each is a config.errors DomainError rendered by the one exception handler."""

from config.errors import Conflict, InvalidInput, NotFound


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
