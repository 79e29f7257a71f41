-- Version 2: the embedded auth core's answers, and accounts always with a password hash.
--
-- An answer is kept per request (the MO's inbox id, the same on every node and every retry)
-- until the login it served is committed: an MO retried after a crash, or taken over by
-- another node when its lease lapsed, gets the same account, session and credentials —
-- never a second account, never a lost credential SMS. It holds the session and, for a new
-- account, the password until then; both leave with it.
CREATE TABLE auth_answers (
    request_id bigint  PRIMARY KEY,
    account_id text    NOT NULL,
    created    boolean NOT NULL,
    session    text    NOT NULL,
    login      text,
    password   text,
    CHECK ((login IS NULL) = (password IS NULL))
);

ALTER TABLE accounts ALTER COLUMN password_hash SET NOT NULL;
