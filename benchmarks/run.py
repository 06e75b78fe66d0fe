"""cartpay benchmarks: every figure as a ratio (or a count) with its target.

    python benchmarks/run.py [--quick] [--json PATH] [--only flow,webhooks,scale,footprint,async]

Prints a table, writes it as JSON (default ``benchmarks/results/latest.json``)
and exits 1 if any target is missed. ``--quick`` (under five minutes on two
cores) uses fewer rounds, 1k/100k/300k stored orders instead of 1k/100k/1M and
20k webhooks instead of 100k for the memory figure; the table says so.
PostgreSQL figures are added when ``CARTPAY_TEST_POSTGRES_DSN`` is set.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import Row  # noqa: E402

SECTIONS = ("flow", "webhooks", "scale", "footprint", "async", "processes")


def _runner(name: str) -> Callable[..., list[Row]]:
    if name == "flow":
        import bench_flow

        return bench_flow.run
    if name == "webhooks":
        import bench_webhooks

        return bench_webhooks.run
    if name == "scale":
        import bench_scale

        return bench_scale.run
    if name == "async":
        import bench_async

        return bench_async.run
    if name == "processes":
        import bench_processes

        return bench_processes.run
    import bench_footprint

    return bench_footprint.run


def _format_value(row: Row) -> str:
    value = f"{row.value:,.3f}".rstrip("0").rstrip(".") if row.value % 1 else f"{row.value:,.0f}"
    return f"{value} {row.unit}".strip()


def print_table(rows: list[Row]) -> None:
    width = max(len(r.figure) for r in rows) + 2
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            print(f"\n{section}")
        verdict = {True: "PASS", False: "FAIL", None: "-"}[row.passed]
        target = str(row.target) if row.target is not None else ""
        print(f"  {row.figure:<{width}} {_format_value(row):>18}  {target:<9} {verdict}")
        if row.detail:
            print(f"  {'':<{width}}   {row.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and rows (< 5 min)")
    parser.add_argument(
        "--json", type=Path, default=HERE / "results" / "latest.json", help="where to write"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")

    started = time.perf_counter()
    print(
        f"cartpay benchmarks ({'quick' if args.quick else 'full'}) on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    rows: list[Row] = []
    for name in SECTIONS:
        if name in only:
            t0 = time.perf_counter()
            rows.extend(_runner(name)(quick=args.quick))
            print(f"  … {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - started

    print_table(rows)
    failed = [r for r in rows if r.passed is False]
    print(
        f"\n{len(rows)} figures, {sum(r.passed is True for r in rows)} targets met, "
        f"{len(failed)} missed; {elapsed:.0f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": round(elapsed, 1),
        "passed": not failed,
        "rows": [r.as_json() for r in rows],
    }
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {args.json}")
    for row in failed:
        print(f"MISSED: {row.section} / {row.figure}: {_format_value(row)} (target {row.target})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
