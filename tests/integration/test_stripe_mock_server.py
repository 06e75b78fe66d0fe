"""StripeMock, the process the ``stripe_mock_server`` fixture runs: it starts on
free ports, answers once ``start`` returns, leaves no process behind, and says
what went wrong when it cannot start."""

from __future__ import annotations

import os
import socket
import stat
import urllib.request
from pathlib import Path

import pytest

from cartpay.testing import StripeMock, StripeMockError
from cartpay.testing._stripe_mock import operation_of, spec_gaps


def _answers(url: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 - a local http URL
        f"{url}/v1/payment_intents/pi_1", headers={"Authorization": "Bearer sk_test_1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_second_server_starts_on_other_ports_and_leaves_nothing_behind(
    stripe_mock_server: StripeMock,
) -> None:
    with StripeMock(stripe_mock_server.binary) as other:
        pid, port, running = other.pid, other.port, other.running
        assert running and pid is not None
        assert port not in (0, stripe_mock_server.port)
        assert _answers(other.url)
    assert (other.running, other.pid) == (False, None)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped: no zombie either
    assert _refuses_connections(port)
    assert _answers(stripe_mock_server.url)  # the session's server is untouched


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StripeMockError, match="not an executable file"):
        StripeMock(tmp_path / "stripe-mock").start()


def test_a_binary_that_exits_at_once_shows_its_output(tmp_path: Path) -> None:
    script = tmp_path / "stripe-mock"
    script.write_text("#!/bin/sh\necho 'flag provided but not defined' >&2\nexit 2\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    server = StripeMock(script, startup_timeout=5)
    with pytest.raises(StripeMockError, match="exited at start-up") as caught:
        server.start()
    assert "flag provided but not defined" in str(caught.value)
    assert not server.running


def test_spec_gaps_name_the_entries_a_request_hits() -> None:
    assert operation_of("POST", "/v1/payment_intents") == "create"
    assert operation_of("POST", "/v1/payment_intents/pi_1") == "update"
    assert operation_of("POST", "/v1/payment_intents/pi_1/confirm") == "confirm"
    assert operation_of("POST", "/v1/refunds") == "refund"
    assert operation_of("GET", "/v1/payment_intents/pi_1") is None
    form = {
        "amount": ["1000"],
        "capture_method": ["automatic_async"],
        "allowed_payment_method_types[0]": ["card"],
        "allowed_payment_method_types[1]": ["link"],
    }
    assert spec_gaps("POST", "/v1/payment_intents", form) == [
        "create:capture_method=automatic_async",
        "create:allowed_payment_method_types",
    ]
    assert spec_gaps("POST", "/v1/payment_intents", {"capture_method": ["manual"]}) == []
    assert spec_gaps("POST", "/v1/payment_intents/pi_1", {"capture_method": ["manual"]}) == [
        "update:capture_method"
    ]
