"""Write docs/performance.md's table from a benchmark run's JSON.

    python benchmarks/render.py [--json benchmarks/results/latest.json] [--doc docs/performance.md]

Rewrites only the block between ``<!-- table:start -->`` and
``<!-- table:end -->`` (a header line naming the run: mode, machine, date,
duration; then one row per figure: section, figure, value, target, verdict,
baseline). Everything outside the markers is left byte for byte. A doc without
exactly one pair of markers, in that order, is an error: nothing is written.
``benchmarks/run.py --write-doc`` calls it after a run, so the figures in the
doc are never copied by hand. Standard library only (its unit test runs without
the benchmarks' dependencies).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
START = "<!-- table:start -->"
END = "<!-- table:end -->"


class MarkerError(ValueError):
    """The doc does not have exactly one ``START`` … ``END`` block."""


def format_value(value: float, unit: str) -> str:
    """``1234`` → ``1,234``; ``0.9431`` → ``0.943``; the unit after a space."""
    text = f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _cell(text: object) -> str:
    """Text safe inside one Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _verdict(passed: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "shown"}[passed]


def header(report: Mapping[str, Any]) -> str:
    """One line naming the run the table comes from."""
    machine = report.get("machine", {})
    rows: Sequence[Mapping[str, Any]] = report["rows"]
    targets = [r for r in rows if r.get("passed") is not None]
    met = sum(r["passed"] is True for r in targets)
    command = report.get("command") or "python benchmarks/run.py"
    postgres = ""
    if "postgresql" in report:
        postgres = "with PostgreSQL" if report["postgresql"] else "without PostgreSQL"
    return (
        f"Run: **{report['mode']}** (`{command}`{', ' + postgres if postgres else ''}), "
        f"{report['when']}, {report['seconds']:.0f} s; machine: "
        f"{machine.get('cores', '?')} cores, Python {machine.get('python', '?')}, "
        f"{machine.get('platform', '?')}. "
        f"{len(rows)} figures, {met} of {len(targets)} targets met."
    )


def table(report: Mapping[str, Any]) -> str:
    """The generated block's content: the header line and the Markdown table."""
    lines = [
        header(report),
        "",
        "| section | figure | value | target | verdict | baseline |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        target = row.get("target") or "—"
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    row["section"],
                    row["figure"],
                    format_value(row["value"], row.get("unit", "")),
                    target.replace("<=", "≤").replace(">=", "≥"),
                    _verdict(row.get("passed")),
                    row.get("baseline") or "—",
                )
            )
            + " |"
        )
    return "\n".join(lines)


def replace_block(doc: str, block: str) -> str:
    """``doc`` with the text between the markers replaced by ``block`` (the
    markers and everything outside them kept as they are)."""
    starts, ends = doc.count(START), doc.count(END)
    if starts != 1 or ends != 1:
        raise MarkerError(
            f"the doc must have exactly one {START} and one {END} "
            f"(found {starts} and {ends}); add them around the generated table"
        )
    head, rest = doc.split(START)
    if END not in rest:
        raise MarkerError(f"{END} comes before {START}")
    _, tail = rest.split(END)
    return f"{head}{START}\n{block}\n{END}{tail}"


def render(json_path: Path, doc_path: Path) -> None:
    """Rewrite ``doc_path``'s block from the report at ``json_path``."""
    report = json.loads(json_path.read_text(encoding="utf-8"))
    doc = doc_path.read_text(encoding="utf-8")
    doc_path.write_text(replace_block(doc, table(report)), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--doc", type=Path, default=HERE.parent / "docs" / "performance.md")
    args = parser.parse_args(argv)
    try:
        render(args.json, args.doc)
    except MarkerError as exc:
        print(f"{args.doc}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.doc}: table rewritten from {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
