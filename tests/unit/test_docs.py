"""The docs site's pages: every page is in the nav, every Python block runs, and
the generated tables match the code they come from."""

from __future__ import annotations

import doctest
import logging
import re
from pathlib import Path

import pytest

import cartpay
from cartpay import _errors, _json, _logs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))

#: A fenced Python block, and the comment before it that may say how to run it:
#: ``<!-- not run: why -->`` skips it; ``<!-- run: code -->`` after a block runs
#: ``code`` in the page's namespace (e.g. calls a test function the block defines).
_BLOCK = re.compile(r"(?:<!-- not run: (?P<skip>[^>]*) -->\s*)?```python\n(?P<code>.*?)```", re.S)
_RUN = re.compile(r"<!-- run: (?P<code>.*?) -->")


def test_every_page_is_in_the_nav() -> None:
    nav = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert nav == set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_of_the_page_runs(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    logger = logging.getLogger("cartpay")  # a page may configure it (logging.md)
    level, handlers = logger.level, list(logger.handlers)
    try:
        _run_page(page, text)
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)  # (also clears the children's cached levels)


def _run_page(page: str, text: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs.{page}"}
    ran = 0
    for block in _BLOCK.finditer(text):
        if block.group("skip"):
            continue
        exec(compile(block.group("code"), f"docs/{page}", "exec"), namespace)  # noqa: S102
        ran += 1
    for extra in _RUN.finditer(text):
        exec(compile(extra.group("code"), f"docs/{page} (run comment)", "exec"), namespace)  # noqa: S102
    if page in ("tutorial.md",) or page.startswith("howto/"):
        assert ran, f"docs/{page} shows no code that runs"


def test_the_error_table_is_the_librarys() -> None:
    text = (DOCS / "howto" / "errors.md").read_text(encoding="utf-8")
    assert _errors.render_http_table() in text


def test_the_logging_page_lists_every_extra_key() -> None:
    text = (DOCS / "howto" / "logging.md").read_text(encoding="utf-8")
    for key in _logs.KEYS:
        assert f"| `{key}` |" in text


def test_every_public_name_is_in_the_reference() -> None:
    text = (DOCS / "reference.md").read_text(encoding="utf-8")
    internal = {"Currency", "IntentChanges", "IntentParams", "PendingOperation"}
    for name in cartpay.__all__:
        if name.endswith("Error") or name in internal:
            continue  # the errors module is rendered whole; the rest are internal records
        assert name in text, name
    assert "::: cartpay._errors" in text


@pytest.mark.parametrize("module", [_json, _errors])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted and not result.failed


def test_the_cli_help_lists_every_command_in_plain_text() -> None:
    from cartpay.__main__ import COMMANDS, build_parser

    text = build_parser().format_help()
    for command in COMMANDS:
        assert f"  {command}" in text
    assert "``" not in text and ":class:" not in text and ":meth:" not in text
