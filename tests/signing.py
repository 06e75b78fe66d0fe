"""Signing webhook bodies as Stripe does, and a store that counts its units of
work: the helpers the webhook tests share.

The signature is computed here from Stripe's scheme (HMAC-SHA256 of
``"{timestamp}.{body}"`` with the endpoint secret, sent as ``t=…,v1=…``), not by
cartpay's code, so a test signs independently of what it checks."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Protocol

from cartpay.stores.memory import MemoryStore


def mac(payload: bytes, timestamp: int | str, secret: str) -> str:
    """The hex ``v1`` signature of ``payload`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (now, unless ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={mac(payload, ts, secret)}"


class Signer(Protocol):
    def __call__(self, payload: bytes, secret: str = ..., timestamp: int | None = None) -> str: ...


def signer(default_secret: str) -> Signer:
    """:func:`sign` with a test module's own secret as the default."""

    def sign_with(
        payload: bytes, secret: str = default_secret, timestamp: int | None = None
    ) -> str:
        return sign(payload, secret, timestamp)

    return sign_with


class CountingStore(MemoryStore):
    """A MemoryStore that counts its units of work (nothing may be read or
    written for a refused delivery; a re-delivery reads once)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = self.transactions = 0

    def read(self) -> Any:
        self.reads += 1
        return super().read()

    def transaction(self) -> Any:
        self.transactions += 1
        return super().transaction()
