-- Version 5: a new account's password is made off the login path.
--
-- A new number's account is created without a password (its login waits for no Argon2id
-- hash) and, when its password is to be texted, marked here in the same transaction. The
-- registrar of whichever node leases the mark makes the password, and one transaction
-- stores its hash, queues the SMS carrying it and removes the mark: after a crash anywhere
-- the mark is still there (the password never went out, and a new one is made) or gone
-- together with the stored hash and the queued SMS. Until then no password logs in.
ALTER TABLE accounts ALTER COLUMN password_hash DROP NOT NULL;

CREATE TABLE password_pending (
    -- The account's id: oldest first.
    id          bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    msisdn      text   NOT NULL,
    -- Where the password is texted: the SMSC connection and short code of the first MO.
    smsc        text   NOT NULL,
    sender      text   NOT NULL,
    since       bigint NOT NULL,
    lease_owner text,
    lease_until timestamptz
);
