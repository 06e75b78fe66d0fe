"""Refunds under the host's idempotency key (docs/money.md, "Unknown outcomes"),
with a bug planted in each; the state machine (RefundKeysMachine) must find it,
and shrink it:

- a lost answer settled (by another call, a refund of another amount or a
  cancel, or by the retry itself) records the refund without its key, so the
  identical retry refunds again or answers without the key's refund;
- a call's key is not looked up, so a repeated call refunds again;
- a refund asked again by the same call is not sent under its own key;
- a refund under the host's key gets a Stripe key per claim, not one of its own;
- a refund under the host's key moves to a new Stripe key after a server error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from cartpay import CartpayError, GatewayError, _claims, _decisions, _outcomes
from cartpay._models import Order, PendingOperation

from .planting import find


def test_finds_a_settled_lost_refund_recorded_without_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apply = _outcomes.apply

    def untagged(*args: Any, **kwargs: Any) -> Any:
        """The plant: whoever settles a keyed refund's lost answer drops its key."""
        kwargs["tag"] = None
        return apply(*args, **kwargs)

    monkeypatch.setattr(_outcomes, "apply", untagged)
    # (Which symptom the search meets first varies: the retry's second refund,
    # or a retry that settled its own lost answer and shows no refund under its key.
    # The same call asks Stripe again under its own key, which needs no settling:
    # the plant bites where another call settles, or after a server error moved
    # the key on, which takes a longer example, hence the wider step budget.)
    symptoms = ("made the refunds", "under its key")
    steps = find(tmp_path, "settled-refund-untagged", ["refund_keys"], symptoms, max_steps=16)
    assert any("keyed_refund" in step for step in steps), steps


def test_finds_a_key_that_is_not_looked_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_decisions, "keyed_refund", lambda *_: None)
    symptoms = ("made the refunds", "under its key")
    find(tmp_path, "refund-key-ignored", ["refund_keys"], symptoms)


def test_finds_a_retry_that_does_not_send_its_refund_again_under_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund asked again by the same call is settled from the
    refund list and sent under a new key, so a first request still on its way
    lands as a second refund."""
    monkeypatch.setattr(_decisions, "replays", lambda *_: False)
    find(tmp_path, "refund-not-replayed", ["refund_keys"], ("made the refunds",), max_steps=12)


def test_finds_a_keyed_refund_sent_under_a_key_of_the_claim(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund under the host's key gets a Stripe key per claim (as
    any other operation), so after another call dropped its claim while its
    request was on its way, the retry's refund and the late one both land."""
    keyed = _decisions.operation_key

    def per_claim(order: Order, asked: PendingOperation) -> str:
        return keyed(order, evolve(asked, request=None))

    monkeypatch.setattr(_decisions, "operation_key", per_claim)
    find(tmp_path, "refund-key-per-claim", ["refund_keys"], ("made the refunds",), max_steps=12)


def test_finds_a_keyed_refund_whose_key_moves_on_after_a_server_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund under the host's key moves to a new Stripe key after
    a server error, as other claims do; its retry is sent under that key while
    on its way, another call drops the claim, and the next call with the host's
    key starts again from the derived key: both land."""

    def always(pending: PendingOperation, exc: CartpayError) -> bool:
        return isinstance(exc, GatewayError) and (exc.http_status or 0) >= 500

    monkeypatch.setattr(_claims, "moves_key", always)
    find(tmp_path, "keyed-key-moved", ["refund_keys"], ("made the refunds",), max_steps=12)
