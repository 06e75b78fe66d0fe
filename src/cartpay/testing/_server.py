"""What the local test servers (localstripe, stripe-mock) share: a subprocess
with a log file in a temporary working directory, stopped on exit."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, NoReturn

from typing_extensions import Self

__all__ = ["ServerProcess"]


class ServerProcess:
    """A server run as a subprocess; ``start()`` is the subclass's, ``stop()``
    and the context manager are shared."""

    port: int
    _startup_timeout: float

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # the server's stdout and stderr
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}(url={self.url!r}, {state})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        raise NotImplementedError

    def _spawn(
        self,
        command: list[str],
        *,
        prefix: str,
        env: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        """Run ``command`` in a new temporary working directory, its stdout and
        stderr appended to ``server.log`` there (a file, not a pipe nobody drains;
        read through another handle, so reading never moves where it writes).
        ``env``: the environment, given the working directory."""
        self._workdir = tempfile.TemporaryDirectory(prefix=prefix)
        self._log = open(os.path.join(self._workdir.name, "server.log"), "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            command,
            cwd=self._workdir.name,
            env=None if env is None else env(self._workdir.name),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _ready(self) -> bool:
        """Whether the started server answers (the subclass's check)."""
        raise NotImplementedError

    def _give_up(self, why: str) -> NoReturn:
        """Stop the server and raise the subclass's error with ``why`` and its output."""
        raise NotImplementedError

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                self._give_up("it exited at start-up")
            if self._ready():
                return
            if time.monotonic() > deadline:
                self._give_up(f"it did not answer within {self._startup_timeout:.0f} s")
            time.sleep(0.02)

    def _raw_output(self) -> bytes:
        """What the server printed so far."""
        if self._log is None:
            return b""
        with open(self._log.name, "rb") as log:
            return log.read()

    def stop(self) -> None:
        """Terminate the server (kill it after 5 s), reap it, and remove its working
        directory."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
