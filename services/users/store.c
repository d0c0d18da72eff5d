#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "ids.h"
#include "mail.h"
#include "str.h"

/* Every statement of the users service. Values only through parameters; each static text is
 * prepared once per connection (ej_db caches by address). The two lists whose filters vary
 * (users, activity) are built per request and run unprepared, so each is planned for its
 * actual filters. Times travel as epoch milliseconds. */

/* The columns user_from_row reads, from `users u`. */
#define USER_COLS                                                                                  \
        "u.id, u.name, u.email, (extract(epoch FROM u.created_at) * 1000)::bigint, "               \
        "coalesce((SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r "              \
        "          WHERE r.user_id = u.id), ''), "                                                 \
        "coalesce(u.affiliation, ''), coalesce(u.orcid, ''), coalesce(u.bio, ''), u.theme, "       \
        "u.email_verified_at IS NOT NULL, u.disabled_at IS NOT NULL, "                             \
        "coalesce(u.consent_version, 0), coalesce(u.pending_email, ''), "                          \
        "coalesce((extract(epoch FROM u.last_login_at) * 1000)::bigint, 0), "                      \
        "u.erased_at IS NOT NULL, u.password_hash <> '!' "
#define USER_NCOLS 16

static const char sql_user_insert[] =
    "INSERT INTO users (id, name, email, email_normalized, password_hash, affiliation, orcid, "
    "                   bio, email_verified_at) "
    "VALUES ($1::uuid, $2, $3, lower(btrim($3)), $4, nullif($5, ''), nullif($6, ''), "
    "        nullif($7, ''), CASE WHEN $8 = 't' THEN now() END) "
    "RETURNING (extract(epoch FROM created_at) * 1000)::bigint";

static const char sql_role_grant[] =
    "INSERT INTO user_roles (user_id, role, granted_by) "
    "VALUES ($1::uuid, $2, nullif($3, '')::uuid) ON CONFLICT DO NOTHING";

static const char sql_user_by_email[] = "SELECT " USER_COLS ", u.password_hash FROM users u "
                                        "WHERE u.email_normalized = lower(btrim($1))";

static const char sql_user_get[] = "SELECT " USER_COLS " FROM users u WHERE u.id = $1::uuid";

static const char sql_user_hash[] = "SELECT password_hash FROM users WHERE id = $1::uuid";

static const char sql_user_lock[] =
    "SELECT email_normalized FROM users WHERE id = $1::uuid AND erased_at IS NULL FOR UPDATE";

static const char sql_consent_state[] =
    "SELECT EXISTS (SELECT 1 FROM consent_versions c "
    "               WHERE c.required AND c.version > coalesce(u.consent_version, 0)), "
    "       coalesce((SELECT max(c.version) FROM consent_versions c), 0) "
    "FROM users u WHERE u.id = $1::uuid";

static const char sql_activity_insert[] =
    "INSERT INTO activity (kind, actor_id, user_id, client_addr, details) "
    "VALUES ($1, nullif($2, '')::uuid, nullif($3, '')::uuid, nullif($4, ''), "
    "        coalesce($5::jsonb, '{}'::jsonb))";

static const char sql_throttle[] =
    "WITH a AS (SELECT count(*) AS n, min(at) AS first FROM login_failures "
    "           WHERE email_key = $1 AND at > now() - $3::bigint * interval '1 second'), "
    "     b AS (SELECT count(*) AS n, min(at) AS first FROM login_failures "
    "           WHERE $2 <> '' AND client_addr = $2 "
    "             AND at > now() - $3::bigint * interval '1 second') "
    "SELECT a.n, b.n, "
    "  coalesce(ceil(extract(epoch FROM a.first + $3::bigint * interval '1 second' - now())), 1), "
    "  coalesce(ceil(extract(epoch FROM b.first + $3::bigint * interval '1 second' - now())), 1) "
    "FROM a, b";

static const char sql_failure_insert[] =
    "INSERT INTO login_failures (email_key, client_addr) VALUES ($1, $2)";

static const char sql_failure_purge[] =
    "DELETE FROM login_failures WHERE at < now() - interval '1 day'";

static const char sql_failure_forget[] = "DELETE FROM login_failures WHERE email_key = $1";

static const char sql_session_insert[] =
    "INSERT INTO sessions (token_hash, user_id, expires_at) "
    "VALUES ($1, $2::uuid, now() + $3::bigint * interval '1 millisecond') "
    "RETURNING (extract(epoch FROM expires_at) * 1000)::bigint";

static const char sql_last_login[] = "UPDATE users SET last_login_at = now() WHERE id = $1::uuid";

static const char sql_session_revoke[] =
    "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL "
    "RETURNING user_id";

static const char sql_sessions_revoke_user[] =
    "UPDATE sessions SET revoked_at = now() "
    "WHERE user_id = $1::uuid AND revoked_at IS NULL AND token_hash <> coalesce($2, '')";

static const char sql_session_principal[] =
    "SELECT s.user_id, (extract(epoch FROM s.expires_at) * 1000)::bigint, "
    "       coalesce((SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r "
    "                 WHERE r.user_id = s.user_id), ''), "
    "       EXISTS (SELECT 1 FROM consent_versions c "
    "               WHERE c.required AND c.version > coalesce(u.consent_version, 0)), "
    "       coalesce((SELECT max(c.version) FROM consent_versions c), 0), "
    "       u.email_verified_at IS NOT NULL, u.name, u.theme "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "  AND u.disabled_at IS NULL AND u.erased_at IS NULL";

static const char sql_token_drop_unused[] =
    "DELETE FROM user_tokens WHERE user_id = $1::uuid AND purpose = $2 AND used_at IS NULL";

static const char sql_token_insert[] =
    "INSERT INTO user_tokens (token_hash, user_id, purpose, data, expires_at) "
    "VALUES ($1, $2::uuid, $3, $4, now() + $5::bigint * interval '1 second')";

static const char sql_token_lock[] =
    "SELECT user_id, purpose, used_at IS NOT NULL, expires_at <= now(), coalesce(data, '') "
    "FROM user_tokens WHERE token_hash = $1 FOR UPDATE";

static const char sql_token_use[] = "UPDATE user_tokens SET used_at = now() WHERE token_hash = $1";

static const char sql_pending_email[] =
    "UPDATE users SET pending_email = $2, updated_at = now() WHERE id = $1::uuid";

static const char sql_mark_verified[] =
    "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_password_update[] = "UPDATE users SET password_hash = $2, updated_at = now() "
                                          "WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_email_move[] =
    "UPDATE users SET email = $2, email_normalized = lower(btrim($2)), pending_email = NULL, "
    "       email_verified_at = now(), updated_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_profile_update[] =
    "UPDATE users SET name = $2, affiliation = nullif($3, ''), orcid = nullif($4, ''), "
    "       bio = nullif($5, ''), theme = coalesce(nullif($6, ''), theme), updated_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_admin_update[] =
    "UPDATE users SET name = $2, email = $3, email_normalized = lower(btrim($3)), "
    "       email_verified_at = CASE WHEN email_normalized = lower(btrim($3)) "
    "                                THEN email_verified_at END, "
    "       affiliation = nullif($4, ''), orcid = nullif($5, ''), bio = nullif($6, ''), "
    "       updated_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_role_revoke[] =
    "DELETE FROM user_roles WHERE user_id = $1::uuid AND role = $2";

static const char sql_admin_lock[] = "SELECT pg_advisory_xact_lock(hashtext('ej.users.admins'))";

static const char sql_admin_count[] =
    "SELECT count(*) FILTER (WHERE r.user_id <> $1::uuid), "
    "       coalesce(bool_or(r.user_id = $1::uuid), false) "
    "FROM user_roles r JOIN users u ON u.id = r.user_id "
    "WHERE r.role = 'admin' AND u.disabled_at IS NULL AND u.erased_at IS NULL";

static const char sql_set_active[] =
    "UPDATE users SET disabled_at = CASE WHEN $2 = 't' THEN NULL "
    "                                    ELSE coalesce(disabled_at, now()) END, "
    "       updated_at = now() "
    "WHERE id = $1::uuid";

static const char sql_erase_user[] =
    "UPDATE users SET name = 'Deleted user', email = $2, email_normalized = $2, "
    "       password_hash = '!', affiliation = NULL, orcid = NULL, bio = NULL, "
    "       pending_email = NULL, consent_version = NULL, consent_at = NULL, "
    "       erased_at = now(), disabled_at = coalesce(disabled_at, now()), updated_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL";
static const char sql_erase_roles[] = "DELETE FROM user_roles WHERE user_id = $1::uuid";
static const char sql_erase_tokens[] = "DELETE FROM user_tokens WHERE user_id = $1::uuid";
static const char sql_erase_activity[] =
    "UPDATE activity SET client_addr = NULL "
    "WHERE (user_id = $1::uuid OR actor_id = $1::uuid) AND client_addr IS NOT NULL";
static const char sql_erase_ledger[] =
    "UPDATE consent_ledger SET client_addr = NULL WHERE user_id = $1::uuid";

static const char sql_consent_current[] =
    "SELECT version, markdown, required, (extract(epoch FROM published_at) * 1000)::bigint "
    "FROM consent_versions ORDER BY version DESC LIMIT 1";

static const char sql_consent_lock[] = "SELECT pg_advisory_xact_lock(hashtext('ej.users.consent'))";

static const char sql_consent_insert[] =
    "INSERT INTO consent_versions (version, markdown, required, published_by) "
    "SELECT coalesce(max(version), 0) + 1, $1, $2 = 't', nullif($3, '')::uuid "
    "FROM consent_versions RETURNING version";

static const char sql_consent_max[] = "SELECT coalesce(max(version), 0) FROM consent_versions";

static const char sql_consent_set[] =
    "UPDATE users SET consent_version = nullif($2::integer, 0), consent_at = now() "
    "WHERE id = $1::uuid AND erased_at IS NULL RETURNING 1";

static const char sql_consent_user[] =
    "SELECT coalesce(consent_version, 0) FROM users WHERE id = $1::uuid AND erased_at IS NULL";

static const char sql_ledger_insert[] =
    "INSERT INTO consent_ledger (user_id, version, action, client_addr) "
    "VALUES ($1::uuid, $2::integer, $3, nullif($4, ''))";

static const char sql_consent_stats[] =
    "SELECT count(*), "
    "       count(*) FILTER (WHERE u.consent_version = (SELECT max(version) "
    "                                                  FROM consent_versions)), "
    "       coalesce((SELECT max(version) FROM consent_versions), 0) "
    "FROM users u WHERE u.erased_at IS NULL AND u.disabled_at IS NULL";

static const char sql_text_get[] =
    "SELECT markdown, (extract(epoch FROM updated_at) * 1000)::bigint FROM site_texts "
    "WHERE key = $1";

static const char sql_text_set[] =
    "INSERT INTO site_texts (key, markdown, updated_by) VALUES ($1, $2, nullif($3, '')::uuid) "
    "ON CONFLICT (key) DO UPDATE SET markdown = EXCLUDED.markdown, updated_at = now(), "
    "                                updated_by = EXCLUDED.updated_by";

static const char sql_export[] =
    "SELECT json_build_object("
    "  'account', json_build_object('id', u.id, 'name', u.name, 'email', u.email, "
    "      'affiliation', u.affiliation, 'orcid', u.orcid, 'bio', u.bio, 'theme', u.theme, "
    "      'email_verified_at', u.email_verified_at, 'pending_email', u.pending_email, "
    "      'deactivated_at', u.disabled_at, 'erased_at', u.erased_at, "
    "      'created_at', u.created_at, 'updated_at', u.updated_at, "
    "      'last_login_at', u.last_login_at, 'consent_version', u.consent_version, "
    "      'consent_at', u.consent_at), "
    "  'roles', coalesce((SELECT json_agg(json_build_object('role', r.role, "
    "      'granted_at', r.granted_at) ORDER BY r.role) FROM user_roles r "
    "      WHERE r.user_id = u.id), '[]'::json), "
    "  'sessions', coalesce((SELECT json_agg(json_build_object('created_at', s.created_at, "
    "      'expires_at', s.expires_at, 'revoked_at', s.revoked_at) ORDER BY s.created_at) "
    "      FROM sessions s WHERE s.user_id = u.id), '[]'::json), "
    "  'consents', coalesce((SELECT json_agg(json_build_object('version', c.version, "
    "      'action', c.action, 'at', c.at, 'client_addr', c.client_addr) ORDER BY c.id) "
    "      FROM consent_ledger c WHERE c.user_id = u.id), '[]'::json), "
    "  'activity', coalesce((SELECT json_agg(json_build_object('kind', a.kind, 'at', a.at, "
    "      'by_self', a.actor_id = u.id, 'about_self', a.user_id = u.id, "
    "      'client_addr', a.client_addr, 'details', a.details) ORDER BY a.id) "
    "      FROM activity a WHERE a.user_id = u.id OR a.actor_id = u.id), '[]'::json)"
    ")::text FROM users u WHERE u.id = $1::uuid";

static const char sql_bench_users[] =
    "INSERT INTO users (id, name, email, email_normalized, password_hash, affiliation, "
    "                   email_verified_at, created_at) "
    "SELECT gen_random_uuid(), n.name, n.email, n.email, $2, n.aff, now(), "
    "       now() - g * interval '1 minute' "
    "FROM generate_series(1, $1::integer) g, "
    "LATERAL (SELECT (ARRAY['Ada','Grace','Alan','Emmy','Carl','Marie','Niels','Rosalind', "
    "                       'Srinivasa','Sofia','Kurt','Hedy','Paul','Lise','Richard','Chien', "
    "                       'Emil','Ines','Tomas','Mei'])[1 + g % 20] || ' ' || "
    "                (ARRAY['Lovelace','Hopper','Turing','Noether','Gauss','Curie','Bohr', "
    "                       'Franklin','Ramanujan','Kovalevskaya','Goedel','Lamarr','Dirac', "
    "                       'Meitner','Feynman','Wu','Artin','Ortega','Novak','Tanaka', "
    "                       'Okafor','Silva','Nakamura','Petrov','Haddad'])[1 + (g / 20) % 25] "
    "                || ' ' || g AS name, "
    "                'bench-' || g || '@bench.easyjournal.org' AS email, "
    "                'Institute of ' || (ARRAY['Physics','Chemistry','Biology','Mathematics', "
    "                 'History','Linguistics','Economics','Medicine'])[1 + g % 8] || ' ' || "
    "                (g % 400) AS aff) n "
    "ON CONFLICT (email_normalized) DO NOTHING";

static const char sql_bench_roles[] =
    "INSERT INTO user_roles (user_id, role) "
    "SELECT u.id, r.role FROM users u, "
    "LATERAL (SELECT 'author' AS role UNION ALL "
    "         SELECT 'reviewer' WHERE hashtext(u.email_normalized) % 5 = 0 UNION ALL "
    "         SELECT 'editor' WHERE hashtext(u.email_normalized) % 97 = 0) r "
    "WHERE u.email_normalized LIKE 'bench-%@bench.easyjournal.org' "
    "ON CONFLICT DO NOTHING";

/* ---- helpers ---------------------------------------------------------------------------- */

/* Splits the comma-separated `csv` into an array of arena strings. */
static char **split_csv(struct ej_arena *a, const char *csv, size_t *n_out)
{
        size_t n = 0;
        char **out;
        const char *p = csv;

        *n_out = 0;
        if (csv[0] == '\0')
                return NULL;
        n = 1;
        for (const char *q = csv; *q; q++)
                n += *q == ',';
        out = ej_arena_alloc(a, n * sizeof(*out));
        for (size_t i = 0; i < n; i++) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                out[i] = ej_arena_strndup(a, p, len);
                p = end ? end + 1 : p + len;
        }
        *n_out = n;
        return out;
}

static bool val_true(const PGresult *res, int row, int col)
{
        return ej_db_val(res, row, col)[0] == 't';
}

/* Builds a User from the USER_COLS columns of `row`. */
static Ej__Users__User *user_from_row(struct ej_arena *a, const PGresult *res, int row)
{
        Ej__Users__User *u = ej_arena_alloc(a, sizeof(*u));

        ej__users__user__init(u);
        u->id = ej_arena_strdup(a, ej_db_val(res, row, 0));
        u->name = ej_arena_strdup(a, ej_db_val(res, row, 1));
        u->email = ej_arena_strdup(a, ej_db_val(res, row, 2));
        u->created_at_ms = ej_db_int64(res, row, 3);
        u->roles = split_csv(a, ej_db_val(res, row, 4), &u->n_roles);
        u->affiliation = ej_arena_strdup(a, ej_db_val(res, row, 5));
        u->orcid = ej_arena_strdup(a, ej_db_val(res, row, 6));
        u->bio = ej_arena_strdup(a, ej_db_val(res, row, 7));
        u->theme = ej_arena_strdup(a, ej_db_val(res, row, 8));
        u->verified = val_true(res, row, 9);
        u->deactivated = val_true(res, row, 10);
        u->consent_version = (uint32_t)ej_db_int64(res, row, 11);
        u->pending_email = ej_arena_strdup(a, ej_db_val(res, row, 12));
        u->last_login_at_ms = ej_db_int64(res, row, 13);
        u->erased = val_true(res, row, 14);
        u->has_password = val_true(res, row, 15);
        return u;
}

static const char *or_empty(const char *s)
{
        return s ? s : "";
}

static enum ej_status activity_add(struct ej_db *db, const struct users_act *act,
                                   struct ej_err *err)
{
        const char *params[] = {act->kind, or_empty(act->actor_id), or_empty(act->user_id),
                                or_empty(act->client_addr), act->details};

        return ej_db_exec(db, sql_activity_insert, 5, params, NULL, err);
}

/* The activity row and the mail that go with a change, in its transaction. */
static enum ej_status extras(struct ej_db *db, const struct users_act *act,
                             const struct users_mail *mail, struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        if (act)
                st = activity_add(db, act, err);
        if (st == EJ_OK && mail)
                st = ej_mail_enqueue(db, mail->tpl, mail->to, mail->vars, err);
        return st;
}

static enum ej_status commit(struct ej_db *db, struct ej_err *err)
{
        return ej_db_commit(db, err);
}

static enum ej_status fail(struct ej_db *db, enum ej_status st)
{
        ej_db_rollback(db);
        return st;
}

/* Rows changed by the last UPDATE/DELETE in `res`. */
static long affected(const PGresult *res)
{
        return strtol(PQcmdTuples((PGresult *)(uintptr_t)res), NULL, 10);
}

static enum ej_status exec_count(struct ej_db *db, const char *sql, int n, const char *const *p,
                                 long *rows, struct ej_err *err)
{
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql, n, p, &res, err);

        if (st != EJ_OK)
                return st;
        *rows = affected(res);
        PQclear(res);
        return EJ_OK;
}

/* Locks the user row (not erased); EJ_ERR_NOT_FOUND otherwise. *email_key, when wanted,
 * receives the normalised e-mail. */
static enum ej_status lock_user(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                char **email_key, struct ej_err *err)
{
        const char *params[] = {user_id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_user_lock, 1, params, &res, err);

        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        else if (email_key)
                *email_key = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        PQclear(res);
        return st;
}

/* Refuses (EJ_ERR_CONFLICT) to take away the last active admin: `user_id` holds the admin role
 * and no other active account does. Serialised by an advisory lock for the transaction. */
static enum ej_status admin_guard(struct ej_db *db, const char *user_id, struct ej_err *err)
{
        const char *params[] = {user_id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_admin_lock, 0, NULL, NULL, err);

        if (st == EJ_OK)
                st = ej_db_exec(db, sql_admin_count, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (val_true(res, 0, 1) && ej_db_int64(res, 0, 0) == 0)
                st = ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                "this is the last active admin; make someone else an admin first");
        PQclear(res);
        return st;
}

static enum ej_status revoke_sessions(struct ej_db *db, const char *user_id, const char *keep,
                                      struct ej_err *err)
{
        const char *params[] = {user_id, keep};

        return ej_db_exec(db, sql_sessions_revoke_user, 2, params, NULL, err);
}

/* ---- accounts --------------------------------------------------------------------------- */

static enum ej_status token_insert(struct ej_db *db, const char *user_id,
                                   const struct users_token *tok, struct ej_err *err)
{
        char ttl[24];
        const char *drop[] = {user_id, tok->purpose};
        const char *params[] = {tok->hash, user_id, tok->purpose, tok->data, ttl};
        enum ej_status st;

        snprintf(ttl, sizeof(ttl), "%ld", tok->ttl_s);
        st = ej_db_exec(db, sql_token_drop_unused, 2, drop, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_token_insert, 5, params, NULL, err);
        return st;
}

static enum ej_status ledger_add(struct ej_db *db, const char *user_id, uint32_t version,
                                 const char *action, const char *addr, struct ej_err *err)
{
        char v[16];
        const char *params[] = {user_id, v, action, or_empty(addr)};

        snprintf(v, sizeof(v), "%u", version);
        return ej_db_exec(db, sql_ledger_insert, 4, params, NULL, err);
}

enum ej_status store_user_insert(struct ej_db *db, const struct users_new *nu,
                                 const struct users_token *tok,
                                 const Ej__Users__UserRegistered *event,
                                 const struct users_act *act, const struct users_mail *mail,
                                 int64_t *created_at_ms, struct ej_err *err)
{
        const char *user_params[] = {nu->id,
                                     nu->name,
                                     nu->email,
                                     nu->password_hash,
                                     or_empty(nu->affiliation),
                                     or_empty(nu->orcid),
                                     or_empty(nu->bio),
                                     nu->verified ? "t" : "f"};
        PGresult *res = NULL;
        enum ej_status st;

        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_user_insert, 8, user_params, &res, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        if (st != EJ_OK)
                return fail(db, st);
        *created_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        for (size_t i = 0; i < nu->n_roles && st == EJ_OK; i++) {
                const char *role_params[] = {nu->id, nu->roles[i], or_empty(nu->granted_by)};

                st = ej_db_exec(db, sql_role_grant, 3, role_params, NULL, err);
        }
        if (st == EJ_OK && nu->consent_version > 0) {
                char v[16];
                const char *cp[] = {nu->id, v};

                snprintf(v, sizeof(v), "%d", nu->consent_version);
                st = ej_db_exec(db, sql_consent_set, 2, cp, NULL, err);
                if (st == EJ_OK)
                        st = ledger_add(db, nu->id, (uint32_t)nu->consent_version, "accept",
                                        nu->client_addr, err);
        }
        if (st == EJ_OK && tok)
                st = token_insert(db, nu->id, tok, err);
        if (st == EJ_OK && event)
                st = ej_outbox_add(db, USERS_EVT_REGISTERED, "user.registered", nu->id,
                                   &event->base, NULL, err);
        if (st == EJ_OK)
                st = extras(db, act, mail, err);
        if (st != EJ_OK)
                return fail(db, st);
        st = commit(db, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        return st;
}

enum ej_status store_user_by_email(struct ej_db *db, struct ej_arena *a, const char *email,
                                   Ej__Users__User **user, char **password_hash, struct ej_err *err)
{
        const char *params[] = {email};
        PGresult *res = NULL;
        enum ej_status st;

        *user = NULL;
        if (password_hash)
                *password_hash = NULL;
        st = ej_db_exec(db, sql_user_by_email, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0) {
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "email", "no account with this e-mail");
        } else {
                *user = user_from_row(a, res, 0);
                if (password_hash)
                        *password_hash = ej_arena_strdup(a, ej_db_val(res, 0, USER_NCOLS));
        }
        PQclear(res);
        return st;
}

enum ej_status store_user_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              Ej__Users__User **user, struct ej_err *err)
{
        const char *params[] = {id};
        PGresult *res = NULL;
        enum ej_status st;

        *user = NULL;
        st = ej_db_exec(db, sql_user_get, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        else
                *user = user_from_row(a, res, 0);
        PQclear(res);
        return st;
}

/* Runs `sql`, which takes a user id and returns one text value, into the arena. */
static enum ej_status user_text(struct ej_db *db, struct ej_arena *a, const char *sql,
                                const char *id, char **out, struct ej_err *err)
{
        const char *params[] = {id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql, 1, params, &res, err);

        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        else
                *out = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        PQclear(res);
        return st;
}

enum ej_status store_user_password_hash(struct ej_db *db, struct ej_arena *a, const char *id,
                                        char **hash, struct ej_err *err)
{
        return user_text(db, a, sql_user_hash, id, hash, err);
}

enum ej_status store_user_consent_state(struct ej_db *db, const char *id, bool *required,
                                        uint32_t *current, struct ej_err *err)
{
        const char *params[] = {id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_consent_state, 1, params, &res, err);

        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0) {
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        } else {
                *required = val_true(res, 0, 0);
                *current = (uint32_t)ej_db_int64(res, 0, 1);
        }
        PQclear(res);
        return st;
}

/* ---- sign-in ---------------------------------------------------------------------------- */

enum ej_status store_login_throttle(struct ej_db *db, const char *email_key, const char *addr,
                                    long window_s, long max_account, long max_addr,
                                    int *retry_after_s, struct ej_err *err)
{
        char w[24];
        const char *params[] = {email_key, or_empty(addr), w};
        PGresult *res = NULL;
        long long retry = 0;
        enum ej_status st;

        snprintf(w, sizeof(w), "%ld", window_s);
        st = ej_db_exec(db, sql_throttle, 3, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (ej_db_int64(res, 0, 0) >= max_account)
                retry = ej_db_int64(res, 0, 2);
        if (ej_db_int64(res, 0, 1) >= max_addr && ej_db_int64(res, 0, 3) > retry)
                retry = ej_db_int64(res, 0, 3);
        if (ej_db_int64(res, 0, 0) >= max_account || ej_db_int64(res, 0, 1) >= max_addr) {
                if (retry < 1)
                        retry = 1;
                *retry_after_s = (int)retry;
                st = ej_err_set(err, EJ_ERR_TOO_MANY, NULL,
                                "too many failed sign-ins; try again in %lld seconds", retry);
        }
        PQclear(res);
        return st;
}

enum ej_status store_login_failed(struct ej_db *db, const char *email_key, const char *addr,
                                  const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {email_key, or_empty(addr)};
        enum ej_status st;

        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_failure_insert, 2, params, NULL, err);
        if (st == EJ_OK && act)
                st = activity_add(db, act, err);
        if (st == EJ_OK && randombytes_uniform(100) == 0)
                st = ej_db_exec(db, sql_failure_purge, 0, NULL, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_login_ok(struct ej_db *db, const char *token_hash, const char *user_id,
                              long long ttl_ms, const char *email_key, const struct users_act *act,
                              int64_t *expires_at_ms, struct ej_err *err)
{
        char ttl[24];
        const char *params[] = {token_hash, user_id, ttl};
        const char *uid[] = {user_id};
        const char *key[] = {email_key};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_session_insert, 3, params, &res, err);
        if (st != EJ_OK)
                return fail(db, st);
        *expires_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        st = ej_db_exec(db, sql_last_login, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_failure_forget, 1, key, NULL, err);
        if (st == EJ_OK && act)
                st = activity_add(db, act, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_session_revoke(struct ej_db *db, const char *token_hash,
                                    const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {token_hash};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_session_revoke, 1, params, &res, err);

        if (st != EJ_OK)
                return st;
        if (act && PQntuples(res) > 0) {
                struct users_act a = *act;

                a.user_id = ej_db_val(res, 0, 0);
                a.actor_id = a.user_id;
                st = activity_add(db, &a, err);
        }
        PQclear(res);
        return st;
}

enum ej_status store_session_principal(struct ej_db *db, struct ej_arena *a, const char *token_hash,
                                       Ej__Users__Principal *out, struct ej_err *err)
{
        const char *params[] = {token_hash};
        PGresult *res = NULL;
        enum ej_status st;

        st = ej_db_exec(db, sql_session_principal, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0) {
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, NULL, "no live session");
        } else {
                out->user_id = ej_arena_strdup(a, ej_db_val(res, 0, 0));
                out->expires_at_ms = ej_db_int64(res, 0, 1);
                out->roles = split_csv(a, ej_db_val(res, 0, 2), &out->n_roles);
                out->consent_required = val_true(res, 0, 3);
                out->required_consent_version = (uint32_t)ej_db_int64(res, 0, 4);
                out->verified = val_true(res, 0, 5);
                out->name = ej_arena_strdup(a, ej_db_val(res, 0, 6));
                out->theme = ej_arena_strdup(a, ej_db_val(res, 0, 7));
        }
        PQclear(res);
        return st;
}

/* ---- mailed tokens ---------------------------------------------------------------------- */

enum ej_status store_token_issue(struct ej_db *db, const char *user_id,
                                 const struct users_token *tok, const struct users_act *act,
                                 const struct users_mail *mail, struct ej_err *err)
{
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = token_insert(db, user_id, tok, err);
        if (st == EJ_OK && strcmp(tok->purpose, "email_change") == 0) {
                const char *params[] = {user_id, tok->data};

                st = ej_db_exec(db, sql_pending_email, 2, params, NULL, err);
        }
        if (st == EJ_OK)
                st = extras(db, act, mail, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

/* The anonymisation of store_user_erase, inside the caller's transaction. */
static enum ej_status erase_in_tx(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                  const char *actor_id, struct ej_err *err)
{
        char uuid[EJ_UUID_LEN];
        char placeholder[80];
        char *email_key = NULL;
        const char *uid[] = {user_id};
        const char *erase[] = {user_id, placeholder};
        const char *key[1];
        Ej__Users__UserErased ev = EJ__USERS__USER_ERASED__INIT;
        enum ej_status st;

        st = lock_user(db, a, user_id, &email_key, err);
        if (st == EJ_OK)
                st = admin_guard(db, user_id, err);
        if (st != EJ_OK)
                return st;
        ej_uuid(uuid);
        snprintf(placeholder, sizeof(placeholder), "deleted-%s@invalid", uuid);
        key[0] = email_key;
        st = ej_db_exec(db, sql_erase_user, 2, erase, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_roles, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = revoke_sessions(db, user_id, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_tokens, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_activity, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_ledger, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_failure_forget, 1, key, NULL, err);
        ev.user_id = (char *)(uintptr_t)user_id;
        if (st == EJ_OK)
                st = ej_outbox_add(db, USERS_EVT_ERASED, "user.erased", actor_id, &ev.base, NULL,
                                   err);
        return st;
}

enum ej_status store_token_apply(struct ej_db *db, struct ej_arena *a, const char *token_hash,
                                 const char *purpose, const char *password_hash,
                                 const char *client_addr, char **user_id, struct ej_err *err)
{
        const char *params[] = {token_hash};
        PGresult *res = NULL;
        struct users_act act = {NULL, NULL, NULL, client_addr, NULL};
        const char *uid[1];
        char *data;
        long rows = 0;
        enum ej_status st;

        *user_id = NULL;
        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_token_lock, 1, params, &res, err);
        if (st != EJ_OK)
                return fail(db, st);
        if (PQntuples(res) == 0 || strcmp(ej_db_val(res, 0, 1), purpose) != 0)
                st = ej_err_set(err, EJ_ERR_INVALID, "token",
                                "this link is not valid (a newer one may have replaced it)");
        else if (val_true(res, 0, 2))
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this link has already been used");
        else if (val_true(res, 0, 3))
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this link has expired");
        if (st != EJ_OK) {
                PQclear(res);
                return fail(db, st);
        }
        *user_id = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        data = ej_arena_strdup(a, ej_db_val(res, 0, 4));
        PQclear(res);
        uid[0] = *user_id;
        act.actor_id = *user_id;
        act.user_id = *user_id;
        st = ej_db_exec(db, sql_token_use, 1, params, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);

        if (strcmp(purpose, "verify_email") == 0) {
                act.kind = "verify_email";
                st = exec_count(db, sql_mark_verified, 1, uid, &rows, err);
        } else if (strcmp(purpose, "password_reset") == 0 || strcmp(purpose, "invitation") == 0) {
                const char *pp[] = {*user_id, password_hash};
                bool reset = strcmp(purpose, "password_reset") == 0;

                act.kind = reset ? "password_reset" : "invitation_accepted";
                st = exec_count(db, sql_password_update, 2, pp, &rows, err);
                if (st == EJ_OK)
                        st = ej_db_exec(db, sql_mark_verified, 1, uid, NULL, err);
                if (st == EJ_OK && reset)
                        st = revoke_sessions(db, *user_id, NULL, err);
        } else if (strcmp(purpose, "email_change") == 0) {
                const char *ep[] = {*user_id, data};

                act.kind = "email_changed";
                st = exec_count(db, sql_email_move, 2, ep, &rows, err);
                if (st == EJ_ERR_CONFLICT)
                        ej_err_set(err, st, "email",
                                   "another account now uses this e-mail address");
        } else if (strcmp(purpose, "erasure") == 0) {
                act.kind = "erasure";
                act.client_addr = NULL;
                rows = 1;
                st = erase_in_tx(db, a, *user_id, *user_id, err);
        } else {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "unknown token purpose %s", purpose);
        }
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this account no longer exists");
        if (st == EJ_OK)
                st = activity_add(db, &act, err);
        if (st != EJ_OK)
                return fail(db, st);
        st = commit(db, err);
        if (st == EJ_ERR_CONFLICT && strcmp(purpose, "email_change") == 0)
                ej_err_set(err, st, "email", "another account now uses this e-mail address");
        return st;
}

/* ---- profile and admin changes ---------------------------------------------------------- */

/* Runs one UPDATE on a user with its activity row in a transaction; EJ_ERR_NOT_FOUND when no
 * row changed. */
static enum ej_status update_with_activity(struct ej_db *db, const char *sql, int n,
                                           const char *const *params, const struct users_act *act,
                                           struct ej_err *err)
{
        long rows = 0;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = exec_count(db, sql, n, params, &rows, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        st = commit(db, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        return st;
}

enum ej_status store_profile_update(struct ej_db *db, const char *user_id, const char *name,
                                    const char *affiliation, const char *orcid, const char *bio,
                                    const char *theme, const struct users_act *act,
                                    struct ej_err *err)
{
        const char *params[] = {user_id, name, affiliation, orcid, bio, theme};

        return update_with_activity(db, sql_profile_update, 6, params, act, err);
}

enum ej_status store_user_admin_update(struct ej_db *db, const char *user_id, const char *name,
                                       const char *email, const char *affiliation,
                                       const char *orcid, const char *bio,
                                       const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, name, email, affiliation, orcid, bio};

        return update_with_activity(db, sql_admin_update, 6, params, act, err);
}

enum ej_status store_password_set(struct ej_db *db, const char *user_id, const char *password_hash,
                                  const char *keep_token_hash, const struct users_act *act,
                                  struct ej_err *err)
{
        const char *params[] = {user_id, password_hash};
        long rows = 0;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = exec_count(db, sql_password_update, 2, params, &rows, err);
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        if (st == EJ_OK)
                st = revoke_sessions(db, user_id, keep_token_hash, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_role_grant(struct ej_db *db, const char *user_id, const char *role,
                                const char *granted_by, const struct users_act *act,
                                struct ej_err *err)
{
        const char *params[] = {user_id, role, or_empty(granted_by)};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = lock_user(db, NULL, user_id, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_role_grant, 3, params, NULL, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_role_revoke(struct ej_db *db, const char *user_id, const char *role,
                                 const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, role};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = lock_user(db, NULL, user_id, NULL, err);
        if (st == EJ_OK && strcmp(role, "admin") == 0)
                st = admin_guard(db, user_id, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_role_revoke, 2, params, NULL, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_user_set_active(struct ej_db *db, const char *user_id, bool active,
                                     const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, active ? "t" : "f"};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = lock_user(db, NULL, user_id, NULL, err);
        if (st == EJ_OK && !active)
                st = admin_guard(db, user_id, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_set_active, 2, params, NULL, err);
        if (st == EJ_OK && !active)
                st = revoke_sessions(db, user_id, NULL, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_user_erase(struct ej_db *db, const char *user_id, const char *actor_id,
                                const struct users_act *act, struct ej_err *err)
{
        struct ej_arena *a = ej_arena_create(0);
        enum ej_status st = ej_db_begin(db, err);

        if (st == EJ_OK)
                st = erase_in_tx(db, a, user_id, actor_id, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st == EJ_OK)
                st = commit(db, err);
        else
                ej_db_rollback(db);
        ej_arena_destroy(a);
        return st;
}

/* ---- lists ------------------------------------------------------------------------------ */

/* Runs SQL built for this request (not prepared: planned for the actual filters). */
static enum ej_status exec_dynamic(struct ej_db *db, const char *sql, int n,
                                   const char *const *params, PGresult **out, struct ej_err *err)
{
        PGconn *conn = ej_db_conn(db);
        PGresult *res;
        enum ej_status st;

        *out = NULL;
        if (PQstatus(conn) != CONNECTION_OK) {
                /* A cheap prepared statement lets ej_db reset the connection. */
                st = ej_db_exec(db, sql_consent_max, 0, NULL, NULL, err);
                if (st != EJ_OK)
                        return st;
        }
        res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
        if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
                *out = res;
                return EJ_OK;
        }
        if (res == NULL)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "database: %s",
                                  PQerrorMessage(conn));
        st = ej_db_status_from_result(res, err);
        if (PQstatus(conn) != CONNECTION_OK)
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "the database connection was lost");
        PQclear(res);
        return st;
}

/* Opaque cursors: base64url of "<sort>\n<key>\n<id>" (the sort they belong to, the last row's
 * sort key and id). */
static char *cursor_encode(struct ej_arena *a, const char *sort, const char *key, const char *id)
{
        char *raw = ej_arena_printf(a, "%s\n%s\n%s", sort, key, id);
        size_t len = strlen(raw);
        size_t out_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *out = ej_arena_alloc(a, out_len);

        sodium_bin2base64(out, out_len, (const unsigned char *)raw, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return out;
}

/* Decodes a cursor of `sort`; false when it is not one of ours or belongs to another sort. */
static bool cursor_decode(struct ej_arena *a, const char *cursor, const char *sort, char **key,
                          char **id)
{
        size_t n = strlen(cursor);
        unsigned char *raw = ej_arena_alloc(a, n + 1);
        size_t len = 0;
        char *nl1, *nl2;

        if (n > 1024 || sodium_base642bin(raw, n, cursor, n, NULL, &len, NULL,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
                return false;
        raw[len] = '\0';
        if (memchr(raw, '\0', len) != NULL)
                return false;
        nl1 = strchr((char *)raw, '\n');
        nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
        if (nl2 == NULL)
                return false;
        *nl1 = '\0';
        *nl2 = '\0';
        if (strcmp((char *)raw, sort) != 0)
                return false;
        *key = nl1 + 1;
        *id = nl2 + 1;
        if (strcmp(sort, "created") == 0) {
                char *end = NULL;

                (void)strtoll(*key, &end, 10);
                if (end == *key || *end != '\0')
                        return false;
        }
        return true;
}

/* `q` as a LIKE pattern matching any text containing it, lower-cased. */
static char *like_pattern(struct ej_arena *a, const char *q)
{
        struct ej_buf b = EJ_BUF_INIT;
        char *out;

        ej_buf_append_char(&b, '%');
        for (const char *p = q; *p; p++) {
                if (*p == '%' || *p == '_' || *p == '\\')
                        ej_buf_append_char(&b, '\\');
                ej_buf_append_char(&b, *p);
        }
        ej_buf_append_char(&b, '%');
        out = ej_arena_strdup(a, b.p);
        ej_buf_free(&b);
        return out;
}

/* The number of rows `where` matches, counted up to USERS_COUNT_EXACT + 1. */
static enum ej_status count_capped(struct ej_db *db, const char *where, int np,
                                   const char *const *params, uint64_t *total, struct ej_err *err)
{
        struct ej_buf sql = EJ_BUF_INIT;
        PGresult *res = NULL;
        enum ej_status st;

        ej_buf_appendf(&sql, "SELECT count(*) FROM (SELECT 1 FROM users u %s LIMIT %d) s", where,
                       USERS_COUNT_EXACT + 1);
        st = exec_dynamic(db, sql.p, np, params, &res, err);
        if (st == EJ_OK)
                *total = (uint64_t)ej_db_int64(res, 0, 0);
        PQclear(res);
        ej_buf_free(&sql);
        return st;
}

enum ej_status store_users_list(struct ej_db *db, struct ej_arena *a,
                                const struct users_list_query *q, Ej__Users__User ***users,
                                size_t *n, char **next_cursor, uint64_t *total, bool *total_exact,
                                struct ej_err *err)
{
        struct ej_buf where = EJ_BUF_INIT;
        struct ej_buf sql = EJ_BUF_INIT;
        const char *params[8];
        int np = 0;
        const char *sort_expr, *key_expr, *cmp, *dir;
        char *ckey = NULL, *cid = NULL;
        PGresult *res = NULL;
        struct ej_buf keyset = EJ_BUF_INIT;
        const char *rows_at;
        double estimate;
        bool filtered, sort_first;
        enum ej_status st;
        int rows;

        *users = NULL;
        *n = 0;
        *next_cursor = "";
        *total = 0;
        *total_exact = true;
        if (strcmp(q->sort, "email") == 0) {
                sort_expr = "u.email_normalized";
                key_expr = "u.email_normalized";
        } else if (strcmp(q->sort, "created") == 0) {
                sort_expr = "u.created_at";
                key_expr = "(extract(epoch FROM u.created_at) * 1000000)::bigint::text";
        } else {
                sort_expr = "lower(u.name)";
                key_expr = "lower(u.name)";
        }
        cmp = q->desc ? "<" : ">";
        dir = q->desc ? "DESC" : "ASC";

        ej_buf_append_c(&where, "WHERE true");
        filtered = q->query[0] || q->role[0] || q->status[0];
        if (q->query[0]) {
                char *lowered = ej_arena_strdup(a, q->query);

                for (char *p = lowered; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char)(*p - 'A' + 'a');
                params[np++] = like_pattern(a, lowered);
                ej_buf_appendf(&where, " AND u.search_text LIKE $%d", np);
        }
        if (q->role[0]) {
                params[np++] = q->role;
                ej_buf_appendf(&where, " AND u.role_list @> ARRAY[$%d]::text[]", np);
        }
        if (strcmp(q->status, "active") == 0)
                ej_buf_append_c(&where, " AND u.disabled_at IS NULL");
        else if (strcmp(q->status, "deactivated") == 0)
                ej_buf_append_c(&where, " AND u.disabled_at IS NOT NULL AND u.erased_at IS NULL");
        else if (strcmp(q->status, "unverified") == 0)
                ej_buf_append_c(&where, " AND u.email_verified_at IS NULL AND u.erased_at IS NULL");

        /* The planner's estimate of the matches decides the plan: a plan-only statement, far
         * cheaper than any count. Up to some thousands of matches (a selective search or a rare
         * role): find them first through their own indexes and sort those; the same pass counts
         * them (a window count over id and sort key only, before the cursor applies, so every
         * page shows the same total). The OFFSET 0 subquery keeps the planner from walking the
         * sort index past many non-matching rows, which is slow when the matches cluster at the
         * far end of the order. A broad filter walks the sort index instead and stops after
         * about limit / selectivity rows; it is not counted (the common trigrams of a broad
         * search make the index scan behind any count touch most of the table), its total is
         * the estimate. The unfiltered list counts exactly up to USERS_COUNT_EXACT rows, beyond
         * that the estimate, so no total counts 100,000 rows. */
        ej_buf_appendf(&sql, "EXPLAIN (FORMAT JSON) SELECT 1 FROM users u %s", where.p);
        st = exec_dynamic(db, sql.p, np, params, &res, err);
        if (st != EJ_OK)
                goto out;
        rows_at = strstr(ej_db_val(res, 0, 0), "\"Plan Rows\":");
        estimate = rows_at ? strtod(rows_at + strlen("\"Plan Rows\":"), NULL) : 0;
        PQclear(res);
        res = NULL;
        sort_first = filtered && estimate <= (double)USERS_SORT_MATCHES_MAX;
        if (!filtered) {
                st = count_capped(db, where.p, np, params, total, err);
                if (st != EJ_OK)
                        goto out;
        }
        *total_exact = !filtered && *total <= USERS_COUNT_EXACT;
        if (!*total_exact && estimate > (double)*total)
                *total = (uint64_t)estimate;

        if (q->cursor[0]) {
                if (!cursor_decode(a, q->cursor, q->sort, &ckey, &cid) || !ej_uuid_valid(cid)) {
                        st = ej_err_set(err, EJ_ERR_INVALID, "page.cursor",
                                        "this paging cursor is not valid");
                        goto out;
                }
                params[np++] = ckey;
                params[np++] = cid;
                if (strcmp(q->sort, "created") == 0)
                        ej_buf_appendf(&keyset,
                                       " AND (%s, %s) %s (timestamptz 'epoch' + "
                                       "$%d::bigint * interval '1 microsecond', $%d::uuid)",
                                       sort_first ? "w.k" : sort_expr, sort_first ? "w.id" : "u.id",
                                       cmp, np - 1, np);
                else
                        ej_buf_appendf(&keyset, " AND (%s, %s) %s ($%d, $%d::uuid)",
                                       sort_first ? "w.k" : sort_expr, sort_first ? "w.id" : "u.id",
                                       cmp, np - 1, np);
        }
        ej_buf_reset(&sql);
        if (sort_first)
                ej_buf_appendf(&sql,
                               "SELECT " USER_COLS
                               ", %s, m.n FROM (SELECT w.id, w.k, w.n FROM (SELECT s.id, s.k, "
                               "count(*) OVER () AS n FROM (SELECT u.id, %s AS k FROM users u %s "
                               "OFFSET 0) s) w WHERE true%s ORDER BY w.k %s, w.id %s LIMIT %u) m "
                               "JOIN users u ON u.id = m.id ORDER BY m.k %s, m.id %s",
                               key_expr, sort_expr, where.p, keyset.p ? keyset.p : "", dir, dir,
                               q->limit + 1, dir, dir);
        else
                ej_buf_appendf(
                    &sql,
                    "SELECT " USER_COLS ", %s FROM users u %s%s ORDER BY %s %s, u.id %s LIMIT %u",
                    key_expr, where.p, keyset.p ? keyset.p : "", sort_expr, dir, dir, q->limit + 1);
        st = exec_dynamic(db, sql.p, np, params, &res, err);
        if (st != EJ_OK)
                goto out;
        rows = PQntuples(res);
        if ((unsigned)rows > q->limit) {
                rows = (int)q->limit;
                *next_cursor = cursor_encode(a, q->sort, ej_db_val(res, rows - 1, USER_NCOLS),
                                             ej_db_val(res, rows - 1, 0));
        }
        if (sort_first) {
                /* The matches' count came with the page; a page past the last match has none. */
                if (PQntuples(res) > 0)
                        *total = (uint64_t)ej_db_int64(res, 0, USER_NCOLS + 1);
                else if (q->cursor[0]) {
                        st = count_capped(db, where.p, np - 2, params, total, err);
                        if (st != EJ_OK)
                                goto out;
                        if (*total > USERS_COUNT_EXACT && estimate > (double)*total)
                                *total = (uint64_t)estimate;
                } else
                        *total = 0;
                *total_exact = *total <= USERS_COUNT_EXACT;
        } else if (filtered && !q->cursor[0] && (*next_cursor)[0] == '\0') {
                /* A broad filter whose first page holds every match after all. */
                *total = (uint64_t)rows;
                *total_exact = *total <= USERS_COUNT_EXACT;
        }
        *users = ej_arena_alloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**users));
        for (int i = 0; i < rows; i++)
                (*users)[i] = user_from_row(a, res, i);
        *n = (size_t)rows;
out:
        PQclear(res);
        ej_buf_free(&where);
        ej_buf_free(&keyset);
        ej_buf_free(&sql);
        return st;
}

enum ej_status store_activity_add(struct ej_db *db, const struct users_act *act, struct ej_err *err)
{
        return activity_add(db, act, err);
}

enum ej_status store_activity_list(struct ej_db *db, struct ej_arena *a, const char *kind,
                                   const char *user_id, int64_t from_ms, int64_t to_ms,
                                   const char *cursor, unsigned limit,
                                   Ej__Users__ActivityEntry ***entries, size_t *n,
                                   char **next_cursor, struct ej_err *err)
{
        struct ej_buf sql = EJ_BUF_INIT;
        const char *params[6];
        char from[24], to[24], cur[24];
        int np = 0;
        PGresult *res = NULL;
        enum ej_status st;
        int rows;

        *entries = NULL;
        *n = 0;
        *next_cursor = "";
        ej_buf_append_c(&sql,
                        "SELECT a.id, a.kind, coalesce(a.actor_id::text, ''), "
                        "coalesce(a.user_id::text, ''), "
                        "(extract(epoch FROM a.at) * 1000)::bigint, coalesce(a.client_addr, ''), "
                        "a.details::text, coalesce(au.name, ''), coalesce(uu.name, '') "
                        "FROM activity a LEFT JOIN users au ON au.id = a.actor_id "
                        "LEFT JOIN users uu ON uu.id = a.user_id WHERE true");
        if (kind[0]) {
                params[np++] = kind;
                ej_buf_appendf(&sql, " AND a.kind = $%d", np);
        }
        if (user_id[0]) {
                params[np++] = user_id;
                ej_buf_appendf(&sql, " AND (a.user_id = $%d::uuid OR a.actor_id = $%d::uuid)", np,
                               np);
        }
        if (from_ms > 0) {
                snprintf(from, sizeof(from), "%lld", (long long)from_ms);
                params[np++] = from;
                ej_buf_appendf(&sql,
                               " AND a.at >= timestamptz 'epoch' + $%d::bigint * "
                               "interval '1 millisecond'",
                               np);
        }
        if (to_ms > 0) {
                snprintf(to, sizeof(to), "%lld", (long long)to_ms);
                params[np++] = to;
                ej_buf_appendf(&sql,
                               " AND a.at < timestamptz 'epoch' + $%d::bigint * "
                               "interval '1 millisecond'",
                               np);
        }
        if (cursor[0]) {
                char *end = NULL;
                long long c = strtoll(cursor, &end, 10);

                if (end == cursor || *end != '\0' || c <= 0) {
                        ej_buf_free(&sql);
                        return ej_err_set(err, EJ_ERR_INVALID, "page.cursor",
                                          "this paging cursor is not valid");
                }
                snprintf(cur, sizeof(cur), "%lld", c);
                params[np++] = cur;
                ej_buf_appendf(&sql, " AND a.id < $%d::bigint", np);
        }
        ej_buf_appendf(&sql, " ORDER BY a.id DESC LIMIT %u", limit + 1);
        st = exec_dynamic(db, sql.p, np, params, &res, err);
        ej_buf_free(&sql);
        if (st != EJ_OK)
                return st;
        rows = PQntuples(res);
        if ((unsigned)rows > limit) {
                rows = (int)limit;
                *next_cursor = ej_arena_strdup(a, ej_db_val(res, rows - 1, 0));
        }
        *entries = ej_arena_alloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**entries));
        for (int i = 0; i < rows; i++) {
                Ej__Users__ActivityEntry *e = ej_arena_alloc(a, sizeof(*e));

                ej__users__activity_entry__init(e);
                e->id = ej_arena_strdup(a, ej_db_val(res, i, 0));
                e->kind = ej_arena_strdup(a, ej_db_val(res, i, 1));
                e->actor_id = ej_arena_strdup(a, ej_db_val(res, i, 2));
                e->user_id = ej_arena_strdup(a, ej_db_val(res, i, 3));
                e->at_ms = ej_db_int64(res, i, 4);
                e->client_addr = ej_arena_strdup(a, ej_db_val(res, i, 5));
                e->details = ej_arena_strdup(a, ej_db_val(res, i, 6));
                e->actor_name = ej_arena_strdup(a, ej_db_val(res, i, 7));
                e->user_name = ej_arena_strdup(a, ej_db_val(res, i, 8));
                (*entries)[i] = e;
        }
        *n = (size_t)rows;
        PQclear(res);
        return EJ_OK;
}

/* ---- consent, site texts, export -------------------------------------------------------- */

enum ej_status store_consent_current(struct ej_db *db, struct ej_arena *a,
                                     Ej__Users__ConsentVersion *out, struct ej_err *err)
{
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_consent_current, 0, NULL, &res, err);

        if (st != EJ_OK)
                return st;
        if (PQntuples(res) > 0) {
                out->version = (uint32_t)ej_db_int64(res, 0, 0);
                out->markdown = ej_arena_strdup(a, ej_db_val(res, 0, 1));
                out->required = val_true(res, 0, 2);
                out->published_at_ms = ej_db_int64(res, 0, 3);
        }
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_consent_publish(struct ej_db *db, const char *markdown, bool required,
                                     const char *actor_id, const struct users_act *act,
                                     uint32_t *version, struct ej_err *err)
{
        const char *params[] = {markdown, required ? "t" : "f", or_empty(actor_id)};
        PGresult *res = NULL;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_consent_lock, 0, NULL, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_consent_insert, 3, params, &res, err);
        if (st != EJ_OK)
                return fail(db, st);
        *version = (uint32_t)ej_db_int64(res, 0, 0);
        PQclear(res);
        st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_consent_record(struct ej_db *db, const char *user_id, uint32_t version,
                                    const char *client_addr, const struct users_act *act,
                                    struct ej_err *err)
{
        const char *uid[] = {user_id};
        PGresult *res = NULL;
        uint32_t prior;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_consent_lock, 0, NULL, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, version > 0 ? sql_consent_max : sql_consent_user,
                                version > 0 ? 0 : 1, version > 0 ? NULL : uid, &res, err);
        if (st != EJ_OK)
                return fail(db, st);
        if (PQntuples(res) == 0) {
                PQclear(res);
                return fail(db, ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user"));
        }
        prior = (uint32_t)ej_db_int64(res, 0, 0);
        PQclear(res);
        if (version > 0 && version != prior)
                return fail(db, ej_err_set(err, EJ_ERR_CONFLICT, "version",
                                           prior == 0 ? "no consent text is published"
                                                      : "a newer consent text was published; "
                                                        "read and accept version %u",
                                           prior));
        if (version == 0 && prior == 0) {
                /* Nothing accepted: nothing to withdraw. */
                ej_db_rollback(db);
                return EJ_OK;
        }
        {
                char v[16];
                const char *sp[] = {user_id, v};

                snprintf(v, sizeof(v), "%u", version);
                st = ej_db_exec(db, sql_consent_set, 2, sp, &res, err);
                if (st == EJ_OK && PQntuples(res) == 0)
                        st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
                PQclear(res);
        }
        if (st == EJ_OK)
                st = ledger_add(db, user_id, version > 0 ? version : prior,
                                version > 0 ? "accept" : "withdraw", client_addr, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_consent_stats(struct ej_db *db, Ej__Users__ConsentStats *out,
                                   struct ej_err *err)
{
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_consent_stats, 0, NULL, &res, err);

        if (st != EJ_OK)
                return st;
        out->users = (uint64_t)ej_db_int64(res, 0, 0);
        out->accepted_current = (uint64_t)ej_db_int64(res, 0, 1);
        out->current_version = (uint32_t)ej_db_int64(res, 0, 2);
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_site_text_get(struct ej_db *db, struct ej_arena *a, const char *key,
                                   char **markdown, int64_t *updated_at_ms, struct ej_err *err)
{
        const char *params[] = {key};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_text_get, 1, params, &res, err);

        if (st != EJ_OK)
                return st;
        *markdown = "";
        *updated_at_ms = 0;
        if (PQntuples(res) > 0) {
                *markdown = ej_arena_strdup(a, ej_db_val(res, 0, 0));
                *updated_at_ms = ej_db_int64(res, 0, 1);
        }
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_site_text_set(struct ej_db *db, const char *key, const char *markdown,
                                   const char *actor_id, const struct users_act *act,
                                   struct ej_err *err)
{
        const char *params[] = {key, markdown, or_empty(actor_id)};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_text_set, 3, params, NULL, err);
        if (st == EJ_OK)
                st = extras(db, act, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}

enum ej_status store_export_json(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                 char **json, struct ej_err *err)
{
        return user_text(db, a, sql_export, user_id, json, err);
}

enum ej_status store_bench_seed(struct ej_db *db, long count, const char *password_hash,
                                struct ej_err *err)
{
        char n[24];
        const char *params[] = {n, password_hash};
        enum ej_status st;

        snprintf(n, sizeof(n), "%ld", count);
        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_bench_users, 2, params, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_bench_roles, 0, NULL, NULL, err);
        if (st != EJ_OK)
                return fail(db, st);
        st = commit(db, err);
        /* Fresh statistics and visibility maps, so the first pages are planned and read as
         * they will be in steady state. */
        if (st == EJ_OK)
                st = ej_db_exec_simple(db, "VACUUM ANALYZE users", err);
        if (st == EJ_OK)
                st = ej_db_exec_simple(db, "VACUUM ANALYZE user_roles", err);
        return st;
}

enum ej_status store_user_mark_verified(struct ej_db *db, const char *user_id, struct ej_err *err)
{
        const char *params[] = {user_id};

        return ej_db_exec(db, sql_mark_verified, 1, params, NULL, err);
}

enum ej_status store_mail_queue(struct ej_db *db, const struct users_mail *mail, struct ej_err *err)
{
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_mail_enqueue(db, mail->tpl, mail->to, mail->vars, err);
        if (st != EJ_OK)
                return fail(db, st);
        return commit(db, err);
}
