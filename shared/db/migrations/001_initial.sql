-- Incident records, the audit trail and the communication log, written by the
-- recorder from Kafka (idempotent: every row has the id of the event it came from).
CREATE TABLE incidents (
    incident_id      text PRIMARY KEY,
    correlation_key  text NOT NULL,
    title            text NOT NULL,
    service          text NOT NULL,
    team             text NOT NULL,
    severity         text NOT NULL,
    category         text NOT NULL,
    status           text NOT NULL,
    commander        text,
    restricted       boolean NOT NULL,
    regulated        boolean NOT NULL,
    detected_at      timestamptz NOT NULL,
    opened_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    first_resolved_at timestamptz,
    resolved_at      timestamptz,
    closed_at        timestamptz,
    reopen_count     integer NOT NULL DEFAULT 0,
    alert_count      integer NOT NULL DEFAULT 0,
    mttr_minutes     double precision,
    postmortem_required boolean,
    postmortem_status text,
    postmortem_due_at timestamptz,
    postmortem_created_at timestamptz,
    version          integer NOT NULL,
    record           jsonb NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_service ON incidents (service);
CREATE INDEX incidents_team ON incidents (team);
CREATE INDEX incidents_opened ON incidents (opened_at DESC);

CREATE TABLE audit_events (
    event_id     text PRIMARY KEY,
    incident_id  text NOT NULL,
    version      integer NOT NULL,
    type         text NOT NULL,
    change       text NOT NULL,
    actor        text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    summary      text NOT NULL,
    causation_id text,
    data         jsonb NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_incident ON audit_events (incident_id, version);

CREATE TABLE incident_alerts (
    alert_id     text PRIMARY KEY,
    incident_id  text NOT NULL,
    fingerprint  text NOT NULL,
    status       text NOT NULL,
    summary      text NOT NULL,
    source       text NOT NULL,
    received_at  timestamptz NOT NULL,
    event_id     text NOT NULL
);
CREATE INDEX incident_alerts_incident ON incident_alerts (incident_id, received_at);

CREATE TABLE communications (
    record_id    text PRIMARY KEY,
    incident_id  text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    direction    text NOT NULL,          -- 'update' (posted by a person) or 'notification'
    channel      text NOT NULL,
    team         text,
    kind         text NOT NULL,
    status       text NOT NULL,
    author       text,
    text         text NOT NULL,
    attempt      integer NOT NULL DEFAULT 1,
    error        text
);
CREATE INDEX communications_incident ON communications (incident_id, occurred_at);

CREATE TABLE evidence (
    incident_id  text NOT NULL,
    evidence_id  text NOT NULL,
    title        text NOT NULL,
    url          text,
    content      text,
    media_type   text NOT NULL,
    added_by     text NOT NULL,
    added_at     timestamptz NOT NULL,
    event_id     text NOT NULL,
    PRIMARY KEY (incident_id, evidence_id)
);

CREATE TABLE command_results (
    command_id   text PRIMARY KEY,
    incident_id  text NOT NULL,
    outcome      text NOT NULL,
    reason       text,
    version      integer,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- Tokens and integration keys: only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    token_id     text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Incident ids INC-YYYY-MM-DD-NNN: one counter per day, one allocation per opening.
CREATE TABLE incident_id_counters (
    day        date PRIMARY KEY,
    last_value integer NOT NULL
);
CREATE TABLE incident_id_allocations (
    opening_key  text PRIMARY KEY,
    incident_id  text NOT NULL UNIQUE,
    allocated_at timestamptz NOT NULL DEFAULT now()
);
