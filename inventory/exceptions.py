from config.errors import Conflict, NotFound


class InsufficientStock(Conflict):
    """Not enough available stock; details carry the shortfall per line."""

    code = "insufficient_stock"


class StockConflict(Conflict):
    """A change would break a stock invariant (e.g. counting below what is reserved)."""

    code = "stock_conflict"


class UnknownSku(NotFound):
    code = "unknown_sku"
