"""A real Prometheus (Debian's binary) of a test's own: the repository's scrape configuration
and rules (services/workers.py ``prometheus_config``, as make up writes it), pointed at the test
ports and scraping every second, with its own data directory and loopback port, stopped by its
PID. tests/integration/test_prometheus.py and the several-workers tests start theirs with this."""
from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import httpx
import yaml

from harness import REPO, end_process, remember_pid, wait_until

DEPLOY = REPO / "deploy" / "prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: deploy/scripts/observability.sh installs Debian's prometheus package"
    return path


@dataclass
class Prometheus:
    url: str

    def vector(self, expr: str) -> list[tuple[dict, float]]:
        """The instant vector: each series' labels and value."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def query(self, expr: str) -> dict[str, float]:
        """The instant vector, keyed by the ``severity`` or ``service`` label (whichever is there)."""
        return {labels.get("severity") or labels.get("service", ""): value for labels, value in self.vector(expr)}


def scrape_config(env: Mapping[str, str], path: Path, workers: int = 1) -> None:
    """The scrape configuration make up writes, for ``env``'s ports, scraping every second."""
    from services.workers import prometheus_config

    config = prometheus_config(yaml.safe_load((DEPLOY / "prometheus.yml").read_text()), workers, env, DEPLOY)
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    path.write_text(yaml.safe_dump(config))


@contextmanager
def running_prometheus(workdir: Path, port: int, env: Mapping[str, str], logs: Path,
                       workers: int = 1) -> Iterator[Prometheus]:
    """Prometheus on ``port`` until the block ends; ``logs``: the platform's (its PID is listed
    there for test.sh)."""
    scrape_config(env, workdir / "prometheus.yml", workers)
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    remember_pid(logs, process.pid)
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}: {(workdir / 'prometheus.log').read_text()}")
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout=60, what="prometheus to be ready")
        yield Prometheus(url)
    finally:
        end_process(process)
