-- On-call essentials (issue 13). Opsgenie notes name an alert by its key: find its incident.
CREATE INDEX incident_alerts_fingerprint ON incident_alerts (fingerprint, received_at DESC);
