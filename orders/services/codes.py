"""Codes a customer shows to get their goods: the pickup code at the counter (and, next, a locker's
code). Generated with `secrets`, read forgivingly, and tried a limited number of times.

A code is LENGTH characters from ALPHABET: Crockford-style base32 without the characters people
confuse (0/O, 1/I/L) and without U; 30^8 (about 6.6e11, 39 bits) codes, so the few wrong tries
allowed before a code locks (`OMS["PICKUP_CODE_MAX_ATTEMPTS"]`) never find one by guessing.
What staff type is read case-insensitively, with spaces and hyphens ignored and full-width
characters (a Japanese IME) folded to ASCII. Codes issued before (6 digits) keep working: they are
compared the same way.

`code_try` is the limit: the caller holds the row (SELECT ... FOR UPDATE), and a refused try is
counted on it with an F() update; the count is in the caller's transaction, which must commit it
before the refusal is raised (fulfillment_collect raises after its atomic block).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass

from django.db.models import F, Model

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
# Typed between groups of characters; NFKC has already turned full-width ones into these.
_SEPARATORS = str.maketrans("", "", " \t\r\n-_.\u2010\u2011\u2012\u2013\u2014\u2212\u30fc")


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def code_normalise(typed: str) -> str:
    """What staff typed, as it is stored: "abcd efgh", "ABCD-EFGH", full-width (an IME) -> "ABCDEFGH"."""
    return unicodedata.normalize("NFKC", str(typed or "")).translate(_SEPARATORS).upper()


def code_display(code: str) -> str:
    """For people to read: two groups of four ("ABCD-EFGH"); other (older) codes as they are."""
    return f"{code[:4]}-{code[4:]}" if len(code) == LENGTH else code


def code_matches(typed: str, stored: str) -> bool:
    """In constant time for codes of one length. An empty stored code matches nothing."""
    if not stored:
        return False
    return secrets.compare_digest(code_normalise(typed).encode(), code_normalise(stored).encode())


@dataclass(frozen=True)
class Refusal:
    """A refused try, already counted: the `attempt`-th since the code was issued."""

    attempt: int
    limit: int
    locked: bool  # refused without comparing: `limit` wrong tries came before

    @property
    def attempts_left(self) -> int:
        return max(self.limit - self.attempt, 0)


def code_try(obj: Model, *, typed: str, code_field: str, attempts_field: str, limit: int) -> Refusal | None:
    """None when `typed` is `obj`'s code and the code is not locked; otherwise the Refusal, counted.

    The caller holds `obj`'s row locked, so the count it read is current. Once `limit` tries were
    refused, every further try is refused (counted too) without looking at the code, the right
    one included, until the code is replaced and the count reset. The count is one
    `UPDATE ... SET n = n + 1` (F(): concurrent refusals each count) in the caller's transaction.
    """
    count = getattr(obj, attempts_field)
    locked = count >= limit
    if not locked and code_matches(typed, getattr(obj, code_field)):
        return None
    model = type(obj)
    model._default_manager.filter(pk=obj.pk).update(**{attempts_field: F(attempts_field) + 1})
    # Read back inside the transaction: our UPDATE holds the row until COMMIT.
    count = model._default_manager.filter(pk=obj.pk).values_list(attempts_field, flat=True).get()
    setattr(obj, attempts_field, count)
    return Refusal(attempt=count, limit=limit, locked=locked)
