-- Alert references leave the incident record for their own table: one row per
-- fingerprint of an incident, with the alert's labels, upserted by the recorder from
-- audit events (never regressing: a row is replaced only by a higher count/last_seen).
-- The table it replaces kept one row per alert received, without labels.
ALTER TABLE incident_alerts RENAME TO incident_alert_receipts;
ALTER INDEX incident_alerts_incident RENAME TO incident_alert_receipts_incident;

CREATE TABLE incident_alerts (
    incident_id  text NOT NULL,
    fingerprint  text NOT NULL,
    dedup_key    text,
    name         text NOT NULL,
    summary      text NOT NULL,
    status       text NOT NULL,
    count        integer NOT NULL,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    source       text NOT NULL,
    labels       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE INDEX incident_alerts_recent ON incident_alerts (incident_id, last_seen DESC);

-- Per incident: references stored, and whether the cap (ALERT_REFS_PER_INCIDENT) left some out.
CREATE TABLE incident_alert_stats (
    incident_id  text PRIMARY KEY,
    stored       integer NOT NULL,
    truncated    boolean NOT NULL DEFAULT false
);

-- Records written before this migration carry their references in the snapshot: move them.
INSERT INTO incident_alerts (incident_id, fingerprint, dedup_key, name, summary, status, count, first_seen,
                             last_seen, source)
SELECT i.incident_id, a.key, a.value->>'dedup_key', a.value->>'name', a.value->>'summary', a.value->>'status',
       (a.value->>'count')::integer, (a.value->>'first_seen')::timestamptz, (a.value->>'last_seen')::timestamptz,
       a.value->>'source'
FROM incidents i, jsonb_each(COALESCE(i.record->'alerts', '{}'::jsonb)) a;
INSERT INTO incident_alert_stats (incident_id, stored)
SELECT incident_id, count(*) FROM incident_alerts GROUP BY incident_id;
UPDATE incidents SET record = record - 'alerts' WHERE record ? 'alerts';
DROP TABLE incident_alert_receipts;
