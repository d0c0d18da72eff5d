#include "users.h"

#include <stdio.h>
#include <string.h>

#include "events.h"

/* Every statement of the users service. Values only through parameters; each text is prepared
 * once per connection (ej_db caches by address). Times travel as epoch milliseconds. */

static const char sql_user_insert[] =
    "INSERT INTO users (id, name, email, email_normalized, password_hash) "
    "VALUES ($1::uuid, $2, $3, lower(btrim($3)), $4) "
    "RETURNING (extract(epoch FROM created_at) * 1000)::bigint";

static const char sql_role_grant[] = "INSERT INTO user_roles (user_id, role) VALUES ($1::uuid, $2) "
                                     "ON CONFLICT DO NOTHING";

static const char sql_user_by_email[] =
    "SELECT u.id, u.name, u.email, (extract(epoch FROM u.created_at) * 1000)::bigint, "
    "       coalesce((SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r "
    "                 WHERE r.user_id = u.id), ''), "
    "       u.password_hash "
    "FROM users u WHERE u.email_normalized = lower(btrim($1)) AND u.disabled_at IS NULL";

static const char sql_user_get[] =
    "SELECT u.id, u.name, u.email, (extract(epoch FROM u.created_at) * 1000)::bigint, "
    "       coalesce(string_agg(r.role, ',' ORDER BY r.role), '') "
    "FROM users u LEFT JOIN user_roles r ON r.user_id = u.id "
    "WHERE u.id = $1::uuid GROUP BY u.id";

static const char sql_session_insert[] =
    "INSERT INTO sessions (token_hash, user_id, expires_at) "
    "VALUES ($1, $2::uuid, now() + $3::bigint * interval '1 millisecond') "
    "RETURNING (extract(epoch FROM expires_at) * 1000)::bigint";

static const char sql_session_revoke[] =
    "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL";

static const char sql_session_principal[] =
    "SELECT s.user_id, (extract(epoch FROM s.expires_at) * 1000)::bigint, "
    "       coalesce((SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r "
    "                 WHERE r.user_id = s.user_id), '') "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "  AND u.disabled_at IS NULL";

/* Splits the comma-separated `csv` into an array of arena strings. */
static char **split_roles(struct ej_arena *a, const char *csv, size_t *n_out)
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

/* Builds a User from columns id, name, email, created_at_ms, roles starting at column 0. */
static Ej__Users__User *user_from_row(struct ej_arena *a, const PGresult *res)
{
        Ej__Users__User *u = ej_arena_alloc(a, sizeof(*u));

        ej__users__user__init(u);
        u->id = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        u->name = ej_arena_strdup(a, ej_db_val(res, 0, 1));
        u->email = ej_arena_strdup(a, ej_db_val(res, 0, 2));
        u->created_at_ms = ej_db_int64(res, 0, 3);
        u->roles = split_roles(a, ej_db_val(res, 0, 4), &u->n_roles);
        return u;
}

enum ej_status store_user_create(struct ej_db *db, const char *id, const char *name,
                                 const char *email, const char *password_hash, const char *role,
                                 const Ej__Users__UserRegistered *event, int64_t *created_at_ms,
                                 struct ej_err *err)
{
        const char *user_params[] = {id, name, email, password_hash};
        const char *role_params[] = {id, role};
        PGresult *res = NULL;
        enum ej_status st;

        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_user_insert, 4, user_params, &res, err);
        if (st == EJ_ERR_CONFLICT) {
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
                goto out_rollback;
        }
        if (st != EJ_OK)
                goto out_rollback;
        *created_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        res = NULL;
        st = ej_db_exec(db, sql_role_grant, 2, role_params, NULL, err);
        if (st != EJ_OK)
                goto out_rollback;
        st =
            ej_outbox_add(db, USERS_EVT_REGISTERED, "user.registered", id, &event->base, NULL, err);
        if (st != EJ_OK)
                goto out_rollback;
        st = ej_db_commit(db, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        return st;
out_rollback:
        ej_db_rollback(db);
        return st;
}

enum ej_status store_user_by_email(struct ej_db *db, struct ej_arena *a, const char *email,
                                   Ej__Users__User **user, char **password_hash, struct ej_err *err)
{
        const char *params[] = {email};
        PGresult *res = NULL;
        enum ej_status st;

        *user = NULL;
        *password_hash = NULL;
        st = ej_db_exec(db, sql_user_by_email, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0) {
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "email", "no account with this e-mail");
        } else {
                *user = user_from_row(a, res);
                *password_hash = ej_arena_strdup(a, ej_db_val(res, 0, 5));
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
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, NULL, "no such user");
        else
                *user = user_from_row(a, res);
        PQclear(res);
        return st;
}

enum ej_status store_session_create(struct ej_db *db, const char *token_hash, const char *user_id,
                                    long long ttl_ms, int64_t *expires_at_ms, struct ej_err *err)
{
        char ttl[24];
        const char *params[] = {token_hash, user_id, ttl};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
        st = ej_db_exec(db, sql_session_insert, 3, params, &res, err);
        if (st != EJ_OK)
                return st;
        *expires_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_session_revoke(struct ej_db *db, const char *token_hash, struct ej_err *err)
{
        const char *params[] = {token_hash};

        return ej_db_exec(db, sql_session_revoke, 1, params, NULL, err);
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
                out->roles = split_roles(a, ej_db_val(res, 0, 2), &out->n_roles);
        }
        PQclear(res);
        return st;
}
