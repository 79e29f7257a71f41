-- moauth's PostgreSQL schema, version 1: every record the sled store keeps, as tables.
--
-- Times are Unix seconds (bigint) as the daemon's clock gives them, except leases, which are
-- the database's own clock (timestamptz): nodes may disagree on the time, the database is the
-- one clock they all share when deciding whether a claim has lapsed. Every table that grows
-- has an index on the column its sweep reads, so a sweep reads only what is due.
-- Exactly-once decisions are constraints, never a read followed by a write.

-- MOs as received, before interpretation; `id` is arrival order. A node claims work by
-- setting a lease (FOR UPDATE SKIP LOCKED); a lapsed lease makes the MO claimable again.
CREATE TABLE inbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    smsc             text        NOT NULL,
    source_addr      text        NOT NULL,
    source_ton       smallint    NOT NULL,
    destination_addr text        NOT NULL,
    esm_class        smallint    NOT NULL,
    data_coding      smallint    NOT NULL,
    user_data        bytea       NOT NULL,
    sar_reference    integer,
    sar_total        smallint,
    sar_seq          smallint,
    received_at      bigint      NOT NULL,
    lease_owner      text,
    lease_until      timestamptz
);
-- Arrival order per number: only the oldest MO of a sender may be claimed.
CREATE INDEX inbox_by_sender ON inbox (source_addr, id);

-- A digest of every MO for the redelivery window: the SMSC that missed a deliver_sm_resp
-- redelivers, possibly to another node; the primary key lets exactly one insert win.
CREATE TABLE inbox_seen (
    digest  bytea  PRIMARY KEY,
    seen_at bigint NOT NULL
);
CREATE INDEX inbox_seen_by_time ON inbox_seen (seen_at);

-- Parts of concatenated MOs waiting for their siblings; the group is (sender, destination,
-- connection, reference, total), so two phones with the same reference never mix.
CREATE TABLE parts (
    grp              bytea       NOT NULL,
    seq              smallint    NOT NULL,
    total            smallint    NOT NULL,
    smsc             text        NOT NULL,
    source_addr      text        NOT NULL,
    source_ton       smallint    NOT NULL,
    destination_addr text        NOT NULL,
    esm_class        smallint    NOT NULL,
    data_coding      smallint    NOT NULL,
    user_data        bytea       NOT NULL,
    sar_reference    integer,
    sar_total        smallint,
    sar_seq          smallint,
    received_at      bigint      NOT NULL,
    PRIMARY KEY (grp, seq)
);
CREATE INDEX parts_by_arrival ON parts (received_at);

-- MOs that cannot lead to a login, kept as received with the reason.
CREATE TABLE rejected (
    id               bigint      PRIMARY KEY,
    smsc             text        NOT NULL,
    source_addr      text        NOT NULL,
    source_ton       smallint    NOT NULL,
    destination_addr text        NOT NULL,
    esm_class        smallint    NOT NULL,
    data_coding      smallint    NOT NULL,
    user_data        bytea       NOT NULL,
    sar_reference    integer,
    sar_total        smallint,
    sar_seq          smallint,
    received_at      bigint      NOT NULL,
    reason           text        NOT NULL
);
CREATE INDEX rejected_by_arrival ON rejected (received_at);

-- Logins keyed by token challenge. A row also marks its token used: the primary key makes a
-- token's first decision the only one. The session is kept only while `complete`, and taking
-- it is one UPDATE … WHERE state = 'complete', so exactly one poll gets it on any node.
CREATE TABLE logins (
    challenge   bytea   PRIMARY KEY,
    state       text    NOT NULL
        CHECK (state IN ('complete', 'consumed', 'expired', 'rejected', 'waiting')),
    session     text,
    account_id  text,
    created     boolean,
    reason      text,
    msisdn      text,
    issued_at   bigint  NOT NULL,
    decided_at  bigint  NOT NULL,
    keep_until  bigint  NOT NULL,
    CHECK ((state = 'complete') = (session IS NOT NULL)),
    CHECK ((state = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX logins_by_keep_until ON logins (keep_until);

-- Accounts of the embedded auth core. One account per number is the UNIQUE constraint:
-- two nodes deciding a new number's first login at once cannot both create one.
CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msisdn        text   NOT NULL UNIQUE,
    -- Argon2id PHC string of the password sent by SMS; the password itself is never stored.
    password_hash text,
    created_at    bigint NOT NULL
);

-- Sessions by SHA-256 of the session token: a copy of the database yields no live session.
CREATE TABLE sessions (
    hash       bytea  PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Replies waiting for an SMSC to accept them. Only nodes bound to `smsc` claim its rows.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    smsc        text        NOT NULL,
    sender      text        NOT NULL,
    recipient   text        NOT NULL,
    -- May hold a password: leaves the table once the SMSC accepted it.
    body        text        NOT NULL,
    created_at  bigint      NOT NULL,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX outbox_by_smsc ON outbox (smsc, id);

-- Messages the SMSC accepted, by the message id it gave, until a receipt says how they ended.
CREATE TABLE sent (
    smsc         text   NOT NULL,
    message_id   text   NOT NULL,
    recipient    text   NOT NULL,
    submitted_at bigint NOT NULL,
    outcome      text,
    PRIMARY KEY (smsc, message_id)
);
CREATE INDEX sent_by_submission ON sent (submitted_at);

-- Login events waiting for their backend to answer 2xx; `event_id` is what receivers
-- deduplicate on, and unique here so an event is queued once.
CREATE TABLE webhooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backend     text        NOT NULL,
    event_id    text        NOT NULL UNIQUE,
    body        text        NOT NULL,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX webhooks_by_backend ON webhooks (backend, id);

-- Logins a backend minted (`POST /v1/logins`): whose they are, and when each falls due with
-- no SMS (`due` until its expiry is recorded or settled).
CREATE TABLE minted (
    challenge  bytea   PRIMARY KEY,
    backend    text    NOT NULL,
    issued_at  bigint  NOT NULL,
    expires_at bigint  NOT NULL,
    keep_until bigint  NOT NULL,
    due        boolean NOT NULL DEFAULT true
);
CREATE INDEX minted_due_by_expiry ON minted (expires_at) WHERE due;
CREATE INDEX minted_by_keep_until ON minted (keep_until);
