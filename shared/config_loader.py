"""Read the organisation file; a bad file stops the service naming the field (or the line)."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .domain.organisation import Organisation


class ConfigError(SystemExit):
    """Raised (and exits) when the organisation file is missing or invalid."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with the line of a value it cannot construct.

    The safe loader raises plain ValueError, KeyError or AttributeError, with no line,
    for values that scan as one type and cannot be built as it: ``start: 2026-02-30``
    (a date), ``!!int abc``, ``!!bool maybe``, ``!!timestamp soon``.
    """

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}", node.start_mark,
            ) from None


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _read_yaml(text: str, source: str) -> object:
    loader = _Loader(text)
    loader.name = source  # the marks of its errors name the file, not "<unicode string>"
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_organisation(text: str, source: str = "<config>") -> Organisation:
    try:
        raw = _read_yaml(text, source)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the organisation file must be a mapping")
    try:
        return Organisation.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None
    except RecursionError:
        # An alias that contains itself (a: &x [*x]) is a value without end.
        raise ConfigError(f"{source}: invalid configuration: a value refers to itself (a YAML alias loop)") from None


def load_organisation(path: Path) -> Organisation:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"INCIDENT_CONFIG: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return parse_organisation(text, str(path))
