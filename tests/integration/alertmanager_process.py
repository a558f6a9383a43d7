"""A Prometheus Alertmanager (Debian's prometheus-alertmanager, 0.25) of our own: own flags,
configuration, data directory and loopback port, stopped by its PID. The tests and
`make bench` start theirs with this."""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import httpx
import yaml

from harness import wait_until

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class AlertmanagerProcess:
    def __init__(self, home: Path, port: int, config: dict, log: Path | None = None) -> None:
        self.home, self.port, self.config = home, port, config
        self.log = log or home / "alertmanager.log"
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def version(self) -> str:
        out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=30)
        lines = (out.stdout or out.stderr).splitlines()
        return lines[0] if lines else "unknown"

    def start(self, timeout: float = 30.0) -> str:
        """Start it and wait until it answers /-/ready; its URL."""
        shutil.rmtree(self.home / "data", ignore_errors=True)
        (self.home / "data").mkdir(parents=True)
        config = self.home / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config, sort_keys=False))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [BINARY, f"--config.file={config}", f"--storage.path={self.home / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.proc.returncode}; see {self.log}")
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        try:
            wait_until(ready, timeout=timeout, interval=0.2, what=f"alertmanager to be ready (see {self.log})")
        except AssertionError:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def post(self, labels: dict[str, str], annotations: dict[str, str], starts_at: datetime,
             ends_at: datetime) -> None:
        """Post one alert to Alertmanager's own API (as Prometheus does)."""
        alert = {"labels": labels, "annotations": annotations, "startsAt": starts_at.isoformat(),
                 "endsAt": ends_at.isoformat()}
        response = httpx.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=10)
        assert response.status_code == 200, response.text


@contextmanager
def running(config: dict, home: Path, port_base: int, log: Path) -> Iterator[AlertmanagerProcess]:
    """One for a test: on ``port_base`` plus TEST_PORT_OFFSET, stopped by its PID on the way out."""
    manager = AlertmanagerProcess(home, port_base + int(os.environ.get("TEST_PORT_OFFSET", "0")), config, log)
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()
