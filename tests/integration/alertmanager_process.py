"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager) on loopback, for one test module.

Each module runs its own with its own flags, data directory and port (``port_base`` plus
TEST_PORT_OFFSET), and it is stopped by its PID, never by name.
"""
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

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class Alertmanager:
    def __init__(self, config: dict, home: Path, port_base: int, log: Path) -> None:
        self.config_file = home / "alertmanager.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.home, self.log = home, log
        self.url = f"http://127.0.0.1:{port_base + int(os.environ.get('TEST_PORT_OFFSET', '0'))}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [ALERTMANAGER, f"--config.file={self.config_file}", f"--storage.path={self.home / 'data'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}", "--cluster.listen-address=",
                 "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, f"alertmanager exited: see {self.log}"
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout=30, what="alertmanager to be ready")

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
def running(config: dict, home: Path, port_base: int, log: Path) -> Iterator[Alertmanager]:
    manager = Alertmanager(config, home, port_base, log)
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()
