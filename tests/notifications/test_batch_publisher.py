"""On-commit publishing: at once in eager mode, else batched by the per-process `_BatchPublisher` thread.

The publish functions (`enqueue_delivery`, `enqueue_deliveries`, `publish_task`) are the broker
boundary and are replaced by recorders; the batching around them is what is under test.
"""

import os
import threading
import time

import pytest
from django.core import mail

from notifications.models import Notification, NotificationStatus
from notifications.services import PUBLISH_CHUNK, notification_enqueue, outbox
from notifications.services.outbox import _BatchPublisher, _enqueue_committed

LINGER = 0.05


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Recorder:
    """Stands in for enqueue_delivery / enqueue_deliveries; records (kind, ids) per call."""

    def __init__(self):
        self.calls = []
        self.fail_next = 0
        self._lock = threading.Lock()

    def _record(self, kind, ids):
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("broker down")
            self.calls.append((kind, ids))
        return True

    def one(self, *, notification_id):
        return self._record("one", [notification_id])

    def many(self, *, notification_ids):
        return self._record("many", list(notification_ids))

    @property
    def ids(self):
        return [i for _, ids in self.calls for i in ids]


@pytest.fixture
def linger(settings):
    def set_linger(seconds):
        settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "PUBLISH_LINGER_SECONDS": seconds}

    set_linger(LINGER)
    return set_linger


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(outbox, "enqueue_delivery", rec.one)
    monkeypatch.setattr(outbox, "enqueue_deliveries", rec.many)
    return rec


@pytest.fixture
def publisher():
    return _BatchPublisher()


def _publisher_threads():
    return [t for t in threading.enumerate() if t.name == "notifications-publisher" and t.is_alive()]


def test_puts_within_the_linger_become_one_batch_in_order(linger, recorder, publisher):
    linger(0.3)
    publisher.put([1])
    publisher.put([2, 3])
    publisher.put([4])
    assert wait_for(lambda: recorder.calls)
    time.sleep(0.05)  # nothing else follows
    assert recorder.calls == [("many", [1, 2, 3, 4])]


def test_a_single_id_is_published_as_the_single_row_task(linger, recorder, publisher):
    publisher.put([7])
    assert wait_for(lambda: recorder.calls)
    assert recorder.calls == [("one", [7])]


def test_one_put_of_several_ids_is_one_batch(linger, recorder, publisher):
    publisher.put([7, 8])
    assert wait_for(lambda: recorder.calls)
    assert recorder.calls == [("many", [7, 8])]


def test_puts_after_the_linger_are_a_new_batch(linger, recorder, publisher):
    publisher.put([1, 2])
    assert wait_for(lambda: len(recorder.calls) == 1)
    publisher.put([3])
    assert wait_for(lambda: len(recorder.calls) == 2)
    assert recorder.calls == [("many", [1, 2]), ("one", [3])]


def test_a_batch_stops_gathering_at_publish_chunk(linger, recorder, publisher):
    linger(0.3)
    half = PUBLISH_CHUNK // 2 + 10
    chunks = [list(range(n * half, (n + 1) * half)) for n in range(3)]
    for ids in chunks:
        publisher.put(ids)
    assert wait_for(lambda: len(recorder.ids) == 3 * half)
    assert recorder.calls == [("many", chunks[0] + chunks[1]), ("many", chunks[2])]


def test_more_than_publish_chunk_ids_go_out_as_tasks_of_at_most_publish_chunk(linger, monkeypatch, publisher):
    published = []
    monkeypatch.setattr(
        outbox, "publish_task", lambda task, **kwargs: published.append((task.name, kwargs)) or True
    )
    ids = list(range(1, 2 * PUBLISH_CHUNK + 51))
    publisher.put(ids[:150])
    publisher.put(ids[150:])
    assert wait_for(lambda: sum(len(kw["notification_ids"]) for _, kw in published) == len(ids))
    assert {name for name, _ in published} == {"notifications.tasks.deliver_notifications"}
    sizes = [len(kw["notification_ids"]) for _, kw in published]
    assert max(sizes) <= PUBLISH_CHUNK
    assert [i for _, kw in published for i in kw["notification_ids"]] == ids


def test_a_failing_publish_does_not_kill_the_thread(linger, recorder, publisher, caplog):
    recorder.fail_next = 1
    publisher.put([1, 2])
    assert wait_for(lambda: "batch publish of 2 notifications failed" in caplog.text)
    publisher.put([3])
    assert wait_for(lambda: recorder.calls)
    assert recorder.calls == [("one", [3])]


def test_one_thread_serves_every_put_in_a_process(linger, recorder, publisher):
    before = len(_publisher_threads())
    publisher.put([1])
    assert wait_for(lambda: recorder.calls)
    publisher.put([2])
    assert wait_for(lambda: len(recorder.calls) == 2)
    assert len(_publisher_threads()) == before + 1


class _ForkedOs:
    """The os module as a forked child sees it: another pid."""

    def __init__(self, pid):
        self._pid = pid

    def getpid(self):
        return self._pid

    def __getattr__(self, name):
        return getattr(os, name)


def test_after_a_fork_a_new_thread_publishes(linger, recorder, publisher, monkeypatch):
    before = len(_publisher_threads())
    publisher.put([1])
    assert wait_for(lambda: recorder.calls == [("one", [1])])
    assert len(_publisher_threads()) == before + 1
    monkeypatch.setattr(outbox, "os", _ForkedOs(os.getpid() + 100_000))
    publisher.put([2, 3])
    assert wait_for(lambda: len(recorder.calls) == 2)
    assert recorder.calls[1] == ("many", [2, 3])
    assert len(_publisher_threads()) == before + 2
    publisher.put([4])  # same (simulated) process: no third thread
    assert wait_for(lambda: len(recorder.calls) == 3)
    assert len(_publisher_threads()) == before + 2


# --- _enqueue_committed: which way the ids go ------------------------------------------------


def test_in_eager_mode_ids_are_published_at_once_one_by_one(settings, linger, recorder, monkeypatch):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    batcher = _BatchPublisher()
    monkeypatch.setattr(outbox, "_publisher", batcher)
    _enqueue_committed(notification_ids=[5, 6])
    assert recorder.calls == [("one", [5]), ("one", [6])]  # before returning
    assert batcher._pid is None  # the batching thread was never started


def test_with_no_linger_ids_are_published_at_once(settings, linger, recorder, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    linger(0)
    batcher = _BatchPublisher()
    monkeypatch.setattr(outbox, "_publisher", batcher)
    _enqueue_committed(notification_ids=[5, 6])
    assert recorder.calls == [("one", [5]), ("one", [6])]
    assert batcher._pid is None


def test_with_a_broker_and_a_linger_ids_go_to_the_batching_thread(settings, linger, recorder, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(outbox, "_publisher", _BatchPublisher())
    _enqueue_committed(notification_ids=[5, 6])
    _enqueue_committed(notification_ids=[7])
    assert wait_for(lambda: len(recorder.ids) == 3)
    assert recorder.calls == [("many", [5, 6, 7])]


@pytest.mark.django_db
def test_in_eager_mode_a_committed_notification_is_delivered_before_commit_returns(
    customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (n,) = notification_enqueue(
            event="refund_issued", customer=customer, context={"amount": "10.00"}, dedupe_key="refund:1"
        )
        assert mail.outbox == []
    n.refresh_from_db()
    assert n.status == NotificationStatus.SENT
    assert len(mail.outbox) == 1
    assert Notification.objects.count() == 1
