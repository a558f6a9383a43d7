"""500s and a mismatch the schemathesis volume run (make test-openapi-volume) found, each
answered as the document says now. Each test failed before its fix.
"""
from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize(("path", "params", "key"), [
    ("/v1/oncall/overrides", {"rotation": "\x00", "include_past": "true"}, "overrides"),
    ("/v1/incidents", {"q": "db\x00"}, "incidents"),
    ("/v1/incidents", {"service": "\x00"}, "incidents"),
])
def test_a_nul_in_a_searched_value_matches_nothing(admin, path, params, key):
    # PostgreSQL text cannot hold U+0000, so nothing stored has one: the search is schema-valid
    # and finds nothing. It failed with CharacterNotInRepertoireError (a 500).
    answer = admin.get(path, params=params)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    assert answer.json()[key] == [], answer.text


def test_a_blank_dedup_key_is_refused_by_the_document_and_the_server_alike(platform, intake):
    spec = intake.get("/openapi.json").json()
    key = spec["components"]["schemas"]["NativeAlert"]["properties"]["dedup_key"]
    patterns = [option["pattern"] for option in key.get("anyOf", [key]) if "pattern" in option]
    assert patterns, f"dedup_key carries no pattern in the document: {key}"
    assert re.search(patterns[0], "   ") is None and re.search(patterns[0], " db-1 ")
    answer = intake.post("/v1/alerts", json={"service": "checkout", "summary": "blank key", "dedup_key": "   "})
    assert answer.status_code == 400 and "dedup_key" in answer.text, answer.text


def test_a_blank_opsgenie_identifier_is_refused_by_the_document_and_the_server_alike(intake):
    # A path of one U+001E: schema-valid by the document, refused by the server (ST202).
    spec = intake.get("/openapi.json").json()
    for action in ("close", "acknowledge", "notes"):
        [param] = [p for p in spec["paths"][f"/v2/alerts/{{identifier}}/{action}"]["post"]["parameters"]
                   if p["name"] == "identifier"]
        assert re.search(param["schema"]["pattern"], "\x1e") is None, (action, param)
        assert param["schema"]["maxLength"] == 1024, param
    answer = intake.post("/v2/alerts/%1E/notes", json={"note": "blank"})
    assert answer.status_code == 400 and "identifier" in answer.text, answer.text


@pytest.mark.parametrize("at", ["0001-01-01T00:01:00Z", "0001-01-01T00:00:00+14:00",
                                "9999-12-31T23:59:59.999999-12:00", "9999-12-31T12:00:00Z"])
def test_who_is_on_call_at_the_ends_of_time_is_answered(admin, at):
    # An OverflowError in the hand-off arithmetic (a 500); the document's date-time has no range.
    answer = admin.get("/v1/oncall", params={"at": at})
    assert answer.status_code == 200, (at, answer.status_code, answer.text)
    rows = answer.json()["oncall"]
    assert rows and all(row["primary"] and row["since"] <= row["until"] for row in rows), rows


def test_an_override_to_the_end_of_time_is_recorded_not_left_on_the_topic(admin):
    # The UTC of this end is in year 10000: the recorder could not store it, and the API waited
    # for a row that never came (503) while the override was in effect from the topic.
    body = {"rotation": "drill-oncall", "person": "erin", "start": "8999-01-01T00:00:00Z",
            "end": "9999-12-31T23:59:59-12:00", "reason": "the end of time"}
    made = admin.post("/v1/oncall/overrides", json=body)
    assert made.status_code == 201, made.text
    override = made.json()
    try:
        assert override["end"].startswith("9999-12-29"), override
        listed = admin.get("/v1/oncall/overrides", params={"rotation": "drill-oncall"}).json()
        assert override["override_id"] in str(listed), listed
        at = admin.get("/v1/oncall", params={"at": "9999-06-01T00:00:00Z"}).json()["oncall"]
        assert [row["primary"] for row in at if row["rotation"] == "drill-oncall"] == ["erin"], at
    finally:
        assert admin.delete(f"/v1/oncall/overrides/{override['override_id']}").status_code == 200
