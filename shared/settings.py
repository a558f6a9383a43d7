"""Typed settings, read once from the environment at start and passed down."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "deploy" / "config" / "organisation.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://incident@127.0.0.1:55432/incident"
    incident_config: Path = DEFAULT_CONFIG
    ingestion_host: str = "127.0.0.1"
    ingestion_port: int = Field(default=8080, ge=1, le=65535)
    # The recorder's own HTTP endpoint: /healthz, /readyz (a probe through its consumer), /metrics.
    recorder_host: str = "127.0.0.1"
    recorder_port: int = Field(default=8091, ge=1, le=65535)
    # Alert references (distinct fingerprints) stored per incident; beyond this the incident's
    # alert_count still counts every alert and the record says the list is truncated.
    alert_refs_per_incident: int = Field(default=10_000, ge=1, le=1_000_000)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=1, le=65535)
    # Faust web ports: triage, escalation, notification, metrics take base+0..3.
    # Where the Faust services serve /metrics (0.0.0.0 in containers, for Prometheus).
    faust_web_host: str = "127.0.0.1"
    faust_web_port_base: int = Field(default=6066, ge=1, le=65530)
    topic_partitions: int = Field(default=4, ge=1, le=256)
    # Copies of every topic and changelog (3 on a three-broker cluster, `make up CLUSTER=3`), and how
    # many of them must have a write before it is acknowledged (producers send with acks=all).
    topic_replication: int = Field(default=1, ge=1, le=16)
    topic_min_insync_replicas: int = Field(default=1, ge=1, le=16)
    data_dir: Path = REPO_ROOT / ".local" / "data"
    # Which worker of its service this process is, when WORKERS>1 runs several (services/workers.py
    # sets it with the worker's shifted ports); 0: the only one. Names its data dir and Kafka client id.
    worker: int = Field(default=0, ge=0, le=64)
    app_prefix: str = Field(default="incident", pattern=r"^[a-z][a-z0-9-]*$")
    # How often the escalation service looks for due deadlines.
    tick_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long an API command waits for triage to apply it.
    command_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # A commit or producer flush that has not finished in this long, while the broker
    # accepts connections, makes the service exit to be restarted (see shared/kafka/liveness.py).
    liveness_seconds: float = Field(default=30.0, ge=2, le=600)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # The web console: where it listens, and the API and metrics exporter it reads
    # (default: this machine's ingestion and metrics ports).
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8090, ge=1, le=65535)
    incident_api_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    metrics_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # Signed-in sessions end after this long without a request.
    web_session_idle_minutes: int = Field(default=720, ge=1, le=43200)
    # Set behind TLS so the session cookie is sent over HTTPS only.
    web_cookie_secure: bool = False

    @model_validator(mode="after")
    def _insync_within_replication(self) -> "Settings":
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError(
                f"TOPIC_MIN_INSYNC_REPLICAS ({self.topic_min_insync_replicas}) is more than TOPIC_REPLICATION"
                f" ({self.topic_replication}): no write could ever be acknowledged"
            )
        return self

    @property
    def api_url(self) -> str:
        return (self.incident_api_url or f"http://127.0.0.1:{self.ingestion_port}").rstrip("/")

    @property
    def metrics_scrape_url(self) -> str:
        return self.metrics_url or f"http://127.0.0.1:{self.metrics_port}/metrics"


class SettingsError(SystemExit):
    pass


def load_settings() -> Settings:
    """Settings from the environment; a bad value stops the process naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" if err["loc"]
            else err["msg"].removeprefix("Value error, ")  # a check across fields names them itself
            for err in exc.errors()
        )
        raise SettingsError(f"invalid environment setting: {problems}") from None
