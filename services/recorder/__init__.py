"""The recorder: incident.audit, command results and the communication log into PostgreSQL."""
