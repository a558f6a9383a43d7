-- The audit trail as a hash chain (shared/domain/audit_chain.py): each event's own hash and
-- its predecessor's; the incident keeps the chain head (its newest event's hash). Events
-- recorded before this migration have neither: the chain of such an incident starts at its
-- first event recorded after it.
ALTER TABLE audit_events ADD COLUMN prev_hash text, ADD COLUMN hash text;
ALTER TABLE incidents ADD COLUMN audit_head text;
