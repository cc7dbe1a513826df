"""Shared plumbing of the benchmarks: databases, the machine description, tables, docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PG_BASE = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# The benchmarks run only against these databases (created here), never the test databases.
BENCH_DATABASES = {"oms_bench_perf", "oms_bench_avail", "oms_bench_avail_quick"}


def configure(database: str) -> str:
    """Point Django at a bench database (created if missing) and set it up. Call before importing models."""
    if database not in BENCH_DATABASES:
        raise SystemExit(f"refusing to benchmark against {database!r}")
    url = f"{PG_BASE}/{database}"
    ensure_database(database)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DEBUG"] = "False"  # DEBUG=True would keep every query in memory
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def loadavg() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def machine() -> dict[str, str]:
    """What the numbers were measured on (needs Django set up, for the PostgreSQL facts)."""
    import django
    import psycopg
    import rest_framework
    from django.db import connection

    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        pg_version = cur.fetchone()[0].split(" on ")[0]
        settings = {}
        for name in ("shared_buffers", "max_connections", "synchronous_commit", "fsync"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or "?",
        "nproc": str(os.cpu_count()),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "kernel": platform.release(),
        "postgresql": pg_version + " (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")",
        "python": platform.python_version(),
        "django": django.get_version(),
        "drf": rest_framework.VERSION,
        "psycopg": psycopg.__version__,
        "loadavg_before": loadavg(),
    }


def machine_md(m: dict[str, str]) -> str:
    lines = [
        f"- Run: {m['date']}, load average before the run {m['loadavg_before']}"
        + (f", after {m['loadavg_after']}" if m.get("loadavg_after") else ""),
        f"- Machine: {m['cpu']}, {m['nproc']} CPUs, {m['ram']} RAM, Linux {m['kernel']}",
        f"- {m['postgresql']}",
        f"- Python {m['python']}, Django {m['django']}, DRF {m['drf']}, psycopg {m['psycopg']}",
    ]
    if m.get("load_generator"):
        lines.append(f"- Load generator: {m['load_generator']}")
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also how the result is printed)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


DOC_HEADER = """# Benchmarks

Produced by `python -m bench <name>` (see `bench/__main__.py`); each section below is rewritten
by its benchmark with the machine it ran on. Every run is bounded in time and sends traffic only to
127.0.0.1. The benchmarks use their own PostgreSQL databases (`oms_bench_perf`, `oms_bench_avail`),
never the test databases.

**Read the ratios, not only the absolute figures.** The machine has 2 cores and is shared with other
engineers running test suites while these benchmarks ran: the load average before and after each run
is recorded in its section. Ratios (service layer / raw SQL, endpoint / framework floor) are measured
in the same run, under the same load, and are the numbers to compare with the targets.

Reference floors measured on this kind of machine: `../shared/research/perf-floors.md` (not in this repo).
"""


def update_doc(name: str, body: str, *, title: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md, leaving the others alone."""
    DOC.parent.mkdir(exist_ok=True)
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"updated {DOC.relative_to(ROOT)} (section {name})", file=sys.stderr)
