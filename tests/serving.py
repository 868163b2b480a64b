"""A real `gantx serve` in a subprocess, on a free loopback port, for tests that talk to it over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

CLI = "from gantx.__main__ import main; main()"  # what the console script runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gantx_process(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`gantx ARGS...` with its output in `log`; Ctrl-C (SIGINT) reaches it even where the test runner ignores it."""
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


class Server:
    """`gantx serve ARGS... --port FREE -p cpu`; `url` is where it listens."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = gantx_process(["serve", "--port", str(self.port), "-p", "cpu", *args], log, env)

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gantx serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"gantx serve not ready after {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (kill -9 if it hangs: then the test fails on the code)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"gantx serve did not stop within {timeout} s:\n{self.output()}") from None

    def metric(self, name: str, headers: dict[str, str] | None = None, **labels: str) -> float:
        """One sample of /metrics, parsed by prometheus_client's own parser; 0 when it is not there yet."""
        text = httpx.get(f"{self.url}/metrics", headers=headers).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                    return sample.value
        return 0.0

    def wait_for_metric(self, name: str, value: float, timeout: float = 20.0, **labels: str) -> None:
        deadline = time.monotonic() + timeout
        while self.metric(name, **labels) != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}{labels} never reached {value}:\n{self.output()}")
            time.sleep(0.05)


@contextlib.contextmanager
def serving(log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A ready server for the block; stopped (SIGTERM) after it, whatever happens."""
    server = Server(log, list(args), env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
