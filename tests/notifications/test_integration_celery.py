"""A real Celery worker (subprocess `celery -A config worker`) against a real Redis and PostgreSQL.

Orders are placed through the real `POST /api/v1/orders/` (APIClient in this process).

Needs PostgreSQL (DATABASE_URL) and a broker (CELERY_BROKER_URL; locally redis db 6, in CI the
CI Redis): skipped otherwise. Each test uses its own queue name, so the worker never consumes
messages other tests left on the shared broker. The fault tests start a PRIVATE redis-server on
a free port and stop it by its PID; the machine's shared Redis is never touched.

The worker process writes sent emails to a file (tests/notifications/sink_backend.py) so this
process can count exactly what was delivered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from notifications import services
from notifications.models import Notification, NotificationStatus
from notifications.services import outbox

from .conftest import ship_body

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


# --- Plumbing --------------------------------------------------------------------------------


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a free port, no persistence; stopped by its PID."""

    def __init__(self, tmp: Path):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, 10, "the private redis-server")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # our own PID: drops whatever it held, on purpose
            self.proc.wait(10)
        self.proc = None


class Worker:
    """`celery -A config worker` in its own process group, on its own queue."""

    def __init__(self, *, broker: str, queue: str, sink: Path, lease_seconds: int = 300):
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "EMAIL_BACKEND": "tests.notifications.sink_backend.RecordingBackend",
            "NOTIFY_TEST_SINK": str(sink),
            "NOTIFY_LEASE_SECONDS": str(lease_seconds),
            "CONN_MAX_AGE": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.queue = queue
        self.log = sink / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "config",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a group by our PID
        )
        wait_for(lambda: "ready." in self.log.read_text() or self.proc.poll() is not None, 30, "the worker")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Pool children left behind (their parent killed): same process group, ours.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


@contextlib.contextmanager
def publishing_to(broker: str, queue: str):
    """Point this process's Celery app at `broker`/`queue`, publishing for real (not in-process)."""
    from config.celery import app

    saved = {
        k: app.conf[k]
        for k in ("broker_url", "task_default_queue", "task_always_eager", "broker_transport_options")
    }

    def reset():
        app._pool = None
        app.__dict__.pop("amqp", None)

    app.conf.update(
        broker_url=broker,
        broker_read_url=broker,
        broker_write_url=broker,
        task_default_queue=queue,
        task_always_eager=False,
        broker_transport_options={"max_retries": 0, "socket_connect_timeout": 1, "visibility_timeout": 3600},
    )
    reset()
    outbox._broker_down_until = 0.0
    try:
        yield app
    finally:
        app.conf.update(saved)
        reset()


def forget_queue(broker: str, queue: str) -> None:
    """Leave nothing of this test's queue on the shared broker."""
    import redis

    client = redis.Redis.from_url(broker)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    client.close()


def sent_lines(sink: Path) -> list[str]:
    p = sink / "sent.log"
    return p.read_text().splitlines() if p.exists() else []


@pytest.fixture
def sink(tmp_path):
    d = tmp_path / "sink"
    d.mkdir()
    return d


@pytest.fixture
def shared_broker():
    return os.environ["CELERY_BROKER_URL"]


@pytest.fixture
def fast_sweep(settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "SWEEP_AFTER_SECONDS": 0}


def place_order(client, email: str):
    """POST /api/v1/orders/ as the storefront (in this process); returns the Order."""
    from orders.models import Order
    from tests.factories import SkuFactory, WarehouseFactory, stock

    wh, sku = WarehouseFactory(), SkuFactory()
    stock(wh, sku, 5)
    body = ship_body(sku, email)
    r = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert r.status_code == 201, r.content
    return Order.objects.get(number=r.json()["number"])


# --- The tests ---------------------------------------------------------------------------------


def test_an_order_produces_exactly_one_email(storefront, sink, shared_broker):
    queue = f"itest-{uuid.uuid4().hex[:8]}"
    worker = Worker(broker=shared_broker, queue=queue, sink=sink)
    try:
        worker.start()
        with publishing_to(shared_broker, queue):
            order = place_order(storefront, "one@example.com")
            (n,) = Notification.objects.filter(order=order)
            wait_for(lambda: sent_lines(sink), 20, "the email")
            time.sleep(0.5)  # a duplicate would show up now
            assert sent_lines(sink) == [f"<notification-{n.pk}@oms.example.com>\tone@example.com"]
            n.refresh_from_db()
            assert n.status == NotificationStatus.SENT
            assert n.attempts == 1
            # The same task published again (a redelivery): still one email.
            services.enqueue_delivery(notification_id=n.pk)
            time.sleep(1.0)
            assert len(sent_lines(sink)) == 1
    finally:
        worker.stop()
        forget_queue(shared_broker, queue)


def test_broker_down_the_order_commits_and_the_email_arrives_after(storefront, sink, tmp_path, fast_sweep):
    redis = PrivateRedis(tmp_path)
    queue = f"itest-{uuid.uuid4().hex[:8]}"
    worker = Worker(broker=redis.url, queue=queue, sink=sink)
    try:
        redis.start()
        worker.start()
        redis.stop()  # the broker goes away
        with publishing_to(redis.url, queue):
            started = time.monotonic()
            order = place_order(
                storefront, "down@example.com"
            )  # commits; the on-commit publish fails and is logged
            assert time.monotonic() - started < 10
            (n,) = Notification.objects.filter(order=order)
            assert n.status == NotificationStatus.PENDING
            assert services.notifications_requeue_due() == 0  # the sweeper cannot publish either

            redis.start()  # back, empty: the lost message is not there
            assert services.notifications_requeue_due() == 1  # what beat runs every 15 s
            wait_for(lambda: sent_lines(sink), 25, "the email after the broker came back")
            time.sleep(0.5)
            assert sent_lines(sink) == [f"<notification-{n.pk}@oms.example.com>\tdown@example.com"]
            n.refresh_from_db()
            assert n.status == NotificationStatus.SENT
    finally:
        worker.stop()
        redis.stop()


def test_a_worker_killed_mid_delivery_causes_no_duplicate(storefront, sink, tmp_path, fast_sweep):
    redis = PrivateRedis(tmp_path)
    queue = f"itest-{uuid.uuid4().hex[:8]}"
    worker = Worker(broker=redis.url, queue=queue, sink=sink, lease_seconds=3)
    try:
        redis.start()
        worker.start()
        with publishing_to(redis.url, queue):
            (sink / "block").write_text("")
            order = place_order(storefront, "killed@example.com")
            (n,) = Notification.objects.filter(order=order)
            # The pool process is inside the send (claimed the row, provider call in flight).
            wait_for(lambda: (sink / "blocked").exists(), 20, "the send to start")
            child = int((sink / "pid").read_text())
            n.refresh_from_db()
            assert n.status == NotificationStatus.SENDING
            assert n.attempts == 1
            os.kill(child, signal.SIGKILL)  # the worker process doing the send, by its PID
            (sink / "block").unlink()
            time.sleep(0.5)
            # acks_late + reject_on_worker_lost: the message comes back; the row is still leased, so
            # the redelivered task sends nothing. Nothing was recorded by the killed process.
            assert sent_lines(sink) == []
            n.refresh_from_db()
            assert n.status == NotificationStatus.SENDING

            # After the lease the sweeper re-publishes it; the replacement pool process sends it once.
            # (If the redelivery itself arrives after the lease, it sends instead: once, either way.)
            wait_for(
                lambda: (services.notifications_requeue_due(), sent_lines(sink))[1],
                25,
                "the re-send after the lease",
                interval=0.5,
            )
            time.sleep(1.0)
            assert sent_lines(sink) == [f"<notification-{n.pk}@oms.example.com>\tkilled@example.com"]
            n.refresh_from_db()
            assert n.status == NotificationStatus.SENT
            assert n.attempts == 2
            # Late duplicates of the task (the redelivered message, another sweep) change nothing.
            services.enqueue_delivery(notification_id=n.pk)
            assert services.notifications_requeue_due() == 0
            time.sleep(1.0)
            assert len(sent_lines(sink)) == 1
    finally:
        worker.stop()
        redis.stop()
