"""A test-only email backend for cross-process tests: the worker records every send in a file.

Directory: $NOTIFY_TEST_SINK.
- `pid`      the PID of the process that is sending (written before anything else)
- `block`    if this file exists, the send waits (after writing `blocked`) until it is removed:
             the test kills the worker while it waits, i.e. in the middle of a delivery
- `sent.log` one line per delivered message: "<Message-ID>\t<to>", appended with O_APPEND
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class RecordingBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sink = Path(os.environ["NOTIFY_TEST_SINK"])
        (sink / "pid").write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        while (sink / "block").exists() and time.monotonic() < deadline:
            (sink / "blocked").write_text(str(os.getpid()))
            time.sleep(0.05)
        fd = os.open(sink / "sent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for msg in email_messages:
                os.write(fd, f"{msg.extra_headers.get('Message-ID', '')}\t{','.join(msg.to)}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(email_messages)
