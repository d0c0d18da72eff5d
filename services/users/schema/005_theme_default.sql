-- New accounts follow the system's light or dark preference until the person picks a theme:
-- theme '' means "follow the system". Existing rows keep what they hold (a stored 'light'
-- cannot tell a choice from the old default).

ALTER TABLE users ALTER COLUMN theme SET DEFAULT '';
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_theme_check;
ALTER TABLE users ADD CONSTRAINT users_theme_check
    CHECK (theme IN ('', 'dark', 'light', 'journal', 'modern', 'elegant', 'high-contrast'));
