"""Every write about returns and refunds, one module per job:

    policy.py     the return rules: who may ask, the window, what is returnable, where it goes
    requests.py   return_request (asked online, by the help desk or at a store desk), return_cancel
    receiving.py  return_receive: the goods come back at a store or a warehouse; the refund
    notes.py      notes about a return (help desk, chat, call centre, store)
    refunds.py    refund_request / refund_complete / refund_fail: money owed back, written once

Each public service is one `transaction.atomic` (nested in another service: a savepoint).
docs/returns.md has the rules; docs/architecture.md walks a return step by step.
"""

from .notes import return_note_add
from .policy import ReceiveLineIn, ReturnLineIn
from .receiving import return_receive
from .refunds import (
    RefundRequest,
    currency_quantum,
    line_amounts,
    refund_complete,
    refund_fail,
    refund_request,
    refunds_request,
)
from .requests import return_cancel, return_request

__all__ = [
    "ReceiveLineIn",
    "RefundRequest",
    "ReturnLineIn",
    "currency_quantum",
    "line_amounts",
    "refund_complete",
    "refund_fail",
    "refund_request",
    "refunds_request",
    "return_cancel",
    "return_note_add",
    "return_receive",
    "return_request",
]
