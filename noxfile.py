"""Named tasks for people and CI: ``nox`` runs tests, lint and typecheck."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff check and format check on src, tests, benchmarks and examples."""
    session.run("python", "-m", "pip", "install", "-q", "ruff>=0.6", external=True)
    session.run("python", "-m", "ruff", "check", "src", "tests", "noxfile.py", external=True)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src and tests."""
    session.install("-e", ".[test]", "mypy>=1.10", "nox")
    session.run("mypy", "--strict")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole pytest suite (unit, contract, integration, stores, property)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The demo flow against a local Stripe-compatible server (localstripe)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "cartpay", "demo", *session.posargs)
