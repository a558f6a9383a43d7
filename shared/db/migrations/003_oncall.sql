-- On-call essentials (issue 13). Opsgenie notes name an alert by its key: find its incident.
CREATE INDEX incident_alerts_fingerprint ON incident_alerts (fingerprint, last_seen DESC);

-- On-call overrides made at runtime, as the recorder reads them from oncall.overrides
-- (the latest version of each; a deleted one keeps who deleted it and when).
CREATE TABLE rotation_overrides (
    override_id  text PRIMARY KEY,
    rotation     text NOT NULL,
    person       text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_by   text,
    deleted_at   timestamptz,
    version      integer NOT NULL,
    record       jsonb NOT NULL
);
CREATE INDEX rotation_overrides_rotation ON rotation_overrides (rotation, ends_at);

-- Who changed on-call data (overrides, maintenance windows, feed tokens), append-only.
CREATE TABLE oncall_audit (
    event_id     text PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    subject_kind text NOT NULL,
    subject_id   text NOT NULL,
    data         jsonb NOT NULL
);
CREATE INDEX oncall_audit_subject ON oncall_audit (subject_kind, subject_id, occurred_at);

-- Maintenance windows, as the recorder reads them from maintenance.windows.
CREATE TABLE maintenance_windows (
    window_id    text PRIMARY KEY,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text NOT NULL,
    who          text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_by   text,
    deleted_at   timestamptz,
    version      integer NOT NULL,
    record       jsonb NOT NULL
);
CREATE INDEX maintenance_windows_end ON maintenance_windows (ends_at);

-- Read-only calendar feed tokens: one feed each (a rotation or a person), revocable; only a
-- SHA-256 of the secret is kept, as for api_tokens. They authenticate nothing but their feed.
CREATE TABLE feed_tokens (
    token_id     text PRIMARY KEY,
    name         text NOT NULL,
    scope_kind   text NOT NULL CHECK (scope_kind IN ('rotation', 'person')),
    scope_name   text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_by   text,
    revoked_at   timestamptz
);
