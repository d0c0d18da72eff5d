-- Invitations to a role. Nothing is granted when someone is invited: the invitation waits until
-- the person accepts it (signed in, or by choosing a password through the mailed link when the
-- invitation made the account) or declines it. At most one pending invitation per person and
-- role; once roles belong to a journal, its id joins that key and the role's.

CREATE TABLE IF NOT EXISTS invitations (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,   -- the invitee
    role        text NOT NULL CHECK (role IN ('author', 'reviewer', 'editor', 'admin')),
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'accepted', 'declined')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    answered_at timestamptz
);
-- One pending invitation per person and role; also serves "my pending invitations".
CREATE UNIQUE INDEX IF NOT EXISTS invitations_pending_idx
    ON invitations (user_id, role) WHERE state = 'pending';
