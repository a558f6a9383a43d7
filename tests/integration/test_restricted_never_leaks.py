"""A restricted (security) incident never leaks, on every path a role that may not read it
could learn of it through: other teams' notification topics, another team's webhook,
metric label values, list totals and counts, reads and exports, every search and filter
(the Opsgenie-compatible API's request status included), and the web console's pages.

One scene serves every test: four security incidents (one on an unconfigured service, one on
a service whose owning team has a webhook, one whose alert has the same service and alert
name as an open operational incident, one sent through the Opsgenie API) and four
operational controls beside them, each proving its path carries what is not restricted.
"""
from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from console_session import signed_in_client
from harness import read_topic, sql, wait_until
from integration_keys import create_key
from leak_probes import Receiver, notifications_by_team
from metrics_queries import scrape

ALLOWED = "security-admin"
NOT_ALLOWED = ("observability-engineer", "compliance-officer", "platform-admin")
OPEN = ("triggered", "acknowledged", "mitigating")


def _opened(samples, service: str, severity: str | None = None) -> float:
    return sum(v for labels, v in samples.get("incidents_opened_total", {}).items()
               if dict(labels)["service"] == service and severity in (None, dict(labels)["severity"]))


def _deduplicated(samples, service: str) -> float:
    return sum(v for labels, v in samples.get("alerts_deduplicated_total", {}).items() if dict(labels)["service"] == service)


def _listing(client: httpx.Client, **params) -> dict:
    answer = client.get("/v1/incidents", params=params)
    assert answer.status_code == 200, (params, answer.status_code, answer.text[:300])
    return answer.json()


@pytest.fixture(scope="module")
def scene(platform, intake, client_for, tokens):
    started = time.monotonic()
    u = uuid.uuid4().hex[:8]
    secret_service, plain_service = f"vault-{u}", f"plain-{u}"
    receiver = Receiver(int(platform.env["WEBHOOK_PORT"]))  # the `hooks` team's webhook (organisation.yaml)
    security = client_for(ALLOWED)
    before = wait_until(lambda: scrape(platform), what="a first scrape")
    sent = accepted = 0

    def fire(**alert) -> None:
        nonlocal sent, accepted
        sent += 1
        answer = intake.post("/v1/alerts", json=alert)
        assert answer.status_code == 202, answer.text
        accepted += 1

    def one(title: str) -> dict:
        def find():
            found = [i for i in _listing(security, q=title, limit=10)["incidents"] if i["title"] == title]
            return found[0] if len(found) == 1 else None
        return wait_until(find, what=f"the incident {title!r}")

    # The operational incident first, so that the security alert of the same problem would attach to it.
    fire(service="billing-worker", summary=f"Billing lag {u}", severity="warning", labels={"alertname": f"Mixed{u}"})
    mixed_control = one(f"Billing lag {u}")
    secrets = {
        "stuffing": dict(service=secret_service, summary=f"Credential stuffing {u}", severity="critical",
                         labels={"alertname": f"Stuffing{u}", "instance": "a", "category": "security"}),
        "hook": dict(service="webhook-service", summary=f"Webhook intrusion {u}", severity="error",
                     labels={"alertname": f"HookIntrusion{u}", "category": "security"}),
        "mixed": dict(service="billing-worker", summary=f"Token theft {u}", severity="warning",
                      labels={"alertname": f"Mixed{u}", "category": "security"}),
    }
    for alert in secrets.values():
        fire(**alert)
    fire(service="webhook-service", summary=f"Webhook control {u}", severity="error", labels={"alertname": f"HookCtl{u}"})
    fire(service=plain_service, summary=f"Plain outage {u}", severity="error", labels={"alertname": f"Plain{u}"})

    genie = httpx.Client(base_url=platform.api_url, headers={"Authorization": f"GenieKey {create_key('opsgenie')}"},
                         timeout=30)
    requests = {}
    for name, details in (("breach", {"service": secret_service, "alertname": f"GenieBreach{u}", "category": "security"}),
                          ("plain", {"service": plain_service, "alertname": f"GeniePlain{u}"})):
        sent += 1
        created = genie.post("/v2/alerts", json={"message": f"Opsgenie {name} {u}", "alias": f"{name}-{u}",
                                                  "priority": "P2", "details": details})
        assert created.status_code == 202, created.text
        accepted += 1
        requests[name] = created.json()["requestId"]

    restricted = {key: one(alert["summary"]) for key, alert in secrets.items()}
    restricted["genie"] = one(f"Opsgenie breach {u}")
    controls = {"mixed": mixed_control, "hook": one(f"Webhook control {u}"), "plain": one(f"Plain outage {u}"),
                "genie": one(f"Opsgenie plain {u}")}
    assert all(i["restricted"] and i["team"] == "security" for i in restricted.values()), restricted
    assert not any(i["restricted"] for i in controls.values()), controls

    # Repeats of the first security alert (one of them another host): counted as deduplicated.
    for instance in ("a", "a", "b"):
        fire(**{**secrets["stuffing"], "labels": {**secrets["stuffing"]["labels"], "instance": instance}})
    stuffing = restricted["stuffing"]["incident_id"]
    wait_until(lambda: security.get(f"/v1/incidents/{stuffing}").json()["alert_count"] == 4,
               what="the repeats on the security incident")
    # Resolved with an action item: it must stay out of the postmortem filters and the Numbers page.
    assert security.post(f"/v1/incidents/{stuffing}/resolve", json={"note": "contained"}).status_code == 200
    item = security.post(f"/v1/incidents/{stuffing}/postmortem/action-items",
                         json={"title": f"Rotate every credential {u}", "owner": "heidi"})
    assert item.status_code == 201, item.text

    ids = {i["incident_id"] for i in restricted.values()}
    needles = ids | {alert["summary"] for alert in secrets.values()} | {secret_service, f"Opsgenie breach {u}",
                                                                      f"Rotate every credential {u}"}
    scene = dict(u=u, secret_service=secret_service, plain_service=plain_service, receiver=receiver, before=before,
                 restricted=restricted, controls=controls, ids=ids, needles=needles, genie=genie, requests=requests,
                 sent=sent, accepted=accepted, started=started, checked=[])
    yield scene
    receiver.close()
    print(f"\nRESTRICTED-LEAKS paths checked: {len(scene['checked'])} ({', '.join(scene['checked'])}); "
          f"wall time {time.monotonic() - started:.1f} s")


def test_nothing_lost_and_no_security_alert_folded_into_an_operational_incident(scene, client_for):
    security = client_for(ALLOWED)
    incidents = {**{f"restricted:{k}": v for k, v in scene["restricted"].items()},
                 **{f"control:{k}": v for k, v in scene["controls"].items()}}
    counted = sum(security.get(f"/v1/incidents/{i['incident_id']}").json()["alert_count"] for i in incidents.values())
    mixed_control = security.get(f"/v1/incidents/{scene['controls']['mixed']['incident_id']}").json()
    titles = [i["title"] for i in _listing(security, q=scene["u"], limit=100)["incidents"]]
    duplicates = len(titles) - len(set(titles))
    print(f"\nRESTRICTED-LEAKS sent {scene['sent']}, accepted {scene['accepted']}, accounted for {counted}, "
          f"lost {scene['accepted'] - counted}, incidents {len(titles)} (restricted {len(scene['restricted'])}), "
          f"duplicate incidents {duplicates}")
    assert counted == scene["accepted"] == scene["sent"], (scene["sent"], scene["accepted"], counted)
    assert duplicates == 0 and len(titles) == len(incidents), titles
    # The security alert with the operational incident's service and alert name opened its own.
    assert mixed_control["alert_count"] == 1, mixed_control["alerts"]
    assert all("Token theft" not in a["summary"] and a["labels"].get("category") != "security"
               for a in mixed_control["alerts"]), mixed_control["alerts"]
    scene["checked"].append("correlation")


def test_no_other_team_hears_of_it_on_its_topic_or_its_webhook(scene, client_for):
    restricted_ids = scene["ids"]
    # Every security incident was told on the security topic, paged included (the page follows the
    # opening): once that is there, every team that was going to hear of the opening has.
    paged = read_topic("notifications.security", lambda m: m["incident_id"] in restricted_ids and m["kind"] == "escalated",
                       until=lambda found: {m["incident_id"] for m in found} == restricted_ids, timeout=30)
    assert {m["incident_id"] for m in paged} == restricted_ids, "each security incident paged on the security topic"
    control = scene["controls"]["hook"]["incident_id"]
    wait_until(lambda: any(control in body for body in scene["receiver"].bodies()), timeout=30,
               what="the control's notification on the hooks team's webhook")
    heard = notifications_by_team(scene["needles"])
    told_security = len(heard.pop("security"))
    leaked = {team: [m.get("incident_id") for m in found] for team, found in heard.items() if found}
    posts = scene["receiver"].bodies()
    webhook_leaks = [body[:200] for body in posts if any(n in body for n in scene["needles"])]
    # The communication log agrees: the security team's topic is the only channel it went to.
    channels = {r["channel"] for r in sql("SELECT DISTINCT channel FROM communications WHERE incident_id = ANY($1)",
                                          list(restricted_ids))}
    print(f"\nRESTRICTED-LEAKS notifications on the security topic {told_security}, other teams' topics read "
          f"{len(heard)}, messages about it there {sum(map(len, leaked.values()))}, webhook posts received "
          f"{len(posts)}, about it {len(webhook_leaks)}; channels {sorted(channels)}")
    assert not leaked, leaked
    assert not webhook_leaks, webhook_leaks
    assert channels == {"kafka:notifications.security"}, channels
    scene["checked"] += ["team topics", "webhooks"]


def _database_counts() -> dict[str, float]:
    """What the exporter must say, from PostgreSQL: opened per service (a restricted incident under
    `restricted`), and the restricted incidents' deduplicated alerts."""
    opened = {r["service"]: r["n"] for r in sql(
        "SELECT CASE WHEN restricted THEN 'restricted' ELSE service END AS service, count(*) AS n FROM incidents"
        " WHERE service = ANY($1) OR restricted GROUP BY 1", ["webhook-service", "billing-worker"])}
    [folded] = sql("SELECT coalesce(sum((e.data->>'firing')::int), 0) AS n FROM audit_events e"
                   " JOIN incidents i USING (incident_id) WHERE e.change = 'alerts_attached' AND i.restricted")
    return {**{s: float(opened.get(s, 0)) for s in ("webhook-service", "billing-worker", "restricted")},
            "deduplicated": float(folded["n"])}


def test_metric_labels_never_name_its_service(scene, platform):
    before, plain = scene["before"], scene["plain_service"]
    last = {}

    def settled():
        now = scrape(platform)
        if now is None or _opened(now, plain) < 2:
            return None
        mine = {s: _opened(now, s) for s in ("webhook-service", "billing-worker", "restricted")}
        mine["deduplicated"] = _deduplicated(now, "restricted")
        last["exported"], last["database"] = mine, _database_counts()
        return now if mine == last["database"] else None

    try:
        after = wait_until(settled, timeout=30, what="the exporter's counts to equal PostgreSQL's")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: exported {last.get('exported')}, database {last.get('database')}") from None
    text = httpx.get(platform.metrics_url, timeout=5).text
    print(f"\nRESTRICTED-LEAKS metrics: opened with service=restricted "
          f"+{_opened(after, 'restricted') - _opened(before, 'restricted'):g} (all {_opened(after, 'restricted'):g}),"
          f" deduplicated +{_deduplicated(after, 'restricted') - _deduplicated(before, 'restricted'):g}, "
          f"real service name in /metrics {text.count(scene['secret_service'])} times; exported {last['exported']}")
    assert scene["secret_service"] not in text
    assert _opened(after, "restricted", "SEV2") - _opened(before, "restricted", "SEV2") >= 4
    assert _deduplicated(after, "restricted") - _deduplicated(before, "restricted") >= 3

    # What the console shows a role that may not read them: no restricted incident counted at all.
    def agrees():
        rows = sql("SELECT restricted, count(*) AS n FROM incidents WHERE status = ANY($1) GROUP BY restricted",
                   list(OPEN))
        db = {r["restricted"]: r["n"] for r in rows}
        visible = httpx.get(platform.metrics_url, params={"restricted": "exclude"}, timeout=5)
        everything = scrape(platform)
        shown = sum(float(v) for v in re.findall(r'^incidents_open\{severity="SEV\d"\} (\S+)$', visible.text, re.M))
        total = sum(everything["incidents_open"].values())
        return (shown, total) if (shown, total) == (db.get(False, 0), db.get(False, 0) + db.get(True, 0)) else None

    shown, total = wait_until(agrees, timeout=30, what="the numbers without restricted incidents")
    assert total - shown >= 3, (shown, total)  # three of ours are still open
    scene["checked"] += ["metric labels", "metrics without restricted"]


def test_lists_counts_and_searches_leave_it_out(scene, client_for):
    u, ids = scene["u"], scene["ids"]
    stuffing = scene["restricted"]["stuffing"]["incident_id"]
    queries = [
        {"q": u}, {"q": u, "sort": "severity"}, {"q": u, "sort": "closed"}, {"q": u, "status": "triggered"},
        {"q": u, "status": "resolved"}, {"q": u, "severity": "SEV2"}, {"service": scene["secret_service"]},
        {"service": "billing-worker", "q": u}, {"team": "security"}, {"q": scene["secret_service"]}, {"q": stuffing},
        {"q": f"Credential stuffing {u}"}, {"postmortem": "open_action_items"}, {"postmortem": "overdue"},
        {"q": u, "limit": 1}, {"q": u, "limit": 2, "offset": 1},
    ]
    security = client_for(ALLOWED)
    seen_by_security = {i["incident_id"] for i in _listing(security, q=u, limit=100)["incidents"]}
    assert ids <= seen_by_security
    assert stuffing in {i["incident_id"] for i in _listing(security, postmortem="open_action_items", limit=1000)["incidents"]}
    compared = 0
    for role in NOT_ALLOWED:
        client = client_for(role)
        for params in queries:
            theirs = _listing(client, **params)
            shown = {i["incident_id"] for i in theirs["incidents"]}
            assert not shown & ids, (role, params, shown & ids)
            assert theirs["count"] == len(theirs["incidents"])
            whole = {k: v for k, v in params.items() if k not in ("limit", "offset")}
            everything = _listing(security, **whole, limit=1000)
            if everything["total"] <= 1000:
                hidden = sum(1 for i in everything["incidents"] if i["restricted"])
                assert theirs["total"] == everything["total"] - hidden, (role, params, theirs["total"],
                                                                         everything["total"], hidden)
                compared += 1
    print(f"\nRESTRICTED-LEAKS lists: {len(queries)} queries x {len(NOT_ALLOWED)} roles, restricted shown 0, "
          f"totals equal to the security admin's minus the restricted ones in {compared}")
    scene["checked"] += ["lists", "totals", "search", "filters"]


def test_reads_commands_and_the_export_are_refused(scene, client_for):
    refused = 0
    for role in NOT_ALLOWED:
        client = client_for(role)
        may_export = role != "observability-engineer"
        for incident in scene["restricted"].values():
            iid = incident["incident_id"]
            for path, headers in ((f"/v1/incidents/{iid}", {}), (f"/v1/incidents/{iid}", {"Accept": "application/yaml"}),
                                  (f"/v1/incidents/{iid}/postmortem", {}), (f"/v1/incidents/{iid}/export", {})):
                answer = client.get(path, headers=headers)
                expected = 403 if path.endswith("/export") and not may_export else 404
                assert answer.status_code == expected, (role, path, answer.status_code)
                assert not any(n in answer.text for n in scene["needles"] - {iid}), (role, path, answer.text[:200])
                refused += 1
            answer = client.post(f"/v1/incidents/{iid}/updates", json={"message": "hello?"})
            assert answer.status_code in (403, 404), (role, answer.status_code)
            refused += 1
        if role == "platform-admin":
            hook = scene["restricted"]["hook"]["incident_id"]
            assert client.post(f"/v1/incidents/{hook}/acknowledge").status_code == 404
    security = client_for(ALLOWED)
    bundle = security.get(f"/v1/incidents/{scene['restricted']['stuffing']['incident_id']}/export")
    assert bundle.status_code == 200 and bundle.json()["audit_chain"]["verified"] is True
    print(f"\nRESTRICTED-LEAKS reads, commands and exports refused: {refused} (no bulk export exists to check)")
    scene["checked"] += ["reads", "export", "commands"]


def test_the_opsgenie_request_status_does_not_name_it(scene):
    genie = scene["genie"]

    def status(name: str):
        answer = genie.get(f"/v2/alerts/requests/{scene['requests'][name]}")
        return answer.json()["data"] if answer.status_code == 200 else None

    breach = wait_until(lambda: status("breach"), what="the breach request's status")
    plain = wait_until(lambda: status("plain"), what="the plain request's status")
    print(f"\nRESTRICTED-LEAKS opsgenie: breach status {breach['status']!r} incidentId {breach.get('incidentId')}, "
          f"control incidentId {plain.get('incidentId')}")
    assert breach["isSuccess"] and "incidentId" not in breach, breach
    assert plain["incidentId"] == scene["controls"]["genie"]["incident_id"], plain
    scene["checked"].append("opsgenie request status")


def test_the_console_shows_it_only_to_a_security_admin(scene, platform, tokens):
    u, ids = scene["u"], scene["ids"]
    controls = {i["incident_id"] for i in scene["controls"].values()}
    stuffing = scene["restricted"]["stuffing"]["incident_id"]
    admin_board = signed_in_client(platform.web_url, tokens[ALLOWED]).get("/", params={"q": u, "view": "all"}).text
    assert set(re.findall(r'data-incident="(INC-[0-9-]+)"', admin_board)) == ids | controls
    pages = 0
    for role in NOT_ALLOWED:
        web = signed_in_client(platform.web_url, tokens[role])
        board = web.get("/", params={"q": u, "view": "all"}).text
        assert set(re.findall(r'data-incident="(INC-[0-9-]+)"', board)) == controls, role
        assert f"{len(controls)} incidents" in board, role
        for path, asked in (("/", None), (f"/?q={scene['secret_service']}", scene["secret_service"]),
                            ("/?team=security&view=all", None), ("/numbers", None), ("/oncall", None),
                            (f"/incidents/{stuffing}", stuffing), (f"/incidents/{stuffing}/postmortem", stuffing),
                            (f"/incidents/{stuffing}/export", stuffing), (f"/incidents/{stuffing}/live", stuffing)):
            page = web.get(path)
            assert page.status_code in (200, 403, 404), (role, path, page.status_code)
            # What the user asked for is echoed back (the search box, the refusal naming the id); nothing more.
            told = [n for n in scene["needles"] - {asked} if n in page.text]
            assert not told, (role, path, told)
            if path.startswith(f"/incidents/{stuffing}"):
                assert page.status_code in (403, 404), (role, path, page.status_code)
            pages += 1
        # The Numbers page counts what the role may see: the exporter's view without restricted incidents.
        def open_now(client=web):
            numbers = client.get("/numbers").text
            shown = sum(int(n) for n in re.findall(r"SEV\d (\d+)", re.search(r"Open now:(.*?)</p>", numbers, re.S)[1]))
            visible = sql("SELECT count(*) AS n FROM incidents WHERE status = ANY($1) AND NOT restricted",
                          list(OPEN))[0]["n"]
            return shown == visible
        wait_until(open_now, timeout=20, what=f"the Numbers page of {role} to count only what it may see")
    security_numbers = signed_in_client(platform.web_url, tokens[ALLOWED]).get("/numbers").text
    assert stuffing in security_numbers  # its open action item, for the role that may see it
    print(f"\nRESTRICTED-LEAKS console: {pages} pages for {len(NOT_ALLOWED)} roles, restricted shown 0")
    scene["checked"].append("console")
