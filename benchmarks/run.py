"""cartpay benchmarks: every figure as a ratio (or a count) with its target.

    python benchmarks/run.py [--quick] [--json PATH] [--only flow,webhooks,…] [--write-doc]

Prints a table, writes it as JSON (default ``benchmarks/results/latest.json``:
per row the section, figure, value, unit, target, verdict and the ``baseline``
the figure is measured against) and exits 1 if any target is missed.
``--quick`` (about a minute on two cores without PostgreSQL) uses fewer rounds,
1k/100k/300k stored orders instead of 1k/100k/1M and 20k webhooks instead of
100k for the memory figure; the table says so. PostgreSQL figures are added
when ``CARTPAY_TEST_POSTGRES_DSN`` is set. ``--write-doc`` then rewrites the
generated table in docs/performance.md (``render.py``). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import render  # noqa: E402
from _harness import Row, Target  # noqa: E402

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
    return render.format_value(row.value, row.unit)


def crashed(section: str, exc: BaseException) -> Row:
    """The row of a section that raised: a missed target, so the run fails and
    the table says which section is missing and why."""
    return Row(
        section,
        f"{section}: the section failed ({type(exc).__name__})",
        1,
        "failed",
        Target("==", 0),
        detail=str(exc).splitlines()[0][:200] if str(exc) else "",
    )


def unnamed_baselines(rows: list[Row]) -> list[Row]:
    """Ratio rows (unit ``×``/``x``) that do not say what they are a ratio of."""
    return [r for r in rows if r.unit in ("×", "x") and not r.baseline]


def print_table(rows: list[Row]) -> None:
    width = max(len(r.figure) for r in rows) + 2
    section = baseline = None
    for row in rows:
        if row.section != section:
            section, baseline = row.section, None
            print(f"\n{section}")
        verdict = {True: "PASS", False: "FAIL", None: "-"}[row.passed]
        target = str(row.target) if row.target is not None else ""
        print(f"  {row.figure:<{width}} {_format_value(row):>18}  {target:<9} {verdict}")
        if row.baseline and row.baseline != baseline:  # (said once for a run of rows)
            print(f"  {'':<{width}}   against: {row.baseline}")
        baseline = row.baseline
        if row.detail:
            print(f"  {'':<{width}}   {row.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds and rows (~1 min without PostgreSQL)"
    )
    parser.add_argument(
        "--json", type=Path, default=HERE / "results" / "latest.json", help="where to write"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    parser.add_argument(
        "--write-doc",
        nargs="?",
        type=Path,
        const=render.HERE.parent / "docs" / "performance.md",
        default=None,
        metavar="DOC",
        help="rewrite the generated table in DOC (default docs/performance.md) from the JSON",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    if args.write_doc is not None:
        # Fail before the run, not after it, when the doc cannot take the table.
        try:
            render.replace_block(args.write_doc.read_text(encoding="utf-8"), "")
        except (OSError, render.MarkerError) as exc:
            parser.error(f"--write-doc {args.write_doc}: {exc}")
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    if [s for s in SECTIONS if s in only] != list(SECTIONS):
        command += f" --only {','.join(s for s in SECTIONS if s in only)}"

    started = time.perf_counter()
    print(
        f"cartpay benchmarks ({'quick' if args.quick else 'full'}) on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    rows: list[Row] = []
    for name in SECTIONS:
        if name in only:
            t0 = time.perf_counter()
            try:
                rows.extend(_runner(name)(quick=args.quick))
            except Exception as exc:  # one broken section must not hide the others
                traceback.print_exc()
                rows.append(crashed(name, exc))
            print(f"  … {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - started

    print_table(rows)
    for row in unnamed_baselines(rows):
        print(f"WARNING: {row.section} / {row.figure}: a ratio without a named baseline")
    failed = [r for r in rows if r.passed is False]
    print(
        f"\n{len(rows)} figures, {sum(r.passed is True for r in rows)} targets met, "
        f"{len(failed)} missed; {elapsed:.0f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "command": command,
        "postgresql": bool(os.environ.get("CARTPAY_TEST_POSTGRES_DSN")),
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
    if args.write_doc is not None:
        render.render(args.json, args.write_doc)
        print(f"table in {args.write_doc} rewritten")
    for row in failed:
        print(f"MISSED: {row.section} / {row.figure}: {_format_value(row)} (target {row.target})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
