"""Named tasks for people and CI. ``python3 -m nox`` runs lint, typecheck, tests and docs.

The ``tests`` session starts a throwaway PostgreSQL cluster (``.ci/postgres-up``)
when ``CARTPAY_TEST_POSTGRES_DSN`` is unset and it can, and stops it and removes
its directory afterwards (``.ci/postgres-down``), also on failure or interrupt;
localstripe, and stripe-mock when ``CARTPAY_STRIPE_MOCK`` names its binary, are
started and stopped by the pytest fixtures themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


#: What the tests install besides the package: the framework extras, and for the
#: Flask example, FastAPI's TestClient (httpx2, which Starlette 1.x asks for), the
#: example shop's server and the browser test's driver bindings (the browser itself
#: is Debian's chromium and chromium-driver: .ci/run installs them).
TEST_INSTALL = (
    "-e",
    ".[test,fastapi,django]",
    "flask>=3",
    # Starlette's TestClient: httpx2 (Pydantic's maintained httpx, which Starlette
    # 1.x asks for) where it installs, httpx before Python 3.11.
    "httpx2; python_version >= '3.11'",
    "httpx; python_version < '3.11'",
    "uvicorn>=0.29",
    "selenium>=4.20",
)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.17,<0.18")  # formatting differs between minors
    paths = [
        p
        for p in ("src", "tests", "benchmarks", "examples", "noxfile.py", "dev", ".ci/leftovers")
        if os.path.exists(p)
    ]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src and tests."""
    session.install(*TEST_INSTALL, "mypy>=1.10", "nox", "django-stubs")
    session.run("mypy", "--strict")
    session.run("mypy", "--strict", ".ci/leftovers")  # a second __main__: checked on its own


# After an interrupt, time for pytest to tear its fixtures down (localstripe)
# before nox sends SIGTERM (which tests/conftest.py also turns into a teardown).
_INTERRUPT_TIMEOUT, _TERMINATE_TIMEOUT = 5.0, 15.0


@contextmanager
def _postgres(session: nox.Session) -> Iterator[dict[str, str]]:
    """The environment for pytest: a throwaway PostgreSQL cluster's DSN, unless
    ``CARTPAY_TEST_POSTGRES_DSN`` is set or no cluster can be started.

    The cluster is stopped and its directory removed when the block ends, also on
    a failure, Ctrl-C or SIGTERM (made a KeyboardInterrupt here, so nox stops
    pytest and this cleanup runs).
    """
    if os.environ.get("CARTPAY_TEST_POSTGRES_DSN"):
        yield {}
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="cartpay-nox-") as state:
        dir_file = os.path.join(state, "cluster")
        try:
            try:
                out = subprocess.run(
                    ["bash", ".ci/postgres-up", "--dir-file", dir_file],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                session.warn(f"no PostgreSQL cluster ({exc}); the PostgreSQL tests will be skipped")
                yield {}
                return
            name, _, value = out.stdout.strip().splitlines()[-1].partition("=")
            session.log(f"started a throwaway PostgreSQL cluster: {value}")
            yield {name: value}
        finally:
            signal.signal(signal.SIGTERM, previous)
            if os.path.exists(dir_file):  # written before the server starts
                with open(dir_file) as f:
                    cluster = f.read().strip()
                subprocess.run(["bash", ".ci/postgres-down", cluster], check=False, timeout=120)
                session.log(f"stopped the PostgreSQL cluster and removed {cluster}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole pytest suite: unit, contract, integration, stores, web, property."""
    session.install(*TEST_INSTALL)
    with _postgres(session) as env:
        session.run(
            "pytest",
            *session.posargs,
            env=env,
            interrupt_timeout=_INTERRUPT_TIMEOUT,
            terminate_timeout=_TERMINATE_TIMEOUT,
        )


@nox.session
def property(session: nox.Session) -> None:
    """The stateful property suite with the thorough profile (long run)."""
    session.install("-e", ".[test]")
    with _postgres(session) as env:
        session.run(
            "pytest",
            "tests/property",
            "--hypothesis-profile=thorough",
            *session.posargs,
            env=env,
            interrupt_timeout=_INTERRUPT_TIMEOUT,
            terminate_timeout=_TERMINATE_TIMEOUT,
        )


@nox.session
def demo(session: nox.Session) -> None:
    """The demo flow against a local Stripe-compatible server (localstripe)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "cartpay",
        "demo",
        *session.posargs,
        interrupt_timeout=_INTERRUPT_TIMEOUT,
        terminate_timeout=_TERMINATE_TIMEOUT,
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site (mkdocs.yml) built strict: any warning fails. Site in .nox/site."""
    session.install("-e", ".[docs]")
    # (MkDocs' notice about its 2.0 plans is no warning about these docs)
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def build(session: nox.Session) -> None:
    """The sdist and wheel (``python -m build``), checked by ``twine check --strict``.
    Not a default session: it fetches the build backend; run it before a release."""
    session.install("build>=1.2", "twine>=5")
    with tempfile.TemporaryDirectory(prefix="cartpay-dist-") as out:
        session.run("python", "-m", "build", "--outdir", out)
        built = sorted(os.path.join(out, name) for name in os.listdir(out))
        session.run("twine", "check", "--strict", *built)
        session.log("built: " + ", ".join(os.path.basename(b) for b in built))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against the raw stripe SDK on the same server."""
    session.install("-e", ".[test]")
    session.run("python", "benchmarks/run.py", *session.posargs)
