"""Fuzzing the organisation file loader: every invalid file ends in ConfigError naming the field.

Each strategy breaks the example organisation (deploy/config/organisation.yaml) in one way
(unparsable YAML, a wrong type, an unknown field, a missing field, a reference to nothing, a
bad duration, a bad value) and the loader must answer with its own error: the file and line
for YAML it cannot read, the dotted path of the field otherwise. Any other exception (a
traceback at start instead of a message) fails the test with the input that caused it.
"""
from __future__ import annotations

import copy
import os
import re
import types
import typing
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.config_loader import ConfigError, load_organisation, parse_organisation
from shared.domain.organisation import Organisation

from conftest import EXAMPLE_CONFIG

SOURCE = "organisation.yaml"
BASE_TEXT = EXAMPLE_CONFIG.read_text()
BASE = yaml.safe_load(BASE_TEXT)
# Examples per property: enough for make test; CONFIG_FUZZ_EXAMPLES=2000 for a long hunt.
FUZZ = settings(max_examples=int(os.environ.get("CONFIG_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def refused(text: str) -> str:
    """The loader's message for ``text``; any other outcome fails."""
    try:
        parse_organisation(text, SOURCE)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{SOURCE}: "), message
        return message
    except BaseException as exc:  # noqa: BLE001 - exactly what this test hunts
        pytest.fail(f"{type(exc).__name__} instead of ConfigError: {exc}\n--- input ---\n{text[:2000]}")
    pytest.fail(f"accepted an invalid file:\n{text[:2000]}")


def names(message: str, path: tuple) -> bool:
    """The message locates ``path``: the whole dotted path, or a leading part of it as the
    location ("mttr_targets: ...") with the rest named after it ("... SEV1: not a duration")."""
    parts = [str(p) for p in path]
    if ".".join(parts) in message:
        return True
    return any(f"{'.'.join(parts[:i])}: " in message and all(p in message for p in parts[i:])
               for i in range(1, len(parts)))


def dump(raw) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def changed(path: tuple, value=None, delete: bool = False) -> dict:
    raw = copy.deepcopy(BASE)
    node = raw
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


# --- where things are in the example, and what the models say they are ------------------------

def walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def annotation_at(path: tuple):
    """The pydantic annotation of the value at ``path`` (None where the models give none)."""
    current = Organisation
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return None
    return _unwrap(current)


def _unwrap(annotation):
    """``X | None`` as ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _is_model(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


NODES = list(walk(BASE))
SCALARS = [path for path, node in NODES if path and not isinstance(node, (dict, list))]
MODELS = [path for path, node in NODES if isinstance(node, dict) and _is_model(annotation_at(path))]

def _node(path: tuple):
    node = BASE
    for part in path:
        node = node[part]
    return node


REQUIRED = [(path, name) for path in MODELS for name, field in annotation_at(path).model_fields.items()
            if field.is_required() and name in _node(path)]
DURATIONS = [path for path, node in NODES if path and annotation_at(path) is timedelta]

# Fields that name something defined elsewhere in the file (Organisation._references).
TEAMS, POLICIES, ROTATIONS = set(BASE["teams"]), set(BASE["escalation_policies"]), set(BASE["rotations"])
PEOPLE, SERVICES = set(BASE.get("people") or {}), set(BASE["services"])
REFERENCES = [
    *[(("teams", t, "rotation"), ROTATIONS) for t in BASE["teams"]],
    *[(("teams", t, "escalation_policy"), POLICIES) for t in BASE["teams"]],
    *[(("services", s, "team"), TEAMS) for s in BASE["services"]],
    *[(("services", s, "escalation_policy"), POLICIES) for s in BASE["services"]],
    *[(("rotations", r, "participants", i), PEOPLE) for r, rot in BASE["rotations"].items()
      for i in range(len(rot["participants"]))],
    *[(("escalation_policies", p, "levels", li, "targets", ti, field), known)
      for p, policy in BASE["escalation_policies"].items() for li, level in enumerate(policy["levels"])
      for ti, _ in enumerate(level["targets"]) for field, known in (("rotation", ROTATIONS), ("team", TEAMS))],
    *[((field,), TEAMS) for field in ("fallback_team", "security_team", "compliance_team")],
    (("default_escalation_policy",), POLICIES),
    *[(("heartbeats", h, "service"), SERVICES) for h in BASE.get("heartbeats") or {}],
]
assert SCALARS and MODELS and REQUIRED and DURATIONS and REFERENCES


def test_the_example_is_valid_and_its_shape_is_understood():
    assert isinstance(parse_organisation(BASE_TEXT, SOURCE), Organisation)
    assert ("reopen_window",) in DURATIONS and ("teams", "payments") in MODELS
    assert (("services", "connector:CRM"), "team") in REQUIRED


# --- the properties -----------------------------------------------------------------------------

BROKEN_LINES = ["key: [unclosed", "\tkey: tab-indented", "a: b: c", "{unclosed: 1", '"unterminated',
                "*undefined_alias", "&one &two x", "- item: [1, 2", "x: !!int not-a-number",
                "x: 2026-02-30", "x: !!bool maybe", "x: !!timestamp soon", "x: !!float .nan.", "]"]


@FUZZ
@given(line=st.integers(min_value=0, max_value=BASE_TEXT.count("\n")), broken=st.sampled_from(BROKEN_LINES),
       indent=st.sampled_from(["", "  ", "    "]))
def test_unparsable_yaml_names_the_file_and_line(line, broken, indent):
    lines = BASE_TEXT.splitlines()
    text = "\n".join([*lines[:line], indent + broken, *lines[line:]])
    try:
        yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - YAMLError, or PyYAML's unmarked ValueError/KeyError: the loader must give the line
        pass
    else:
        assume(False)  # this insertion happens to be valid YAML somewhere
    message = refused(text)
    assert message.startswith(f"{SOURCE}: not valid YAML: "), message
    assert f'"{SOURCE}", line ' in message, message


@FUZZ
@given(text=st.text(max_size=300))
@example(text="[" * 5000)  # deeper than the parser's recursion
@example(text="a: &x [*x]")  # an alias that contains itself
@example(text="")
@example(text="- a list\n- not a mapping")
def test_any_text_is_refused_by_the_loader_itself(text):
    refused(text)


@FUZZ
@given(path=st.sampled_from(SCALARS), value=st.one_of(
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=2)))
def test_a_wrong_type_names_the_field(path, value):
    message = refused(dump(changed(path, value)))
    assert "invalid configuration: " in message and names(message, path), (path, message)


@FUZZ
@given(path=st.sampled_from([(), *MODELS]), key=st.from_regex(r"\A[a-z][a-z_]{2,12}\Z"),
       value=st.one_of(st.integers(), st.text(max_size=5), st.booleans()))
def test_an_unknown_field_names_the_field(path, key, value):
    model = annotation_at(path)
    assume(key not in model.model_fields)
    message = refused(dump(changed((*path, key), value)))
    assert names(message, (*path, key)) and "Extra inputs are not permitted" in message, message


@FUZZ
@given(case=st.sampled_from(REQUIRED))
def test_a_missing_field_names_the_field(case):
    path, name = case
    message = refused(dump(changed((*path, name), delete=True)))
    assert names(message, (*path, name)) and "Field required" in message, message


@FUZZ
@given(case=st.sampled_from(REFERENCES), name=st.text(min_size=1, max_size=20))
def test_a_reference_to_nothing_names_the_field(case, name):
    path, known = case
    assume(name not in known)
    message = refused(dump(changed(path, name)))
    assert names(message, path), (path, message)


def _not_a_duration(text: str) -> bool:
    from shared.domain.durations import parse_duration

    try:
        parse_duration(text)
    except ValueError:
        return True
    return False


@FUZZ
@given(path=st.sampled_from(DURATIONS), value=st.one_of(
    st.text(max_size=12).filter(_not_a_duration),
    st.integers(max_value=-1),
    st.integers(min_value=10**14),  # past timedelta's limit (999999999 days)
    st.sampled_from([float("inf"), float("-inf"), float("nan"), -0.5, "99999999999999d", "9" * 400, "1e400"]),
    st.lists(st.integers(), min_size=1, max_size=2),
))
def test_a_bad_duration_names_the_field(path, value):
    message = refused(dump(changed(path, value)))
    assert names(message, path), (path, message)


def _not_a_zone(text: str) -> bool:
    try:
        ZoneInfo(text)
    except Exception:  # noqa: BLE001 - any refusal makes it a bad zone for this test
        return True
    return False


BAD_VALUES = st.one_of(
    st.tuples(st.just(("rotations", "integrations-oncall", "time_zone")),
              st.one_of(st.text(max_size=40).filter(_not_a_zone), st.sampled_from(["America", "Europe", "a" * 300]))),
    st.tuples(st.just(("severity_rules", 0, "match", "label_patterns")),
              st.sampled_from(["(", "a{4294967296}", "(" * 2000 + ")" * 2000, "[z-a]", "*"]).map(lambda p: {"x": p})),
    st.tuples(st.just(("services", "connector:CRM", "tier")), st.one_of(st.integers(max_value=0), st.integers(min_value=5))),
    st.tuples(st.just(("default_severity",)), st.text(max_size=6).filter(lambda s: s not in {"SEV1", "SEV2", "SEV3", "SEV4"})),
    st.tuples(st.just(("incident_url",)), st.text(max_size=30).filter(lambda s: "{incident_id}" not in s)),
    st.tuples(st.just(("heartbeats", "prometheus-watchdog", "severity")), st.sampled_from(["SEV0", "sev1", "", "P1"])),
    st.tuples(st.just(("evidence_max_bytes",)), st.integers(max_value=1023)),
    st.tuples(st.just(("rotations", "integrations-oncall", "start")), st.sampled_from(["2026-02-30", "soon", "2026-13-01"])),
    st.tuples(st.just(("rotations", "integrations-oncall", "handoff")), st.sampled_from(["25:00", "noon", "9h"])),
)


@FUZZ
@given(case=BAD_VALUES)
def test_a_bad_value_names_the_field(case):
    path, value = case
    message = refused(dump(changed(path, value)))
    assert names(message, path), (path, message)


@FUZZ
@given(name=st.text(min_size=1, max_size=30).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9._-]+", s)))
def test_a_team_name_that_cannot_be_a_topic_names_the_team(name):
    raw = copy.deepcopy(BASE)
    raw["teams"][name] = {}
    message = refused(dump(raw))
    assert "teams" in message and "topic" in message, message


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=1, max_size=200).filter(lambda b: not _utf8(b)))
def test_a_file_that_is_not_utf8_names_the_file(tmp_path, junk):
    path = tmp_path / "organisation.yaml"
    path.write_bytes(BASE_TEXT.encode() + junk)
    with pytest.raises(ConfigError) as info:
        load_organisation(path)
    assert str(info.value).startswith(f"{path}: not UTF-8 text"), str(info.value)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
