"""The `Idempotency-Key` header for any APIView (draft-ietf-httpapi-idempotency-key-header).

    class OrderListCreateApi(APIView):
        @idempotent(required=True)
        def post(self, request): ...

- Missing where required -> 400 `idempotency_key_required`; longer than 255 characters or not
  printable ASCII -> 400 `idempotency_key_invalid`.
- The same key (per user) with the same request (method, path, canonical JSON body) replays the
  first response: the same status and the very same bytes.
- The same key with another request -> 422 `idempotency_key_reused`.
- The same key while the first request is still running -> 409 `idempotency_in_progress`.

Design (research notes A1): the key row, the work and the stored response are ONE transaction
(`idempotent_run` is one `transaction.atomic`; the services the wrapped method calls nest in it). The key row is the first statement: `INSERT .. ON CONFLICT DO NOTHING RETURNING id`,
guarded on PostgreSQL by `pg_try_advisory_xact_lock` on the (user, key) pair, so a concurrent
duplicate never waits: it either finds the committed row (replay or 422) or nobody's row while the
lock is taken (409). A crash or an error before commit leaves no row, and a retry runs the work
again; errors raised by the work (4xx domain errors) are therefore not stored. Responses the work
returns (any status) are stored with their exact bytes. Rows are kept at least
settings.OMS["IDEMPOTENCY_TTL"] and then purged by `idempotency_keys_purge` (a beat task).

Cost on the success path: two statements (the INSERT and the UPDATE storing the response).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from config.db import idempotency_claim, idempotency_store_response
from config.errors import Conflict, InvalidInput, PolicyViolation

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255
# The header's OpenAPI schema: what read_key accepts (printable ASCII; HTTP trims the ends).
KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": "^[!-~]([ -~]*[!-~])?$",
}


class IdempotencyKeyRequired(InvalidInput):
    code = "idempotency_key_required"


class IdempotencyKeyInvalid(InvalidInput):
    code = "idempotency_key_invalid"


class IdempotencyKeyReused(PolicyViolation):
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(*, method: str, path: str, data: Any) -> str:
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical_json(data)}".encode()).hexdigest()


def read_key(request, *, required: bool) -> str | None:
    key = request.META.get(HEADER)
    if key is None or key == "":
        if required:
            raise IdempotencyKeyRequired(
                "The Idempotency-Key header is required.", details={"header": "Idempotency-Key"}
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid(
            f"Idempotency-Key must be at most {MAX_KEY_LENGTH} printable ASCII characters.",
            details={"header": "Idempotency-Key"},
        )
    return key


def _render(response: Response) -> HttpResponse:
    """The exact bytes of a DRF Response, as a plain HttpResponse (what is stored is what is sent)."""
    body = b"" if response.data is None else JSONRenderer().render(response.data)
    out = HttpResponse(body, status=response.status_code, content_type="application/json")
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            out[name] = value
    return out


def _replay(*, owner_id: int, key: str, fp: str) -> HttpResponse:
    from orders.models import IdempotencyKey

    row = (
        IdempotencyKey.objects.filter(owner_id=owner_id, key=key)
        .values("fingerprint", "response_status", "response_body")
        .first()
    )
    if row is None or row["response_status"] is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            details={"header": "Idempotency-Key"},
        )
    if row["fingerprint"] != fp:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request.", details={"header": "Idempotency-Key"}
        )
    out = HttpResponse(row["response_body"], status=row["response_status"], content_type="application/json")
    out["Idempotent-Replayed"] = "true"
    return out


class ThenBeforeCommit(NamedTuple):
    """What a view returns when its last write must come after its response is stored.

    `last_step` runs after the response and the key row are written and before COMMIT, in the
    same transaction; if it raises, everything rolls back (the stored response too) and its error
    is the answer. Order placement uses it for the reservation at a pickup store: the stock row
    every buyer of a flash sale queues on is then locked only until COMMIT, not while the response
    is rendered and stored (docs/benchmarks.md, flash sale: "The reservation after the response").
    """

    response: Response
    last_step: Callable[[], None]


def _run_view(work: Callable[[], Response | ThenBeforeCommit]) -> tuple[Response, Callable[[], None] | None]:
    result = work()
    if isinstance(result, ThenBeforeCommit):
        return result.response, result.last_step
    return result, None


@transaction.atomic
def idempotent_run(
    *, owner_id: int, key: str, fp: str, work: Callable[[], Response | ThenBeforeCommit]
) -> HttpResponse:
    """Run `work` once per (owner, key) in one transaction with the key row; replay afterwards.

    The steps: claim the key row; run the view; store its rendered response; run the view's
    `ThenBeforeCommit.last_step`, if it gave one; COMMIT.
    """
    key_id = idempotency_claim(owner_id=owner_id, key=key, fingerprint=fp)
    if key_id is None:
        return _replay(owner_id=owner_id, key=key, fp=fp)
    response, last_step = _run_view(work)
    rendered = _render(response)
    idempotency_store_response(key_id=key_id, status=rendered.status_code, body=rendered.content.decode())
    if last_step is not None:
        last_step()
    return rendered


def _run_without_key(work: Callable[[], Response]) -> Response:
    """A view called without an Idempotency-Key (only where the key is optional)."""
    result = work()
    if isinstance(result, ThenBeforeCommit):
        # Its transaction is over: a last step must run inside idempotent_run's.
        raise ImproperlyConfigured("A view that returns ThenBeforeCommit needs @idempotent(required=True).")
    return result


def idempotent(*, required: bool = False) -> Callable:
    """Decorate an APIView handler (post/put/patch/delete) with Idempotency-Key semantics."""

    def decorator(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(view, request, *args, **kwargs):
            key = read_key(request, required=required)
            if key is None or not request.user.is_authenticated:  # keys are scoped per user
                return _run_without_key(functools.partial(handler, view, request, *args, **kwargs))
            fp = fingerprint(method=request.method, path=request.path, data=request.data)
            return idempotent_run(
                owner_id=request.user.pk,
                key=key,
                fp=fp,
                work=functools.partial(handler, view, request, *args, **kwargs),
            )

        return wrapper

    return decorator


@transaction.atomic
def idempotency_keys_purge(*, older_than=None) -> int:
    """Delete keys older than settings.OMS["IDEMPOTENCY_TTL"] (the beat task)."""
    from orders.models import IdempotencyKey

    cutoff = timezone.now() - (older_than or settings.OMS["IDEMPOTENCY_TTL"])
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
