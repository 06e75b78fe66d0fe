"""Refunds under the host's idempotency key, and refunds asked again by the same
call (docs/money.md, "Unknown outcomes"), with a bug planted in each; the state
machine (RefundKeysMachine) must see it:

- a refund asked again by the same call is not sent under its own key;
- a refund under the host's key gets a Stripe key per claim, not one of its own;
- a refund's key moves on after a server error;
- a call's key is not looked up (a repeat sends a request).

Each needs one rare interleaving (a request still on its way, and another
call or another server error between), which a random search meets only after
several searches, and which one varies between processes; so each is shown by
driving the machine's own rules through that interleaving, with no random
faults: the machine passes it as the code is, and its checks fail with the
plant in. (A plant that drops the key when another call settles a lost
refund is not among them: the Stripe key derived from the host's key answers
the retry with that same refund, so no money moves twice; the tag itself is
checked in tests/unit/test_refund_keys.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from attrs import evolve

from cartpay import CartpayError, GatewayError, _claims, _decisions
from cartpay._models import Order, PendingOperation

from .test_stateful import RefundKeysMachine, fake_backend


def drive(tmp_path: Path, steps: Callable[[RefundKeysMachine, str], None]) -> str | None:
    """Run RefundKeysMachine's own rules: a paid order, then ``steps`` (with
    no random faults and no crashes), then its end-of-example checks; returns
    the failure its checks raise, or ``None``."""
    backend = replace(
        fake_backend("memory", tmp_path),
        label="planted/driven",
        failing_refunds=False,
        rate=0.0,
        crash_mid_call=False,
        features=frozenset({"refund_keys"}),
    )
    machine = RefundKeysMachine(backend)
    machine.start(seed=0)
    order = machine.shop("usd", False, [("tee", 2500, 2)], [], False, "succeeds", "server")
    assert isinstance(order, str), order
    try:
        steps(machine, order)
        machine.teardown()
    except AssertionError as caught:
        return str(caught)
    return None


def sees(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    plant: Callable[[], None],
    steps: Callable[[RefundKeysMachine, str], None],
) -> str:
    """The machine passes ``steps`` as the code is, and fails them with the
    plant in; returns what its checks said."""
    clean = drive(tmp_path / "clean", steps)
    assert clean is None, f"the interleaving fails without the plant: {clean}"
    plant()
    planted = drive(tmp_path / "planted", steps)
    assert planted is not None, "the machine did not see the plant"
    monkeypatch.undo()
    return planted


def test_the_machine_sees_a_keyed_refund_sent_under_a_key_of_the_claim(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund under the host's key gets a Stripe key per claim.
    Its request is late, another call (a refund of another amount) drops the
    claim, and the retry with the host's key goes out under a new Stripe key:
    both land."""
    keyed = _decisions.operation_key

    def per_claim(order: Order, asked: PendingOperation) -> str:
        return keyed(order, evolve(asked, request=None))

    def steps(machine: RefundKeysMachine, order: str) -> None:
        machine.keyed_refund(order, 20, "refund-a", "late", "another amount")

    def plant() -> None:
        monkeypatch.setattr(_decisions, "operation_key", per_claim)

    assert "made the refunds" in sees(monkeypatch, tmp_path, plant, steps)


def test_the_machine_sees_a_refund_key_that_moves_on_after_a_server_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund's key moves on after a server error, as other claims'
    do. Without a host key: the same call's request under the moved key is late,
    a second server error moves it again, the same call refunds under that one,
    and the late request lands too."""

    def always(pending: PendingOperation, exc: CartpayError) -> bool:
        return isinstance(exc, GatewayError) and (exc.http_status or 0) >= 500

    def plant() -> None:
        monkeypatch.setattr(_claims, "moves_key", always)

    def steps(machine: RefundKeysMachine, order: str) -> None:
        assert machine.fake is not None
        gateway = machine.gateway
        intent_id = machine.order_intent(order)
        assert intent_id is not None

        def refund() -> Order:
            return machine.payments.refund_order(order, 300)

        gateway.error_then_late = "create_refund"  # a 5xx, then its retry is late
        machine.give_up = True
        machine.call("refund_order", refund)
        machine.give_up = False
        gateway.error_then_late = "create_refund"  # the same call: a 5xx, late, sent
        machine.call("refund_order", refund)
        gateway.land()
        made = [r.amount for r in machine.fake.refunds(intent_id)]
        assert made.count(300) <= 1, f"refund_order({order}, 300) made the refunds {made}"

    assert "made the refunds" in sees(monkeypatch, tmp_path, plant, steps)


def test_the_machine_sees_a_key_that_is_not_looked_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a call's key is not looked up on the order. A repeat of an
    answered keyed refund is then sent to Stripe (whose replay under the derived
    key gives the same refund: no money moves twice, but a request is made); the
    machine counts the gateway's refund calls around a repeat."""

    def plant() -> None:
        monkeypatch.setattr(_decisions, "keyed_refund", lambda *_: None)

    def steps(machine: RefundKeysMachine, order: str) -> None:
        assert machine.fake is not None
        machine.keyed_refund(order, 20, "refund-a", None, "nothing")
        before = machine.fake.count("create_refund")
        machine.keyed_refund(order, 20, "refund-a", None, "nothing")
        after = machine.fake.count("create_refund")
        assert after == before, f"a repeated keyed refund sent {after - before} requests"

    assert "a repeated keyed refund sent" in sees(monkeypatch, tmp_path, plant, steps)


def test_the_machine_sees_a_retry_that_does_not_send_its_refund_again_under_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plant: a refund asked again by the same call is settled from the
    refund list and sent under a new key (without a host key), so its first
    request, still on its way, lands as a second refund."""

    def plant() -> None:
        monkeypatch.setattr(_decisions, "replays", lambda *_: False)

    def steps(machine: RefundKeysMachine, order: str) -> None:
        machine.keyed_refund(order, 20, None, "late", "nothing")

    assert "made the refunds" in sees(monkeypatch, tmp_path, plant, steps)
