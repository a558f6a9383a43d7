"""Read the organisation file; a bad file stops the service naming the field."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .domain.organisation import Organisation


class ConfigError(SystemExit):
    """Raised (and exits) when the organisation file is missing or invalid."""


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_organisation(text: str, source: str = "<config>") -> Organisation:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the organisation file must be a mapping")
    try:
        return Organisation.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None


def load_organisation(path: Path) -> Organisation:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"INCIDENT_CONFIG: cannot read {path}: {exc.strerror}") from None
    return parse_organisation(text, str(path))
