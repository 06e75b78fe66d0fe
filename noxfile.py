"""Named tasks for people and CI. ``python3 -m nox`` runs lint, typecheck and tests.

The ``tests`` session starts a throwaway PostgreSQL cluster (``.ci/postgres-up``)
when ``CARTPAY_TEST_POSTGRES_DSN`` is unset and it can; localstripe, and stripe-mock
when ``CARTPAY_STRIPE_MOCK`` names its binary, are started by the pytest fixtures.
"""

from __future__ import annotations

import os
import subprocess

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.17,<0.18")  # formatting differs between minors
    paths = [
        p for p in ("src", "tests", "benchmarks", "examples", "noxfile.py") if os.path.exists(p)
    ]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src and tests."""
    session.install("-e", ".[test]", "mypy>=1.10", "nox")
    session.run("mypy", "--strict")


def _postgres_dsn(session: nox.Session) -> dict[str, str]:
    if os.environ.get("CARTPAY_TEST_POSTGRES_DSN"):
        return {}
    try:
        out = subprocess.run(
            ["bash", ".ci/postgres-up"], capture_output=True, text=True, check=True, timeout=600
        )
    except (OSError, subprocess.SubprocessError) as exc:
        session.warn(f"no PostgreSQL cluster ({exc}); the PostgreSQL tests will be skipped")
        return {}
    name, _, value = out.stdout.strip().splitlines()[-1].partition("=")
    session.log(f"started a throwaway PostgreSQL cluster: {value}")
    return {name: value}


@nox.session
def tests(session: nox.Session) -> None:
    """The whole pytest suite: unit, contract, integration, stores, property."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env=_postgres_dsn(session))


@nox.session
def property(session: nox.Session) -> None:
    """The stateful property suite with the thorough profile (long run)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/property",
        "--hypothesis-profile=thorough",
        *session.posargs,
        env=_postgres_dsn(session),
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The demo flow against a local Stripe-compatible server (localstripe)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "cartpay", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against the raw stripe SDK on the same server."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/run.py", *session.posargs)
