-- One row per alert received onto an incident (the opening alert, each alert folded into
-- an alerts_attached event): where an alert id led. An Opsgenie request's status is found
-- by its alert id here. The references (one per fingerprint) are incident_alerts.
CREATE TABLE incident_alert_receipts (
    alert_id     text PRIMARY KEY,
    incident_id  text NOT NULL,
    fingerprint  text NOT NULL,
    status       text NOT NULL,
    summary      text NOT NULL,
    source       text NOT NULL,
    received_at  timestamptz NOT NULL,
    event_id     text NOT NULL
);
CREATE INDEX incident_alert_receipts_incident ON incident_alert_receipts (incident_id, received_at);
