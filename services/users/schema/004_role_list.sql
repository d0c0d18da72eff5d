-- Each account's roles also as a sorted array on its row, kept by a trigger on user_roles, so
-- the users list filters by role with one GIN index (combined with the search's trigram index
-- in one bitmap) instead of probing user_roles row by row.

ALTER TABLE users ADD COLUMN IF NOT EXISTS role_list text[] NOT NULL DEFAULT '{}';

CREATE OR REPLACE FUNCTION users_sync_role_list() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    uid uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        uid := OLD.user_id;
    ELSE
        uid := NEW.user_id;
    END IF;
    UPDATE users SET role_list = coalesce((SELECT array_agg(r.role ORDER BY r.role)
                                           FROM user_roles r WHERE r.user_id = uid), '{}')
     WHERE id = uid;
    IF TG_OP = 'UPDATE' AND OLD.user_id <> NEW.user_id THEN
        UPDATE users SET role_list = coalesce((SELECT array_agg(r.role ORDER BY r.role)
                                               FROM user_roles r WHERE r.user_id = OLD.user_id),
                                              '{}')
         WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS user_roles_sync_role_list ON user_roles;
CREATE TRIGGER user_roles_sync_role_list AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION users_sync_role_list();

UPDATE users u SET role_list = coalesce((SELECT array_agg(r.role ORDER BY r.role)
                                         FROM user_roles r WHERE r.user_id = u.id), '{}');
CREATE INDEX IF NOT EXISTS users_role_list_idx ON users USING gin (role_list);
ANALYZE users;
