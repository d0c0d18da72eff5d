-- Identity: profile fields, single-use mailed tokens, login throttling, consent ledger, site
-- texts (privacy policy), activity log, and the indexes of the admin users list.

ALTER TABLE users
    ADD COLUMN IF NOT EXISTS affiliation   text CHECK (char_length(affiliation) <= 300),
    ADD COLUMN IF NOT EXISTS orcid         text CHECK (orcid ~ '^[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]$'),
    ADD COLUMN IF NOT EXISTS bio           text CHECK (char_length(bio) <= 5000),
    ADD COLUMN IF NOT EXISTS theme         text NOT NULL DEFAULT 'light'
        CHECK (theme IN ('dark', 'light', 'journal', 'modern', 'elegant', 'high-contrast')),
    ADD COLUMN IF NOT EXISTS consent_version integer,           -- last accepted; NULL = none
    ADD COLUMN IF NOT EXISTS consent_at    timestamptz,
    ADD COLUMN IF NOT EXISTS pending_email text,                -- awaiting confirmation
    ADD COLUMN IF NOT EXISTS last_login_at timestamptz,
    ADD COLUMN IF NOT EXISTS erased_at     timestamptz;         -- anonymised (GDPR erasure)

-- Single-use tokens sent by mail; only their SHA-256 hex is stored.
CREATE TABLE IF NOT EXISTS user_tokens (
    token_hash text PRIMARY KEY CHECK (char_length(token_hash) = 64),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'invitation',
                                                'email_change', 'erasure')),
    data       text,                                   -- the new address for email_change
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX IF NOT EXISTS user_tokens_user_idx ON user_tokens (user_id, purpose);

-- Failed sign-ins, counted per account and per client address over a sliding window; shared
-- by every replica. Old rows are purged by the login path.
CREATE TABLE IF NOT EXISTS login_failures (
    id          bigserial PRIMARY KEY,
    email_key   text NOT NULL,            -- lower(btrim(email)) as typed
    client_addr text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS login_failures_email_idx ON login_failures (email_key, at);
CREATE INDEX IF NOT EXISTS login_failures_addr_idx ON login_failures (client_addr, at);
CREATE INDEX IF NOT EXISTS login_failures_at_idx ON login_failures (at);

-- Consent texts: each published version; the current one is the highest.
CREATE TABLE IF NOT EXISTS consent_versions (
    version      integer PRIMARY KEY,
    markdown     text NOT NULL CHECK (char_length(markdown) <= 100000),
    required     boolean NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- Who accepted or withdrew which version, when.
CREATE TABLE IF NOT EXISTS consent_ledger (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version     integer NOT NULL REFERENCES consent_versions (version),
    action      text NOT NULL CHECK (action IN ('accept', 'withdraw')),
    at          timestamptz NOT NULL DEFAULT now(),
    client_addr text
);
CREATE INDEX IF NOT EXISTS consent_ledger_user_idx ON consent_ledger (user_id, id);

-- Site texts an admin edits (privacy_policy).
CREATE TABLE IF NOT EXISTS site_texts (
    key        text PRIMARY KEY,
    markdown   text NOT NULL CHECK (char_length(markdown) <= 100000),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- Activity log: who did what to whom, when, from where. Newest first by id.
CREATE TABLE IF NOT EXISTS activity (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    client_addr text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS activity_kind_idx ON activity (kind, id);
CREATE INDEX IF NOT EXISTS activity_user_idx ON activity (user_id, id);
CREATE INDEX IF NOT EXISTS activity_actor_idx ON activity (actor_id, id);
CREATE INDEX IF NOT EXISTS activity_at_idx ON activity (at);

-- The admin users list: keyset paging in every sort order, and substring search through
-- trigram indexes (pg_trgm; the extension lives in whichever schema already holds it, else
-- public, so its operator class is named through that schema).
CREATE INDEX IF NOT EXISTS users_name_sort_idx ON users (lower(name), id);
CREATE INDEX IF NOT EXISTS users_email_sort_idx ON users (email_normalized, id);
CREATE INDEX IF NOT EXISTS users_created_sort_idx ON users (created_at, id);
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
DO $$
DECLARE
    s text;
BEGIN
    SELECT n.nspname INTO s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX IF NOT EXISTS users_name_trgm_idx ON users '
                   'USING gin (lower(name) %I.gin_trgm_ops)', s);
    EXECUTE format('CREATE INDEX IF NOT EXISTS users_email_trgm_idx ON users '
                   'USING gin (email_normalized %I.gin_trgm_ops)', s);
    EXECUTE format('CREATE INDEX IF NOT EXISTS users_affiliation_trgm_idx ON users '
                   'USING gin (lower(affiliation) %I.gin_trgm_ops)', s);
END
$$;
