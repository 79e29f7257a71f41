-- Version 5: the global SMS budget's counts, shared by every node: one row per period
-- ('hour', 'day'), holding the current window's number and the SMS counted in it.
CREATE TABLE sms_budget (
    period    text   PRIMARY KEY,
    window_no bigint NOT NULL,
    count     bigint NOT NULL
);
