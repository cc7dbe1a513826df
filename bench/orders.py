"""Issue figures 1 and 4: a flash sale through the HTTP API, and 16 workers claiming a fulfillment queue.

    python -m bench.orders [flash|claims|all] [--quick] [--no-doc] [--config production|sync_w2|gthread_w2t4|...]

flash   gunicorn (`config.wsgi`, 2 sync workers by default) on PostgreSQL serves the whole app plus the
        framework-floor views of bench/urls.py (or bench/orders_urls.py's own, if that is missing). One
        SKU with exactly 1,000 units at one store (received through inventory.services, so the ledger
        agrees); 64 concurrent HTTP/1.1 clients (2 processes x 32 asyncio connections, keep-alive where
        the server allows it) make exactly 1,500 attempts in total to buy one
        unit each: POST /api/v1/orders/ (pickup of 1 unit, a new customer and a unique Idempotency-Key
        each, storefront token). Verified: 1,000 x 201, 500 x 409 insufficient_stock, no 5xx, no
        oversell, ledger_mismatches() == []. Beside it, in the same run against the same gunicorn: the
        floor (a DRF view doing one indexed read), before and after the sale, with the same client (and
        with wrk when it is installed). The SQL statements of one placement are counted through the
        Django test client.
claims  16 worker processes claim 10,000 queued pending fulfillments at one location through
        orders.services.fulfillment_claim until the queue is empty, then the same 16 processes claim an
        identical fresh queue (another location) with raw `UPDATE ... WHERE id = (SELECT ... FOR UPDATE
        SKIP LOCKED LIMIT 1) RETURNING id`. Verified from the database: every task claimed exactly once.

Database: oms_bench_orders (BENCH_ORDERS_DB; created and migrated here, emptied at the start of each benchmark).
Celery publishes to Redis db 7 (what production does: a broker, not in-process delivery), and
Django's cache (the API token cache) is there too; the db is emptied afterwards. BENCH_ORDERS_DB and
BENCH_ORDERS_REDIS name another database and Redis db (two people benchmarking on one machine).
--quick is a smoke mode with tiny numbers that leaves docs/benchmarks.md alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

from .common import ROOT, ensure_database, loadavg, machine, machine_md, percentile, table, update_doc

DATABASE = os.environ.get("BENCH_ORDERS_DB", "oms_bench_orders")
PG_BASE = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_ORDERS_REDIS", "redis://127.0.0.1:6379/7")  # bench-orders' own Redis db
STORE = "FLASH-STORE"
SKU = "FLASH-SKU"
COUNT_SKU = "FLASH-COUNT"
WARM_SKU = "FLASH-WARM-UP"
WARM_ORDERS = 64  # placed before the sale, so every worker has run the order path once
FLOOR_PATH = "/bench-orders/floor/"  # bench/orders_urls.py: only when bench/urls.py has no floor
ORDERS_PATH = "/api/v1/orders/"
GUNICORN_CONFIGS = {
    "production": [],  # config/gunicorn.py as it is: cores + 1 sync workers
    "sync_w2": ["-w", "2"],
    "sync_w3": ["-w", "3"],
    "sync_w4": ["-w", "4"],
    "gthread_w2t2": ["-w", "2", "-k", "gthread", "--threads", "2"],
    "gthread_w2t4": ["-w", "2", "-k", "gthread", "--threads", "4"],
    "gthread_w4t4": ["-w", "4", "-k", "gthread", "--threads", "4"],
}
CLAIM_LOCATIONS = {"service": "WH-CLAIM-SVC", "raw": "WH-CLAIM-RAW"}
RAW_CLAIM_SQL = (
    "UPDATE orders_fulfillment SET status = 'picking', claimed_by_id = %s, claimed_at = now(), "
    "updated_at = now() WHERE id = (SELECT id FROM orders_fulfillment WHERE location_id = %s "
    "AND status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
)


@dataclass(frozen=True)
class FlashParams:
    units: int = 1000
    attempts: int = 1500
    processes: int = 2
    connections: int = 32  # per process: 64 concurrent clients
    floor_seconds: float = 5.0
    gunicorn: str = "production"
    wrk: bool = True  # also measure the floor with wrk, when it is installed
    cpu_samples: int = 200  # in-process placements timed for the Python CPU per request

    @property
    def clients(self) -> int:
        return self.processes * self.connections


FULL_FLASH = FlashParams()
QUICK_FLASH = FlashParams(
    units=40, attempts=60, processes=2, connections=4, floor_seconds=1.0, cpu_samples=20
)
TINY_FLASH = FlashParams(
    units=5, attempts=8, processes=1, connections=4, floor_seconds=0.3, wrk=False, cpu_samples=3
)


@dataclass(frozen=True)
class ClaimParams:
    tasks: int = 10_000
    workers: int = 16


FULL_CLAIMS = ClaimParams()
QUICK_CLAIMS = ClaimParams(tasks=300, workers=4)
TINY_CLAIMS = ClaimParams(tasks=40, workers=2)


# --- Django ----------------------------------------------------------------------------------


def configure() -> str:
    """Point Django at oms_bench_orders (created if missing), migrate it; return its URL."""
    url = f"{PG_BASE}/{DATABASE}"
    ensure_database(DATABASE)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DEBUG"] = "False"
    os.environ["CELERY_BROKER_URL"] = REDIS_URL
    # Django's cache in Redis, as in production (the token cache; CACHE_URL= empty: local memory)
    os.environ.setdefault("CACHE_URL", REDIS_URL)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def current_database_url() -> str:
    """The URL of the database Django is connected to now (the test database under pytest)."""
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def reset_database() -> None:
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def _redis_clear() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()  # db 7 is bench-orders' own
    except Exception as exc:  # the numbers do not depend on it
        print(f"(redis db 7 not emptied: {exc})", file=sys.stderr)


# --- The floor view (served by bench/orders_urls.py) ------------------------------------------


def floor_view():
    """A DRF APIView doing one indexed read (a stock level by primary key): the framework floor."""
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from inventory.models import StockLevel

    class FloorApi(APIView):
        permission_classes = [AllowAny]
        throttle_classes: list = []  # if called without a token, the per-address limit would refuse the load

        def get(self, request):
            pk = int(request.query_params.get("id") or 1)
            return Response(
                StockLevel.objects.filter(pk=pk)
                .values("id", "sku_id", "location_id", "on_hand", "reserved")
                .first()
            )

    return FloorApi.as_view()


def floor_urls() -> tuple[str, dict[str, str]]:
    """The URL conf to serve and its floor paths: bench/urls.py's floor (the bench engineer's) if present."""
    try:
        from bench import urls

        paths = {str(p.pattern) for p in urls.urlpatterns}
        if "bench/floor-noauth/" in paths:
            floors = {"noauth": "/bench/floor-noauth/"}
            if "bench/floor/" in paths:
                floors["auth"] = "/bench/floor/"
            return "bench.urls", floors
    except Exception:
        pass
    return "bench.orders_urls", {"noauth": FLOOR_PATH}


FLOOR_LABELS = {
    "noauth": "floor: DRF APIView, 1 indexed read (no auth)",
    "auth": "floor with knox token authentication",
}


# --- gunicorn ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn config.wsgi` on 127.0.0.1 with ROOT_URLCONF=bench.orders_urls; stopped on exit."""

    def __init__(self, *, database_url: str, config: str = "production"):
        self.config = config
        self.urlconf, self.floors = floor_urls()
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "False",
            "ROOT_URLCONF": self.urlconf,
            "CELERY_BROKER_URL": REDIS_URL,
            "CACHE_URL": os.environ.get("CACHE_URL", REDIS_URL),
            "LOG_LEVEL": "ERROR",
        }

    @property
    def cmd(self) -> list[str]:
        exe = str(ROOT / ".venv" / "bin" / "gunicorn")
        if not os.path.exists(exe):
            exe = shutil.which("gunicorn") or "gunicorn"
        conf = ["-c", "config/gunicorn.py"] if (ROOT / "config" / "gunicorn.py").exists() else []
        return [
            exe,
            *conf,
            "config.wsgi",
            "-b",
            f"127.0.0.1:{self.port}",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            *GUNICORN_CONFIGS[self.config],
        ]

    def __enter__(self) -> Gunicorn:
        # Its log (Django logs every 4xx as a warning) goes to a file, shown only if it fails.
        self.log = tempfile.NamedTemporaryFile(prefix="bench-orders-gunicorn-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.__exit__(None, None, None)
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}: {tail}")
            try:
                status, _ = asyncio.run(_one_get(self.port, self.floors["noauth"]))
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        tail = self.log_tail()
        self.__exit__(None, None, None)
        raise SystemExit(f"gunicorn did not answer within 30 s: {tail}")

    def log_tail(self) -> str:
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-2000:]

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        os.unlink(self.log.name)


# --- A small keep-alive HTTP/1.1 client (asyncio, one process per N connections) ----------------


class _Conn:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; reconnect when the server closed (gunicorn's sync workers close every time)."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one_get(port: int, path: str) -> tuple[int, bytes]:
    c = _Conn(port)
    try:
        return await asyncio.wait_for(c.request(_get(path)), 5)
    finally:
        c.close()


def _get(path: str, headers: dict[str, str] | None = None) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()


def _post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)  # error codes of non-2xx answers
    latencies: list[float] = field(default_factory=list)  # seconds, every answered request
    errors: Counter = field(default_factory=Counter)  # transport errors
    start: float = float("inf")
    end: float = 0.0
    cpu: float = 0.0  # client CPU seconds

    @property
    def wall(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def merge(self, other: LoadResult) -> None:
        self.statuses.update(other.statuses)
        self.codes.update(other.codes)
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        self.cpu += other.cpu


def _order_request(*, token: str, key: str, email: str, store: str, sku: str) -> bytes:
    body = {
        "channel": "web",
        "customer": {"email": email, "name": "Flash buyer"},
        "fulfillment": {"method": "pickup", "location": store},
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "4900"}],
        "currency": "JPY",
    }
    return _post(
        ORDERS_PATH,
        json.dumps(body).encode(),
        {"Authorization": f"Token {token}", "Idempotency-Key": key},
    )


async def _drive(port: int, connections: int, make_request, *, count: int | None, seconds: float | None):
    """`connections` concurrent clients; stop after `count` requests in total or after `seconds`."""
    r = LoadResult()
    lat = array("d")
    issued = 0
    deadline = None if seconds is None else time.monotonic() + seconds

    async def client() -> None:
        nonlocal issued
        conn = _Conn(port)
        try:
            while True:
                if count is not None and issued >= count:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                i = issued
                issued += 1
                raw = make_request(i)
                t0 = time.monotonic()
                try:
                    status, body = await asyncio.wait_for(conn.request(raw), 120)
                except Exception as exc:
                    r.errors[type(exc).__name__] += 1
                    conn.close()
                    continue
                lat.append(time.monotonic() - t0)
                r.statuses[status] += 1
                if status >= 300:
                    try:
                        r.codes[f"{status} {json.loads(body)['error']['code']}"] += 1
                    except Exception:
                        r.codes[f"{status} {body[:80]!r}"] += 1
        finally:
            conn.close()

    cpu0 = time.process_time()
    r.start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    r.end = time.monotonic()
    r.cpu = time.process_time() - cpu0
    r.latencies = lat.tolist()
    return r


def _client_process(idx, port, connections, kind, spec, barrier, out_q) -> None:
    try:
        if kind == "orders":
            count = spec["counts"][idx]

            def make(i: int) -> bytes:
                return _order_request(
                    token=spec["token"],
                    key=f"{spec['run']}-{idx}-{i}",
                    email=f"buyer-{spec['run']}-{idx}-{i}@example.com",
                    store=spec["store"],
                    sku=spec["sku"],
                )

            seconds = None
        else:
            count, seconds = None, spec["seconds"]
            hdrs = {"Authorization": f"Token {spec['token']}"} if spec.get("token") else None
            reqs = [_get(f"{spec['path']}?id={pk}", hdrs) for pk in spec["ids"]]

            def make(i: int) -> bytes:
                return reqs[(i * 7 + idx) % len(reqs)]

        barrier.wait(timeout=60)
        res = asyncio.run(_drive(port, connections, make, count=count, seconds=seconds))
        out_q.put((idx, res, None))
    except BaseException as exc:
        out_q.put((idx, None, f"{type(exc).__name__}: {exc}"))


def run_load(port: int, *, processes: int, connections: int, kind: str, spec: dict) -> LoadResult:
    """Fork `processes` client processes of `connections` connections each; merge their results."""
    from django.db import connections as dbs

    dbs.close_all()
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes)
    out_q = ctx.Queue()
    procs = [
        ctx.Process(target=_client_process, args=(i, port, connections, kind, spec, barrier, out_q))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        got = [out_q.get(timeout=1800) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    failures = [err for _, _, err in got if err]
    if failures:
        raise SystemExit(f"client processes failed: {failures[:2]}")
    merged = LoadResult()
    for _, res, _ in got:
        merged.merge(res)
    merged.latencies.sort()
    return merged


def run_wrk(port: int, path: str, *, connections: int, seconds: float, stock_id: int) -> float | None:
    """The floor with wrk (C, ~10x less client CPU per request than Python), when installed."""
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            f"http://127.0.0.1:{port}{path}?id={stock_id}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    for ln in out.stdout.splitlines():
        if ln.startswith("Requests/sec:"):
            return float(ln.split()[1])
    return None


# --- Figure 1: the flash sale ---------------------------------------------------------------


def flash_setup(*, units: int, reset: bool) -> dict:
    """The store, the flash SKU with exactly `units` on hand (through the services), a storefront token."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from inventory.models import Sku, StockLevel
    from inventory.services import Line, stock_receive
    from stores.models import Location, LocationKind, Role, StaffProfile

    if reset:
        reset_database()
    store = Location.objects.create(
        code=STORE,
        name="Flash sale store",
        kind=LocationKind.STORE,
        latitude=35.6595,
        longitude=139.7005,
        offers_pickup=True,
        ships_orders=True,
    )
    sku = Sku.objects.create(code=SKU, name="Limited sneaker")
    count_sku = Sku.objects.create(code=COUNT_SKU, name="Statement-count sneaker")
    stock_receive(lines=[Line(store.pk, sku.pk, units)], reference="flash sale")
    stock_receive(lines=[Line(store.pk, count_sku.pk, 1)], reference="statement count")
    warm_sku = Sku.objects.create(code=WARM_SKU, name="Warm-up sneaker")
    stock_receive(lines=[Line(store.pk, warm_sku.pk, WARM_ORDERS)], reference="warm-up")
    user = get_user_model().objects.create_user(username="bench-storefront")
    StaffProfile.objects.create(user=user, role=Role.STOREFRONT)
    _, token = AuthToken.objects.create(user=user)
    level = StockLevel.objects.get(location=store, sku=sku)
    return {"store": store, "sku": sku, "count_sku": count_sku, "token": token, "stock_id": level.pk}


def sql_gist(sql: str) -> str:
    """`SELECT orders_customer`: the verb and the main table of a statement (subqueries left out)."""
    verb = sql.split(None, 1)[0].upper()
    flat = sql
    while True:  # drop parenthesised parts (subqueries, column lists) from the inside out
        shorter = re.sub(r"\([^()]*\)", "", flat)
        if shorter == flat:
            break
        flat = shorter
    if verb == "WITH":  # a CTE: name it by its main statement
        main = re.search(r"\b(INSERT|UPDATE|SELECT|DELETE)\b", flat, re.I)
        verb = f"WITH ... {main.group(1).upper()}" if main else verb
    if verb == "UPDATE":
        m = re.match(r'UPDATE\s+"?(\w+)"?', flat, re.I)
    else:
        m = re.search(r'(?:FROM|INTO)\s+"?(\w+)"?', flat, re.I)
    suffix = " ... FOR UPDATE" if " FOR UPDATE" in flat.upper() else ""
    return f"{verb} {m.group(1) if m else ''}".strip() + suffix


STATEMENT_OWNERS = [  # (gist prefix, what in the request sends it)
    (
        "SELECT knox_authtoken",
        "authentication: token, user and role in one query (none while the token is in Django's cache, OMS AUTH_CACHE_SECONDS)",
    ),
    ("SELECT stores_staffprofile", "permission: the user's role"),
    ("INSERT orders_idempotencykey", "Idempotency-Key: claim the key"),
    ("UPDATE orders_idempotencykey", "Idempotency-Key: store the response"),
    ("SELECT stores_location", ["the pickup store", "routing: the candidate locations' fields"]),
    ("SELECT inventory_sku", "the lines' SKUs"),
    ("SELECT orders_customer", "customer find-or-create"),
    ("INSERT orders_customer", "customer find-or-create"),
    ("SELECT inventory_stocklevel", "routing: available units"),
    ("UPDATE inventory_stocklevel", "reservation: guarded UPDATE"),
    ("INSERT inventory_stockmovement", "reservation: ledger row"),
    ("WITH ... INSERT inventory_stockmovement", "reservation: guarded UPDATE + ledger row in one CTE"),
    (
        "WITH ... SELECT m",
        "reservation at the store: guarded UPDATE + ledger row in one CTE (last: after the response is stored)",
    ),
    ("INSERT orders_", "order rows: order, lines, fulfillment, fulfillment lines, events"),
    ("SELECT orders_orderline", "notifications listener: order context"),
    ("INSERT notifications_", "notifications listener: outbox row"),
    ("SELECT notifications_notification", "notifications listener: outbox row read back"),
    (
        "SELECT notifications_webhookendpoint",
        "notifications listener: webhook endpoints (once per WEBHOOK_ENDPOINTS_CACHE_SECONDS per process)",
    ),
    (
        "WITH ... SELECT c",
        "order rows, one statement from one jsonb parameter: new customer, order, lines, fulfillment, "
        "fulfillment lines, events",
    ),
]
LOOKUP_OWNER = "lookup: pickup store and its stock, SKUs, customer (scalar subqueries)"


def statement_breakdown(sqls: list[str]) -> str:
    """One placement's statements grouped by what sends them (a Markdown table)."""
    rows: list[list] = []
    seen: Counter = Counter()
    for sql in sqls:
        gist = sql_gist(sql)
        if gist.split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"):
            continue
        owner = (
            LOOKUP_OWNER
            if gist == "SELECT"
            else next((o for prefix, o in STATEMENT_OWNERS if gist.startswith(prefix)), "other")
        )
        if isinstance(owner, list):
            owner = owner[min(seen[gist], len(owner) - 1)]
        seen[gist] += 1
        if rows and rows[-1][0] == owner:
            rows[-1][1] += 1
            rows[-1][2] += f", {gist}"
        else:
            rows.append([owner, 1, gist])
    return table(["sent by", "statements", "which"], rows)


def _statements(ctx) -> int:
    """SQL statements sent, without the transaction control ones (BEGIN, COMMIT, savepoints)."""
    skip = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return sum(1 for q in ctx.captured_queries if not q["sql"].upper().startswith(skip))


def count_statements(setup: dict, *, urlconf: str, floors: dict[str, str]) -> dict:
    """Statements Django sends for one placement through the test client (201), a sold-out 409, the floors."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {setup['token']}"}
    out: dict = {}
    with override_settings(ROOT_URLCONF=urlconf):
        for label in ("201", "409"):
            body = {
                "channel": "web",
                "customer": {"email": f"count-{label}@example.com", "name": "Count"},
                "fulfillment": {"method": "pickup", "location": STORE},
                "lines": [{"sku": COUNT_SKU, "quantity": 1, "unit_price": "4900"}],
                "currency": "JPY",
            }
            with CaptureQueriesContext(connection) as ctx:
                r = client.post(
                    ORDERS_PATH,
                    json.dumps(body),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=f"count-{label}",
                    **auth,
                )
            if str(r.status_code) != label:
                raise SystemExit(
                    f"statement count: expected {label}, got {r.status_code} {r.content[:200]!r}"
                )
            out[label] = _statements(ctx)
            out[f"{label}_sql"] = [q["sql"] for q in ctx.captured_queries]
        for kind, path in floors.items():
            with CaptureQueriesContext(connection) as ctx:
                r = client.get(f"{path}?id={setup['stock_id']}", **(auth if kind == "auth" else {}))
            if r.status_code != 200:
                raise SystemExit(f"floor {path}: {r.status_code}")
            out[f"floor_{kind}"] = _statements(ctx)
    return out


def python_cpu(setup: dict, *, urlconf: str, floors: dict[str, str], n: int) -> dict[str, float]:
    """Python CPU ms per request in this process (Django test client, no HTTP, PostgreSQL's CPU not included):
    a placement (201) and the no-auth floor. Uses the statement-count SKU, after the sale's checks."""
    from django.test import Client
    from django.test.utils import override_settings

    from inventory.services import Line, stock_receive

    stock_receive(lines=[Line(setup["store"].pk, setup["count_sku"].pk, n + 5)], reference="cpu sample")
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {setup['token']}"}

    def place(i: int) -> int:
        body = {
            "channel": "web",
            "customer": {"email": f"cpu-{i}@example.com", "name": "Cpu"},
            "fulfillment": {"method": "pickup", "location": STORE},
            "lines": [{"sku": COUNT_SKU, "quantity": 1, "unit_price": "4900"}],
            "currency": "JPY",
        }
        return client.post(
            ORDERS_PATH,
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"cpu-{i}",
            **auth,
        ).status_code

    with override_settings(ROOT_URLCONF=urlconf):
        place(-1)
        t0 = time.process_time()
        codes = Counter(place(i) for i in range(n))
        placement = (time.process_time() - t0) / n * 1000
        url = f"{floors['noauth']}?id={setup['stock_id']}"
        client.get(url)
        t0 = time.process_time()
        for _ in range(n * 3):
            client.get(url)
        floor = (time.process_time() - t0) / (n * 3) * 1000
    if codes[201] != n:
        raise SystemExit(f"CPU sample: {codes}")
    return {"placement": placement, "floor": floor}


def flash_verify(setup: dict, load: LoadResult, params: FlashParams) -> tuple[dict, list[str]]:
    from inventory.models import StockLevel
    from inventory.selectors import ledger_mismatches
    from orders.models import Order

    level = StockLevel.objects.get(pk=setup["stock_id"])
    orders = Order.objects.filter(lines__sku=setup["sku"]).count()
    s = load.statuses
    fivexx = sum(n for st, n in s.items() if st >= 500)
    other = load.answered - s[201] - s[409] - fivexx
    refused = params.attempts - params.units
    checks = {
        "attempts": load.answered + sum(load.errors.values()),
        "created_201": s[201],
        "orders_in_db": orders,
        "conflict_409_insufficient_stock": load.codes.get("409 insufficient_stock", 0),
        "conflict_409_other": s[409] - load.codes.get("409 insufficient_stock", 0),
        "5xx": fivexx,
        "other_status": other,
        "transport_errors": sum(load.errors.values()),
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "ledger_mismatches": len(ledger_mismatches()),
    }
    bad = []
    expect = {
        "attempts": params.attempts,
        "created_201": params.units,
        "orders_in_db": params.units,
        "conflict_409_insufficient_stock": refused,
        "conflict_409_other": 0,
        "5xx": 0,
        "other_status": 0,
        "transport_errors": 0,
        "reserved": params.units,
        "ledger_mismatches": 0,
    }
    for k, v in expect.items():
        if checks[k] != v:
            bad.append(f"{k} = {checks[k]}, expected {v}")
    if not level.reserved <= level.on_hand:
        bad.append(f"oversold: reserved {level.reserved} > on_hand {level.on_hand}")
    return checks, bad


def _floor(port: int, params: FlashParams, *, path: str, ids: list[int], token: str | None, seconds: float):
    return run_load(
        port,
        processes=params.processes,
        connections=params.connections,
        kind="floor",
        spec={"seconds": seconds, "ids": ids, "path": path, "token": token},
    )


def run_flash(*, database_url: str, params: FlashParams, reset: bool = True) -> dict:
    """The whole figure: setup, floors, sale, floors again, checks, statement counts. Returns the results."""
    from inventory.models import StockLevel

    setup = flash_setup(units=params.units, reset=reset)
    ids = list(StockLevel.objects.values_list("pk", flat=True))
    run_id = f"f{int(time.time())}"
    per = [params.attempts // params.processes] * params.processes
    for i in range(params.attempts - sum(per)):
        per[i] += 1
    spec = {"token": setup["token"], "run": run_id, "counts": per, "store": STORE, "sku": SKU}
    res: dict = {"params": params, "floors": {}}
    with Gunicorn(database_url=database_url, config=params.gunicorn) as g:
        res["server"] = f"{' '.join(g.cmd[1:])}, ROOT_URLCONF={g.urlconf}".replace(
            f"-b 127.0.0.1:{g.port} ", ""
        )
        res["floor_paths"] = g.floors

        def floors(when: str, seconds: float) -> None:
            for kind, path in g.floors.items():
                token = setup["token"] if kind == "auth" else None
                res["floors"][(kind, when)] = _floor(
                    g.port, params, path=path, ids=ids, token=token, seconds=seconds
                )

        floors("warm-up", min(1.0, params.floor_seconds))
        # Each worker's first orders import modules, open its broker connection and prepare its
        # statements: done here, on another SKU, as a server that has been up a while has done.
        warm = run_load(
            g.port,
            processes=1,
            connections=min(8, params.clients),
            kind="orders",
            spec={**spec, "run": f"{run_id}w", "sku": WARM_SKU, "counts": [WARM_ORDERS]},
        )
        if warm.statuses[201] != WARM_ORDERS:
            raise SystemExit(f"warm-up orders: {dict(warm.statuses)}")
        floors("before", params.floor_seconds)
        res["sale"] = run_load(
            g.port, processes=params.processes, connections=params.connections, kind="orders", spec=spec
        )
        floors("after", params.floor_seconds)
        res["floor_wrk"] = params.wrk and run_wrk(
            g.port,
            g.floors["noauth"],
            connections=params.clients,
            seconds=params.floor_seconds,
            stock_id=setup["stock_id"],
        )
    res["checks"], res["problems"] = flash_verify(setup, res["sale"], params)
    res["statements"] = count_statements(setup, urlconf=g.urlconf, floors=g.floors)
    res["cpu"] = python_cpu(setup, urlconf=g.urlconf, floors=g.floors, n=params.cpu_samples)
    _redis_clear()
    return res


def _ms(v: float) -> float:
    return v * 1000


def _rps(r: LoadResult) -> float:
    return r.answered / r.wall


def flash_render(res: dict) -> tuple[str, str, bool]:
    p: FlashParams = res["params"]
    sale: LoadResult = res["sale"]
    orders_s = sale.statuses[201] / sale.wall
    attempts_s = sale.answered / sale.wall
    st = res["statements"]
    rows = [
        [
            "flash sale: POST /api/v1/orders/ (1 unit, pickup, knox auth)",
            sale.answered,
            round(sale.wall, 2),
            f"**{orders_s:,.0f} orders/s** ({attempts_s:,.0f} attempts/s)",
            _ms(percentile(sale.latencies, 50)),
            _ms(percentile(sale.latencies, 99)),
            f"{st['201']} (201), {st['409']} (409)",
            sale.cpu / max(sale.answered, 1) * 1000,
        ],
    ]
    for (kind, when), f in res["floors"].items():
        if when == "warm-up":
            continue
        rows.append(
            [
                f"{FLOOR_LABELS[kind]}, {when} the sale",
                f.answered,
                round(f.wall, 2),
                f"{_rps(f):,.0f} req/s",
                _ms(percentile(f.latencies, 50)),
                _ms(percentile(f.latencies, 99)),
                st.get(f"floor_{kind}", "?"),
                f.cpu / max(f.answered, 1) * 1000,
            ]
        )
    if res.get("floor_wrk"):
        rows.append(
            [
                f"{FLOOR_LABELS['noauth']}, wrk -t2 -c{p.clients}, after",
                "-",
                p.floor_seconds,
                f"{res['floor_wrk']:,.0f} req/s",
                "-",
                "-",
                st.get("floor_noauth", "?"),
                "-",
            ]
        )
    tbl = table(
        [
            "what",
            "requests",
            "seconds",
            "throughput",
            "p50 ms",
            "p99 ms",
            "SQL statements / request",
            "client CPU ms/request",
        ],
        rows,
    )
    c = res["checks"]
    fl = res["floors"]
    floor_rps = (_rps(fl[("noauth", "before")]) + _rps(fl[("noauth", "after")])) / 2
    ratio = orders_s / floor_rps if floor_rps else 0.0
    hit = ratio >= 0.25
    ok = not res["problems"] and hit
    lines = [
        f"- {p.clients} concurrent clients ({p.processes} processes x {p.connections} connections), "
        f"{c['attempts']:,} attempts on {p.units:,} units: **{c['created_201']:,} x 201** "
        f"({c['orders_in_db']:,} orders in the database), **{c['conflict_409_insufficient_stock']:,} x 409 "
        f"insufficient_stock**, {c['conflict_409_other']} other 409, **{c['5xx']} x 5xx**, "
        f"{c['other_status']} other statuses, {c['transport_errors']} transport errors",
        f"- stock after the sale: on_hand {c['on_hand']:,}, reserved {c['reserved']:,} "
        f"({'**no oversell**' if c['reserved'] <= c['on_hand'] else 'OVERSOLD'}); ledger_mismatches() = "
        f"{c['ledger_mismatches']} ({'consistent' if c['ledger_mismatches'] == 0 else 'INCONSISTENT'})",
        f"- orders/s (201s over the wall time of all {p.attempts:,} attempts) / floor req/s (no-auth floor, "
        f"mean of before and after, same client) = {orders_s:,.0f} / {floor_rps:,.0f} = **{ratio:.2f}** "
        f"(target >= 0.25: {'met' if hit else 'MISSED'})",
    ]
    if ("auth", "before") in fl:
        auth_rps = (_rps(fl[("auth", "before")]) + _rps(fl[("auth", "after")])) / 2
        lines.append(
            f"- against the floor with the same knox authentication ({auth_rps:,.0f} req/s): "
            f"{orders_s / auth_rps:.2f}"
        )
    if res.get("floor_wrk"):
        lines.append(
            f"- against the no-auth floor as wrk measures it ({res['floor_wrk']:,.0f} req/s; wrk spends less "
            f"client CPU on the same 2 cores): {orders_s / res['floor_wrk']:.2f}"
        )
    lines.append(
        f"- one placement (201) = **{st['201']} SQL statements** plus BEGIN and COMMIT (the whole request: "
        f"authentication, Idempotency-Key, the order and the notification outbox), counted on the first "
        f"request of a process: 2 fewer while the token and the webhook endpoints are cached; a sold-out "
        f"attempt (409) = {st['409']}"
    )
    cpu = res["cpu"]
    lines.append(
        f"- Python CPU per request in-process (test client, no HTTP, PostgreSQL's CPU not included): "
        f"placement {cpu['placement']:.1f} ms, floor {cpu['floor']:.2f} ms "
        f"({cpu['placement'] / cpu['floor']:.0f}x)"
    )
    for prob in res["problems"]:
        lines.append(f"- PROBLEM: {prob}")
    for err, n in sale.errors.most_common(3):
        lines.append(f"- transport error x{n}: {err}")
    return tbl, "\n".join(lines), ok


# --- Figure 4: claims -------------------------------------------------------------------------


def claims_setup(*, tasks: int, reset: bool) -> dict:
    """Two identical queues of `tasks` pending fulfillments (one per location), one warehouse user.

    The rows are bulk-inserted (orders, lines, fulfillments, fulfillment lines): claims never touch
    stock, so the queue does not need reservations behind it.
    """
    from django.contrib.auth import get_user_model

    from inventory.models import Sku
    from orders.models import Customer
    from stores.models import Location, LocationKind, Role, StaffAssignment, StaffProfile

    if reset:
        reset_database()
    user = get_user_model().objects.create_user(username="bench-picker")
    StaffProfile.objects.create(user=user, role=Role.WAREHOUSE)
    sku = Sku.objects.create(code="CLAIM-SKU", name="Queued item")
    customer = Customer.objects.create(email="queue@example.com", name="Queue")
    locations = {}
    for mode, code in CLAIM_LOCATIONS.items():
        loc = Location.objects.create(
            code=code, name=code, kind=LocationKind.WAREHOUSE, latitude=35.5, longitude=139.7
        )
        StaffAssignment.objects.create(user=user, location=loc)
        locations[mode] = loc
    for mode, loc in locations.items():
        _queue(loc, tasks, prefix="S" if mode == "service" else "R", customer=customer, sku=sku)
    return {"user": user, "locations": locations, "customer": customer, "sku": sku}


def _queue(loc, tasks: int, *, prefix: str, customer, sku) -> None:
    """`tasks` pending ship fulfillments at `loc`, each with its order, line and fulfillment line."""
    from orders.models import Fulfillment, FulfillmentLine, Order, OrderLine

    for start in range(0, tasks, 2000):
        n = min(2000, tasks - start)
        orders = Order.objects.bulk_create(
            [
                Order(
                    number=f"{prefix}{start + i:09d}",
                    channel="web",
                    customer=customer,
                    currency="JPY",
                    subtotal=100,
                    total=100,
                    fulfillment_method="ship",
                    ship_address={"line1": "1-1", "city": "Tokyo", "country": "JP"},
                )
                for i in range(n)
            ]
        )
        lines = OrderLine.objects.bulk_create(
            [OrderLine(order=o, sku=sku, quantity=1, unit_price=100, line_total=100) for o in orders]
        )
        fs = Fulfillment.objects.bulk_create(
            [Fulfillment(order=o, location=loc, method="ship") for o in orders]
        )
        FulfillmentLine.objects.bulk_create(
            [
                FulfillmentLine(fulfillment=f, order_line=ol, sku=sku, quantity=1)
                for f, ol in zip(fs, lines, strict=True)
            ]
        )


def claim_statements(setup: dict) -> list[str]:
    """The SQL of one claim through the service (a fresh one-task queue, after the run)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.services import fulfillment_claim
    from stores.selectors import user_location_ids

    loc = setup["locations"]["service"]
    _queue(loc, 1, prefix="C", customer=setup["customer"], sku=setup["sku"])
    user = setup["user"]
    user_location_ids(user)  # cached on the user object, as in the workers after their first claim
    with CaptureQueriesContext(connection) as ctx:
        f = fulfillment_claim(location=loc, user=user)
    if f is None:
        raise SystemExit("claim statement count: nothing claimed")
    return [q["sql"] for q in ctx.captured_queries]


@dataclass
class ClaimResult:
    mode: str
    ids: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    start: float = float("inf")
    end: float = 0.0
    cpu: float = 0.0

    @property
    def wall(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def rate(self) -> float:
        return len(self.ids) / self.wall


def _claim_worker(idx, user, locations, modes, barrier, out_q) -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=True):  # never a socket inherited from the parent
        conn.connection = None
    from django.db import connection

    from orders.services import fulfillment_claim

    results = []
    try:
        connection.ensure_connection()
        cur = connection.connection.cursor()
        for mode in modes:
            loc = locations[mode]
            barrier.wait(timeout=1800)  # ready (the parent vacuums now)
            barrier.wait(timeout=1800)  # go
            r = ClaimResult(mode)
            ids, lat = array("q"), array("d")
            cpu0 = time.process_time()
            r.start = time.monotonic()
            while True:
                t0 = time.monotonic()
                try:
                    if mode == "service":
                        f = fulfillment_claim(location=loc, user=user)
                        got = None if f is None else f.pk
                    else:
                        cur.execute(RAW_CLAIM_SQL, (user.pk, loc.pk))
                        row = cur.fetchone()
                        got = None if row is None else row[0]
                except Exception as exc:
                    r.errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"] += 1
                    if sum(r.errors.values()) > 100:
                        break
                    continue
                if got is None:
                    break
                lat.append(time.monotonic() - t0)
                ids.append(got)
            r.end = time.monotonic()
            r.cpu = time.process_time() - cpu0
            r.ids, r.latencies = ids.tolist(), lat.tolist()
            results.append(r)
    except BaseException as exc:
        barrier.abort()
        out_q.put((idx, None, f"{type(exc).__name__}: {exc}"))
        return
    finally:
        connection.close()
    out_q.put((idx, results, None))


def run_claims(*, params: ClaimParams, reset: bool = True, modes=("service", "raw")) -> dict:
    from django.db import connection, connections
    from django.db.models import Count

    from orders.models import EventType, Fulfillment, OrderEvent

    setup = claims_setup(tasks=params.tasks, reset=reset)
    connections.close_all()
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(params.workers + 1)
    out_q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_claim_worker,
            args=(i, setup["user"], setup["locations"], modes, barrier, out_q),
            daemon=True,
        )
        for i in range(params.workers)
    ]
    for p in procs:
        p.start()
    try:
        for _ in modes:
            barrier.wait(timeout=1800)
            with connection.cursor() as cur:
                for t in ("orders_fulfillment", "orders_order", "orders_orderevent"):
                    cur.execute(f"VACUUM (ANALYZE) {t}")
            connections.close_all()
            barrier.wait(timeout=1800)
        got = [out_q.get(timeout=3600) for _ in procs]
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    for p in procs:
        p.join(timeout=30)
    failures = [err for _, _, err in got if err]
    if failures:
        raise SystemExit(f"{len(failures)} claim workers failed, e.g. {failures[0]}")

    merged: dict[str, ClaimResult] = {}
    for i, mode in enumerate(modes):
        m = ClaimResult(mode)
        for _, results, _ in got:
            r = results[i]
            m.ids.extend(r.ids)
            m.latencies.extend(r.latencies)
            m.errors.update(r.errors)
            m.start, m.end = min(m.start, r.start), max(m.end, r.end)
            m.cpu += r.cpu
        m.latencies.sort()
        merged[mode] = m

    checks: dict[str, dict] = {}
    problems = []
    for mode, m in merged.items():
        loc = setup["locations"][mode]
        qs = Fulfillment.objects.filter(location=loc)
        c = {
            "claimed_calls": len(m.ids),
            "distinct_ids": len(set(m.ids)),
            "picking_in_db": qs.filter(status="picking").count(),
            "pending_in_db": qs.filter(status="pending").count(),
            "claimed_by_set": qs.filter(claimed_by=setup["user"]).count(),
        }
        if mode == "service":
            per = (
                OrderEvent.objects.filter(
                    fulfillment__location=loc, type=EventType.FULFILLMENT_STATUS_CHANGED, to_status="picking"
                )
                .values("fulfillment_id")
                .annotate(n=Count("id"))
            )
            c["claim_events"] = sum(row["n"] for row in per)
            c["fulfillments_claimed_twice"] = sum(1 for row in per if row["n"] > 1)
        checks[mode] = c
        for k in ("claimed_calls", "distinct_ids", "picking_in_db", "claimed_by_set", "claim_events"):
            if k in c and c[k] != params.tasks:
                problems.append(f"{mode}: {k} = {c[k]}, expected {params.tasks}")
        if c["pending_in_db"] or c.get("fulfillments_claimed_twice"):
            problems.append(
                f"{mode}: pending left {c['pending_in_db']}, twice {c.get('fulfillments_claimed_twice')}"
            )
        for err, n in m.errors.most_common(3):
            problems.append(f"{mode}: error x{n}: {err}")
    statements = claim_statements(setup)
    return {
        "params": params,
        "merged": merged,
        "checks": checks,
        "problems": problems,
        "statements": statements,
    }


def claims_render(res: dict) -> tuple[str, str, bool]:
    p: ClaimParams = res["params"]
    merged: dict[str, ClaimResult] = res["merged"]
    label = {
        "service": "orders.services.fulfillment_claim",
        "raw": "raw SQL: UPDATE ... (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
    }
    rows = [
        [
            label[m.mode],
            p.workers,
            len(m.ids),
            round(m.wall, 2),
            round(m.rate),
            _ms(percentile(m.latencies, 50)),
            _ms(percentile(m.latencies, 99)),
            m.cpu / max(len(m.ids), 1) * 1000,
        ]
        for m in merged.values()
    ]
    tbl = table(
        [
            "path",
            "worker processes",
            "claims",
            "seconds",
            "claims/s",
            "p50 ms",
            "p99 ms",
            "client CPU ms/claim",
        ],
        rows,
    )
    lines = []
    if "service" in merged and "raw" in merged and merged["raw"].rate:
        lines.append(
            f"- service / raw SQL = {merged['service'].rate:,.0f} / {merged['raw'].rate:,.0f} claims/s = "
            f"**{merged['service'].rate / merged['raw'].rate:.2f}**"
        )
    gists = [sql_gist(q) for q in res["statements"]]
    gists = [g for g in gists if g.split()[0] not in ("BEGIN", "COMMIT")]
    lines.append(
        f"- one claim through the service = {len(gists)} SQL statements plus BEGIN and COMMIT: "
        + ", ".join(f"`{g}`" for g in gists)
        + "; the raw claim is 1 statement in autocommit"
    )
    for mode, c in res["checks"].items():
        extra = (
            f", {c['claim_events']:,} claim events, {c['fulfillments_claimed_twice']} fulfillments claimed twice"
            if mode == "service"
            else ""
        )
        lines.append(
            f"- {mode}: {c['claimed_calls']:,} claims returned, {c['distinct_ids']:,} distinct tasks; in the "
            f"database {c['picking_in_db']:,} picking, {c['pending_in_db']} still pending, "
            f"{c['claimed_by_set']:,} with claimed_by set{extra}"
        )
    for prob in res["problems"]:
        lines.append(f"- PROBLEM: {prob}")
    return tbl, "\n".join(lines), not res["problems"]


# --- Docs and the command line -----------------------------------------------------------------

FLASH_NOTES = """
How it runs: `python -m bench.orders flash`. gunicorn serves `config.wsgi` with
`ROOT_URLCONF=bench.urls` (the whole app plus the bench engineer's floor views) on 127.0.0.1,
with the production settings file `config/gunicorn.py` and the worker setup of `--config`
(default `production`: the file as it is, cores + 1 = 3 sync workers here; `sync_w2`, `sync_w3`,
`sync_w4`, `gthread_w2t2` and `gthread_w2t4` are the others; on 2 cores, back-to-back runs gave
0.25 / 0.25 / 0.25 of the floor with 2 workers, 0.26 / 0.26 / 0.25 with 3 and 0.24 / 0.23 with 4,
the floor itself highest with 3 or 4), `DEBUG=False`, persistent database connections (`CONN_MAX_AGE`)
with server-side binding and prepared statements (`DB_SERVER_SIDE_BINDING`, the production
default), Celery publishing to Redis (as in production; nothing consumes it here). Before the
floors, 64 warm-up orders of another SKU go through the same endpoint, so that every worker has
imported, connected and prepared what an order needs, as a server that has been up a while has.
The store has exactly the sale's units, received through `inventory.services.stock_receive`. Each
attempt is a new customer (email) with its own Idempotency-Key, so every 201 is a new order (and
a new customer) and every 409 is the stock running out (`insufficient_stock`, with the nearby-stock
suggestions). The client is a small asyncio HTTP/1.1 client in 2 forked processes; gunicorn's
sync workers close the connection after each response, so the client reconnects for every
request (as wrk does). Latency is per request as the client sees it, including the wait in
gunicorn's backlog behind the other 63 clients. The floor is a DRF APIView reading one stock level
by primary key (`/bench/floor-noauth/`; `/bench/floor/` adds the knox token authentication the
orders endpoint also pays), measured with the same client and connection count right before and
right after the sale, and once with wrk. Statement counts come from `CaptureQueriesContext` around
one POST through the Django test client (same request shape); "Python CPU in-process" times a few hundred such POSTs (and floor GETs) in the
benchmark process.

**What it took** (from 0.07 of the floor, 17 statements and 14.4 ms of Python CPU per placement
in-process, to the figures above). Each step was measured in-process (`time.process_time` over
300-800 placements; PostgreSQL's CPU read from its backend's `/proc/<pid>/stat`):

| step | Python CPU / 201 | statements |
|---|---:|---:|
| before | 14.4 ms | 17 |
| one lookup for store, SKUs and customer (`placement_lookup`); order rows in one CTE; pickup reserves at the store without routing's reads | 9.8 ms | 11 |
| 201 body built from the returned objects (`order_created_body`); token, user and role by one raw query | 6.7 ms | 11 |
| webhook endpoints cached per process; raw outbox INSERT | 6.0 ms | 10 |
| pickup: the store's stock read in the lookup, a sold-out attempt stops there; rows first, reservation last; batched on-commit publishing | 5.6 ms | 10 |
| PostgreSQL server-side binding + prepared statements (PostgreSQL's CPU per 201: 2.8 -> 1.25 ms) | 5.5 ms | 10 |
| input serializers build their fields once per class (`InputSerializer`) | 4.5 ms | 10 |
| a new customer inserted with the order's rows | 4.2 ms | 9 |
| order rows and outbox rows from one jsonb parameter (one statement text for any order) | 3.6 ms | 8 |

The reservation at the store comes last, after the response is stored and just before COMMIT
(`config.idempotency.ThenBeforeCommit`, the view's named last step): in a flash sale every buyer
queues on that one stock row, which is locked only for the commit. Issue 8 kept these figures while
making the path readable; see "Issue 8: the restructured write path" for its measurements.
"""

PROFILE_NOTES = """
**Where a placement's time goes now** (py-spy `--gil` over 800 placements in-process, 3.6 ms of
Python CPU each, about 1.1 ms for the floor): `order_place` 50 % (the listener's outbox row 14 %,
the order-rows statement 16 %, the lookup 9 %, the reservation 8 %), Idempotency-Key 8 %, input
validation 6 %, the 201 body 3 %, Django and DRF request handling the rest. PostgreSQL spends
about 1.2 ms of CPU per placement (the order-rows statement 0.46 ms, the deferred foreign-key
checks at COMMIT most of the rest) on the same 2 cores. No single part is large any more: a
further gain needs fewer rows per order (the two events, the outbox row) or a cheaper framework
path for the request itself.
"""

CLAIMS_NOTES = """
How it runs: `python -m bench.orders claims`. The two queues (one per location) are bulk-inserted
(orders, lines, fulfillments, fulfillment lines): claims never touch stock, so no reservation is
needed behind them. 16 processes, forked after Django is set up, each with its own PostgreSQL
connection, call `orders.services.fulfillment_claim(location=..., user=<warehouse user>)` until it
returns None (the service: SELECT ... FOR UPDATE SKIP LOCKED of the oldest pending task, the
transition to picking with claimed_by/claimed_at, the order row lock and status refresh, the event
rows, in one transaction). Then the same processes claim the second queue with the single raw
statement in autocommit. Both tables are vacuumed before each phase. "Claimed exactly once" is
checked from the database, not only from what the workers returned.

Why the service is far from the raw statement: the raw claim is one statement in autocommit; the
service is a transaction of about ten (listed above) plus the Python around them: the locked
SELECT and the UPDATE of the fulfillment, the order row lock and status recompute
(`orders.transitions`), the event rows, and the notifications listener, which for the two events of
a claim (fulfillment status, order status) reads the order and the webhook endpoints once per event
although neither event is sent to anyone here. A profile of 1,480 claims in one process
(`py-spy record --gil`, 2026-11-22 15:22 UTC, quiet machine: 5.1 ms of Python CPU per claim) puts
35 % of the Python CPU in the notifications listener, 22 % in the locked SELECT (`.first()` with
`select_related`), 21 % in the order status refresh, 12 % in the event rows and 7 % in the
fulfillment UPDATE; by layer 73 % Django ORM, 24 % psycopg. Suggestions for the owners (not applied here): in
`notifications`, return before any read for events no customer or webhook hears about, and cache the
active webhook endpoints per process (4 statements fewer per claim); in `orders.services`
`fulfillment_claim`, claim with one `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT
1) RETURNING *` instead of SELECT then UPDATE (1 fewer). The guarantee the figure asks for (no task
claimed twice, however many claim at once) holds on both paths.
"""


def _doc_body(cmd: str, info: dict, tbl: str, summary: str, notes: str) -> str:
    return (
        f"`{cmd}`. The machine is shared with other engineers running test suites (2 cores): "
        f"quote the ratios, which come from the same run.\n\n{machine_md(info)}\n\n{tbl}\n\n{summary}\n{notes}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", nargs="?", default="all", choices=["flash", "claims", "all"])
    ap.add_argument("--quick", action="store_true", help="smoke mode: tiny numbers, docs left alone")
    ap.add_argument(
        "--config", default="production", choices=sorted(GUNICORN_CONFIGS), help="gunicorn config"
    )
    doc = ap.add_mutually_exclusive_group()
    doc.add_argument("--doc", dest="doc", action="store_true", default=None)
    doc.add_argument("--no-doc", dest="doc", action="store_false")
    args = ap.parse_args(argv)
    write_doc = (not args.quick) if args.doc is None else args.doc
    url = configure()
    ok = True
    if args.name in ("flash", "all"):
        params = QUICK_FLASH if args.quick else FULL_FLASH
        params = FlashParams(**{**params.__dict__, "gunicorn": args.config})
        info = machine()
        res = run_flash(database_url=url, params=params)
        info["loadavg_after"] = loadavg()
        info["load_generator"] = (
            f"{params.processes} Python asyncio client processes x {params.connections} connections"
            + (", and wrk for the floor cross-check" if res.get("floor_wrk") else "")
            + f"; server `{res['server']}`"
        )
        tbl, summary, flash_ok = flash_render(res)
        ok &= flash_ok
        breakdown = statement_breakdown(res["statements"]["201_sql"])
        print(tbl)
        print(summary)
        print(breakdown)
        if write_doc:
            cmd = f"python -m bench.orders flash{' --quick' if args.quick else ''}"
            update_doc(
                "orders-flash",
                _doc_body(
                    cmd,
                    info,
                    tbl,
                    summary,
                    "\nThe statements of one placement (201), in the order they are sent:\n\n"
                    + breakdown
                    + "\n"
                    + FLASH_NOTES
                    + PROFILE_NOTES,
                ),
                title="Flash sale through the HTTP API (issue 3, figure 1)",
            )
    if args.name in ("claims", "all"):
        params = QUICK_CLAIMS if args.quick else FULL_CLAIMS
        info = machine()
        res = run_claims(params=params)
        info["loadavg_after"] = loadavg()
        tbl, summary, claims_ok = claims_render(res)
        ok &= claims_ok
        print(tbl)
        print(summary)
        if write_doc:
            cmd = f"python -m bench.orders claims{' --quick' if args.quick else ''}"
            update_doc(
                "orders-claims",
                _doc_body(cmd, info, tbl, summary, CLAIMS_NOTES),
                title="Fulfillment queue: 16 workers claiming 10,000 tasks (issue 3, figure 4)",
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
