-- Tokens may expire (expires_at, optional) and say when they were last used (last_used_at:
-- written when the API checks the token in PostgreSQL, at most every 30 s per process).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz, ADD COLUMN last_used_at timestamptz;
