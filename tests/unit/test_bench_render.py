"""benchmarks/render.py writes docs/performance.md's table from a run's JSON:
only the block between the markers changes, every ratio names its baseline,
and a doc without the markers is refused (nothing written). No benchmark runs
here: a small report stands in for one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cartpay_bench_render", ROOT / "benchmarks" / "render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load()

REPORT = {
    "when": "2026-12-01T05:00:00+00:00",
    "mode": "quick",
    "command": "python benchmarks/run.py --quick --only flow",
    "postgresql": False,
    "machine": {"cores": 2, "python": "3.11.7", "platform": "Linux-x86_64"},
    "seconds": 61.4,
    "passed": False,
    "rows": [
        {
            "section": "1. checkout flow",
            "figure": "façade / minimal stripe-python, MemoryStore",
            "value": 0.9791,
            "unit": "×",
            "target": "<= 1",
            "passed": True,
            "baseline": "minimal hand-written stripe-python | 5 requests",
        },
        {
            "section": "1. checkout flow",
            "figure": "façade / minimal stripe-python, SQLiteStore",
            "value": 1.149,
            "unit": "×",
            "target": "<= 1.1",
            "passed": False,
            "baseline": "minimal hand-written stripe-python",
        },
        {
            "section": "2. Stripe requests per order",
            "figure": "create_cart",
            "value": 1200,
            "unit": "requests",
            "target": None,
            "passed": None,
            "baseline": None,
        },
    ],
}

DOC = """# Performance

Prose before, with a figure that is not ours: 1.23 ×.

<!-- table:start -->
| old | table |
| --- | --- |
| stale | 0.5 |
<!-- table:end -->

Prose after.
"""


def test_the_block_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps(REPORT), encoding="utf-8")
    doc = tmp_path / "performance.md"
    doc.write_text(DOC, encoding="utf-8")

    render.render(tmp_path / "r.json", doc)

    text = doc.read_text(encoding="utf-8")
    head, _, rest = text.partition("<!-- table:start -->\n")
    block, _, tail = rest.partition("<!-- table:end -->")
    assert head == DOC.partition("<!-- table:start -->")[0]
    assert tail == DOC.partition("<!-- table:end -->")[2]
    assert "stale" not in block
    lines = block.splitlines()
    assert lines[0].startswith("Run: **quick** (`python benchmarks/run.py --quick --only flow`")
    assert "2026-12-01T05:00:00+00:00" in lines[0] and "61 s" in lines[0]
    assert "2 cores" in lines[0] and "1 of 2 targets met" in lines[0]
    assert lines[2] == "| section | figure | value | target | verdict | baseline |"
    assert lines[4] == (
        "| 1. checkout flow | façade / minimal stripe-python, MemoryStore | 0.979 × | ≤ 1 "
        "| met | minimal hand-written stripe-python \\| 5 requests |"
    )
    assert "| 1.149 × | ≤ 1.1 | **missed** | minimal hand-written stripe-python |" in lines[5]
    assert lines[6].endswith("| 1,200 requests | — | shown | — |")

    # Rendering again from the same JSON changes nothing.
    render.render(tmp_path / "r.json", doc)
    assert doc.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    "doc",
    [
        "# Performance\n\nno markers\n",
        "<!-- table:start -->\nonly a start\n",
        "<!-- table:end -->\n<!-- table:start -->\n",
        "<!-- table:start -->\n<!-- table:end -->\n<!-- table:start -->\n<!-- table:end -->\n",
    ],
)
def test_a_doc_without_one_pair_of_markers_is_refused(tmp_path: Path, doc: str) -> None:
    (tmp_path / "r.json").write_text(json.dumps(REPORT), encoding="utf-8")
    path = tmp_path / "performance.md"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(render.MarkerError, match="table:"):
        render.render(tmp_path / "r.json", path)
    assert path.read_text(encoding="utf-8") == doc
    assert render.main(["--json", str(tmp_path / "r.json"), "--doc", str(path)]) == 2


def test_the_project_doc_has_the_markers() -> None:
    doc = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    render.replace_block(doc, "")  # raises when they are missing
