"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

Command-line options (-w, -b, ...) override what is set here.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: each request holds one process. One more than the cores: a request spends part of
# its time waiting for PostgreSQL, and the extra worker uses that time (on 2 cores, 3 workers beat
# 2 and 4 for both the order flash sale and a one-read endpoint: docs/benchmarks.md).
workers = int(os.environ.get("GUNICORN_WORKERS", str((os.cpu_count() or 1) + 1)))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
backlog = 2048
# The longest request line the API's query parameters allow: a `?sku=` list of 2,000 characters
# whose separators are percent-encoded (3 bytes each) is up to ~6 kB; gunicorn's default (4,094)
# answered such a valid list with an HTML 414. 8,190 is gunicorn's maximum and a common proxy limit.
limit_request_line = 8190
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))  # 0: workers are not recycled
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None


def post_worker_init(worker):
    """Everything loaded so far (Django, DRF, the apps, the URL conf) lives as long as the worker:
    move it out of the garbage collector's reach. A full (generation 2) collection then scans only
    what requests allocate, instead of every object of the framework: without this, the occasional
    full collection is a pause of tens of milliseconds, which is what sets the p99 of a read that
    builds a few hundred objects per request."""
    from django.urls import get_resolver

    from config.celery import app

    get_resolver()  # build the URL resolver before freezing, so it is frozen too
    app.connection_for_write()  # import the broker's transport now, not on the first order's commit
    gc.freeze()
