-- One throttle for every limited action, shared by all replicas: a hit is a row (bucket, key,
-- time), a limit is "at most N hits of (bucket, key) within a window". The buckets (users.h):
-- login.account and login.addr (failed password checks per account and per client address),
-- mail.to, mail.addr and mail.account (mails a caller causes, per recipient, per client address
-- and per account). Hits older than a day are purged now and then; no window is longer.
-- The failed sign-ins of the former login_failures table move over as their two buckets.

CREATE TABLE IF NOT EXISTS throttle_hits (
    id     bigserial PRIMARY KEY,
    bucket text NOT NULL,
    key    text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS throttle_hits_key_idx ON throttle_hits (bucket, key, at);
CREATE INDEX IF NOT EXISTS throttle_hits_at_idx ON throttle_hits (at);

DO $$
BEGIN
    IF to_regclass('login_failures') IS NOT NULL THEN
        INSERT INTO throttle_hits (bucket, key, at)
            SELECT 'login.account', email_key, at FROM login_failures
             WHERE at > now() - interval '1 day';
        INSERT INTO throttle_hits (bucket, key, at)
            SELECT 'login.addr', client_addr, at FROM login_failures
             WHERE client_addr <> '' AND at > now() - interval '1 day';
        DROP TABLE login_failures;
    END IF;
END
$$;
