-- Accounts, roles and sessions of the users service (schema "users"; search_path is set).
-- A user may hold several roles; sessions are opaque tokens stored only as SHA-256 hex.

CREATE TABLE IF NOT EXISTS users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email             text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    -- What uniqueness and sign-in compare: always lower(btrim(email)), computed by the database.
    email_normalized  text NOT NULL UNIQUE CHECK (email_normalized = lower(btrim(email))),
    password_hash     text NOT NULL,             -- argon2id, libsodium's encoded form
    email_verified_at timestamptz,
    disabled_at       timestamptz,               -- a disabled account cannot sign in
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('author', 'reviewer', 'editor', 'admin')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    PRIMARY KEY (user_id, role)
);
-- Lists people by role (e.g. the reviewers an editor may invite).
CREATE INDEX IF NOT EXISTS user_roles_role_idx ON user_roles (role, user_id);

CREATE TABLE IF NOT EXISTS sessions (
    token_hash text PRIMARY KEY CHECK (char_length(token_hash) = 64),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- Every session of a user (sign out everywhere, account deletion).
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);
