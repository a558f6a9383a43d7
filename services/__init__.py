"""The five services: ingestion, triage, escalation, notification, metrics."""
