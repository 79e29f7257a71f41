-- Version 4: numbers that texted STOP (or UNSUBSCRIBE, TD, 退订) and get no SMS until START.
CREATE TABLE opt_outs (
    msisdn text   PRIMARY KEY,
    since  bigint NOT NULL
);
