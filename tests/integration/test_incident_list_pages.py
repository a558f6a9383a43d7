"""GET /v1/incidents pages through thousands: statuses, text search, postmortem filters, sort, offset."""
from __future__ import annotations

from datetime import datetime


def _ids(client, **params) -> list[str]:
    answer = client.get("/v1/incidents", params=params)
    assert answer.status_code == 200, answer.text
    return [i["incident_id"] for i in answer.json()["incidents"]]


def test_pages_filters_and_order(admin, unique):
    made = []
    for severity in ("SEV3", "SEV1", "SEV2"):
        body = {"title": f"paging {unique} {severity}", "service": "billing-worker", "severity": severity}
        made.append(admin.post("/v1/incidents", json=body).json()["incident_id"])
    sev3, sev1, sev2 = made
    assert _ids(admin, q=f"paging {unique}") == [sev2, sev1, sev3]  # newest first
    assert _ids(admin, q=f"paging {unique}", sort="severity") == [sev1, sev2, sev3]
    first = admin.get("/v1/incidents", params={"q": f"paging {unique}", "limit": 2}).json()
    second = admin.get("/v1/incidents", params={"q": f"paging {unique}", "limit": 2, "offset": 2}).json()
    assert (first["total"], first["count"], second["count"]) == (3, 2, 1)
    assert [i["incident_id"] for i in first["incidents"] + second["incidents"]] == [sev2, sev1, sev3]
    assert _ids(admin, q=unique.upper()) == [sev2, sev1, sev3]  # case does not matter
    assert _ids(admin, q=f"paging {unique[:4]}%") == []  # % is a character, not a wildcard

    assert admin.post(f"/v1/incidents/{sev1}/acknowledge", json={}).status_code == 200
    assert admin.post(f"/v1/incidents/{sev2}/resolve", json={}).status_code == 200
    assert admin.post(f"/v1/incidents/{sev2}/close", json={"verification": "checked"}).status_code == 200
    assert _ids(admin, q=unique, status=["triggered", "acknowledged"]) == [sev1, sev3]
    assert _ids(admin, q=unique, status="closed", sort="closed") == [sev2]
    summary = admin.get("/v1/incidents", params={"q": unique, "status": "acknowledged"}).json()["incidents"][0]
    assert datetime.fromisoformat(summary["status_since"]) == datetime.fromisoformat(summary["acknowledged_at"])
    assert summary["mttr_target_minutes"] == 60.0


def test_postmortem_filters_list_open_action_items(admin, unique):
    iid = admin.post("/v1/incidents", json={"title": f"pm {unique}", "service": "billing-worker",
                                            "severity": "SEV2"}).json()["incident_id"]
    assert _ids(admin, q=unique, postmortem="open_action_items") == []
    item = {"title": f"fix {unique}", "owner": "dave", "due_date": "2027-02-01"}
    assert admin.post(f"/v1/incidents/{iid}/postmortem/action-items", json=item).status_code == 201
    listed = admin.get("/v1/incidents", params={"q": unique, "postmortem": "open_action_items"}).json()["incidents"]
    assert [i["incident_id"] for i in listed] == [iid]
    assert listed[0]["postmortem"]["open_action_items"][0]["title"] == f"fix {unique}"
    assert admin.patch(f"/v1/incidents/{iid}/postmortem/action-items/AI-1", json={"status": "done"}).status_code == 200
    assert _ids(admin, q=unique, postmortem="open_action_items") == []
    assert _ids(admin, q=unique, postmortem="overdue") == []  # due in five days


def test_bad_list_parameters_are_a_400_naming_them(admin):
    for params, field in (({"sort": "random"}, "sort"), ({"offset": -1}, "offset"), ({"status": "on-fire"}, "status"),
                          ({"postmortem": "late"}, "postmortem"), ({"q": "x" * 201}, "q")):
        answer = admin.get("/v1/incidents", params=params)
        assert answer.status_code == 400, (params, answer.status_code)
        assert field in answer.json()["error"]


def test_me_names_the_token_and_its_permissions(client_for):
    me = client_for("observability-engineer").get("/v1/me").json()
    assert me == {"name": "test-observability-engineer", "role": "observability-engineer",
                  "permissions": ["postmortem", "read", "update"]}
    assert client_for("integration").get("/v1/me").status_code == 403
    assert client_for(None).get("/v1/me").status_code == 401
