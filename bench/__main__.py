"""python -m bench <hot|spread|avail|all> [--quick] [options]

  hot     64 worker processes reserve one unit each of ONE SKU at one store: service layer vs raw SQL.
  spread  the same over 10,000 SKUs (a random SKU per reservation).
  avail   10,000 SKUs x 500 locations (5M stock rows): availability and nearby-with-stock through the
          HTTP API (gunicorn -w 2, 8 concurrent clients) beside the DRF framework floor.
  breakdown  where a service-layer reservation's time goes, step by step (one process, no contention).
  all     hot, spread, avail and breakdown, one after the other (each in its own process).

--quick is a smoke mode: small data, 2 s phases, docs/benchmarks.md left alone (unless --doc).
Databases (PostgreSQL at BENCH_PG, default postgres://postgres@127.0.0.1:5432): oms_bench_perf for
hot/spread, oms_bench_avail (oms_bench_avail_quick with --quick) for avail; created and migrated here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from . import common


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=["hot", "spread", "avail", "breakdown", "all"])
    ap.add_argument("--quick", action="store_true", help="smoke mode: small data, 2 s per phase")
    ap.add_argument("--workers", type=int, help="worker processes (hot/spread; default 64, quick 8)")
    ap.add_argument("--duration", type=float, help="seconds per phase (default 10, quick 2)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (avail)")
    ap.add_argument("--reload", action="store_true", help="avail: reload the 5M-row dataset")
    ap.add_argument("--python-client", action="store_true", help="avail: use the Python client, not wrk")
    doc = ap.add_mutually_exclusive_group()
    doc.add_argument("--doc", dest="doc", action="store_true", default=None, help="update docs/benchmarks.md")
    doc.add_argument("--no-doc", dest="doc", action="store_false", help="do not update docs/benchmarks.md")
    args = ap.parse_args(argv)
    write_doc = (not args.quick) if args.doc is None else args.doc
    duration = args.duration or (2.0 if args.quick else 10.0)

    if args.name == "all":
        rc = 0
        for name in ("hot", "spread", "avail", "breakdown"):
            cmd = [sys.executable, "-m", "bench", name, *(a for a in (argv or sys.argv[1:]) if a != "all")]
            print(f"\n=== {' '.join(cmd[1:])}", flush=True)
            rc |= subprocess.call(cmd, cwd=common.ROOT)
        return rc

    if args.name in ("hot", "spread"):
        common.configure("oms_bench_perf")
        from . import reserve

        workers = args.workers or (8 if args.quick else 64)
        n_skus = 1 if args.name == "hot" else (200 if args.quick else 10_000)
        info = common.machine()
        merged, checks = reserve.run(n_skus=n_skus, workers=workers, duration=duration)
        info["loadavg_after"] = common.loadavg()
        tbl = reserve.render(merged, workers=workers, duration=duration)
        summary, ok = reserve.verdict(merged, checks)
        print(tbl)
        print(summary)
        if write_doc:
            what = "one SKU at one store" if n_skus == 1 else f"{n_skus:,} SKUs at one store (random SKU)"
            body = (
                f"`python -m bench {args.name}{' --quick' if args.quick else ''}`: {workers} worker processes "
                f"reserve 1 unit at a time of {what}, {duration:g} s through "
                f"`inventory.services.stock_reserve` and {duration:g} s as the same transaction in raw "
                "SQL on the same connections (BEGIN; guarded UPDATE; INSERT ledger row; COMMIT), in four "
                f"interleaved phases of {duration / 2:g} s (service, raw, raw, service).\n\n"
                f"{common.machine_md(info)}\n\n{tbl}\n\n{summary}\n"
            )
            title = "1. Hot SKU" if n_skus == 1 else "2. Reservations spread over many SKUs"
            common.update_doc(args.name, body + reserve.DOC_NOTES, title=title)
        return 0 if ok else 1

    if args.name == "breakdown":
        common.configure("oms_bench_perf")
        from . import breakdown

        info = common.machine()
        tbl, out = breakdown.run()
        info["loadavg_after"] = common.loadavg()
        summary = breakdown.summary(out)
        print(tbl)
        print(summary)
        if write_doc:
            body = (
                "`python -m bench breakdown`: one process reserves one unit of one SKU again and again, "
                "each step timed alone (client CPU per call, best of 5 rounds of 200 calls).\n\n"
                f"{common.machine_md(info)}\n\n{tbl}\n\n{summary}\n"
            )
            common.update_doc("breakdown", body, title="Where a service-layer reservation's time goes")
        return 0

    from . import avail

    return avail.main(
        quick=args.quick,
        duration=duration,
        clients=args.clients,
        reload=args.reload,
        python_client=args.python_client,
        write_doc=write_doc,
    )


if __name__ == "__main__":
    sys.exit(main())
