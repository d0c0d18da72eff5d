-- The files service: one row per stored blob (content-addressed, shared) and one per upload.

CREATE TABLE IF NOT EXISTS blobs (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- set by the sweeper when no file refers to the blob any more; the bytes are deleted once
    -- it has stayed unreferenced for a grace period (an upload of the same content clears it)
    orphaned_at timestamptz
);

CREATE INDEX IF NOT EXISTS blobs_orphaned_idx ON blobs (orphaned_at) WHERE orphaned_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS files (
    id uuid PRIMARY KEY,
    sha256 text NOT NULL REFERENCES blobs (sha256),
    size bigint NOT NULL CHECK (size >= 0),
    content_type text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    owner_id text NOT NULL,
    resource text NOT NULL DEFAULT '',
    purpose text NOT NULL DEFAULT '',
    public boolean NOT NULL DEFAULT false,
    blind_of uuid REFERENCES files (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    attached_at timestamptz
);

-- GDPR export and "my uploads"
CREATE INDEX IF NOT EXISTS files_owner_idx ON files (owner_id, created_at);
-- the sweeper of unattached uploads
CREATE INDEX IF NOT EXISTS files_unattached_idx ON files (created_at) WHERE resource = '';
-- is a blob still referenced?
CREATE INDEX IF NOT EXISTS files_sha256_idx ON files (sha256);
-- one anonymised copy per source
CREATE UNIQUE INDEX IF NOT EXISTS files_blind_of_idx ON files (blind_of) WHERE blind_of IS NOT NULL;
