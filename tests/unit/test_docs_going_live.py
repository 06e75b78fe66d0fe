"""docs/going-live.md lists exactly the events cartpay handles, and names the
pinned API version."""

from __future__ import annotations

import re
from pathlib import Path

from cartpay import STRIPE_API_VERSION, WEBHOOK_EVENTS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "going-live.md"


def test_the_event_table_is_the_routers() -> None:
    text = PAGE.read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", text, flags=re.MULTILINE)
    assert tuple(listed) == WEBHOOK_EVENTS


def test_the_page_names_the_pinned_version() -> None:
    assert f"`{STRIPE_API_VERSION}`" in PAGE.read_text(encoding="utf-8")
