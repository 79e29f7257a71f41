-- Version 3: sessions an app backend can check and end.
--
-- Introspection answers with the session's issue time and its account's number (joined from
-- accounts); revoking every session of an account reads them by account. Rows from before
-- have no issue time (NULL), which introspection leaves out.
ALTER TABLE sessions ADD COLUMN issued_at bigint;
CREATE INDEX sessions_by_account ON sessions (account_id);
