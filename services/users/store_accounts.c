/* store_accounts.c: the SQL of accounts and sessions: accounts, sign-in,
 * sessions, mailed tokens and what applying them changes, profile and password. The throttle
 * itself is store_throttle.c's. */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#include "events.h"
#include "mail.h"

static const char sql_user_insert[] =
    "INSERT INTO users (id, name, email, email_normalized, password_hash, affiliation, orcid, "
    "                   bio, email_verified_at) "
    "VALUES ($1::uuid, $2, $3, lower(btrim($3)), $4, nullif($5, ''), nullif($6, ''), "
    "        nullif($7, ''), CASE WHEN $8 = 't' THEN now() END) "
    "RETURNING (extract(epoch FROM created_at) * 1000)::bigint";

static const char sql_user_by_email[] = "SELECT " USER_COLS ", u.password_hash FROM users u "
                                        "WHERE u.email_normalized = lower(btrim($1))";

static const char sql_user_get[] = "SELECT " USER_COLS " FROM users u WHERE u.id = $1::uuid";

static const char sql_user_hash[] = "SELECT password_hash FROM users WHERE id = $1::uuid";

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

/* ---- for the other areas, in their transactions ----------------------------------------- */

enum ej_status store_user_sessions_revoke(struct ej_db *db, const char *user_id, const char *keep,
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
                                     store_or_empty(nu->affiliation),
                                     store_or_empty(nu->orcid),
                                     store_or_empty(nu->bio),
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
                return store_fail(db, st);
        *created_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        for (size_t i = 0; i < nu->n_roles && st == EJ_OK; i++)
                st = store_role_insert(db, nu->id, nu->roles[i], nu->granted_by, err);
        if (st == EJ_OK && nu->consent_version > 0)
                st = store_consent_note(db, nu->id, (uint32_t)nu->consent_version,
                                        (uint32_t)nu->consent_version, "accept", nu->client_addr,
                                        err);
        if (st == EJ_OK && tok)
                st = token_insert(db, nu->id, tok, err);
        if (st == EJ_OK && event)
                st = ej_outbox_add(db, USERS_EVT_REGISTERED, "user.registered", nu->id,
                                   &event->base, NULL, err);
        if (st == EJ_OK)
                st = store_extras(db, act, mail, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        st = ej_db_commit(db, err);
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
                *user = store_user_from_row(a, res, 0);
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
                *user = store_user_from_row(a, res, 0);
        PQclear(res);
        return st;
}

enum ej_status store_user_password_hash(struct ej_db *db, struct ej_arena *a, const char *id,
                                        char **hash, struct ej_err *err)
{
        return store_user_text(db, a, sql_user_hash, id, hash, err);
}

/* ---- sign-in ---------------------------------------------------------------------------- */

enum ej_status store_login_ok(struct ej_db *db, const char *token_hash, const char *user_id,
                              long long ttl_ms, const char *email_key, const struct users_act *act,
                              int64_t *expires_at_ms, struct ej_err *err)
{
        char ttl[24];
        const char *params[] = {token_hash, user_id, ttl};
        const char *uid[] = {user_id};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_session_insert, 3, params, &res, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        *expires_at_ms = ej_db_int64(res, 0, 0);
        PQclear(res);
        st = ej_db_exec(db, sql_last_login, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = store_throttle_forget(db, USERS_TB_LOGIN_ACCOUNT, email_key, err);
        if (st == EJ_OK && act)
                st = store_activity_add(db, act, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
                st = store_activity_add(db, &a, err);
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
                out->roles = store_split_csv(a, ej_db_val(res, 0, 2), &out->n_roles);
                out->consent_required = store_val_true(res, 0, 3);
                out->required_consent_version = (uint32_t)ej_db_int64(res, 0, 4);
                out->verified = store_val_true(res, 0, 5);
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
                st = store_extras(db, act, mail, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
                return store_fail(db, st);
        if (PQntuples(res) == 0 || strcmp(ej_db_val(res, 0, 1), purpose) != 0)
                st = ej_err_set(err, EJ_ERR_INVALID, "token",
                                "this link is not valid (a newer one may have replaced it)");
        else if (store_val_true(res, 0, 2))
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this link has already been used");
        else if (store_val_true(res, 0, 3))
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this link has expired");
        if (st != EJ_OK) {
                PQclear(res);
                return store_fail(db, st);
        }
        *user_id = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        data = ej_arena_strdup(a, ej_db_val(res, 0, 4));
        PQclear(res);
        uid[0] = *user_id;
        act.actor_id = *user_id;
        act.user_id = *user_id;
        st = ej_db_exec(db, sql_token_use, 1, params, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);

        if (strcmp(purpose, "verify_email") == 0) {
                act.kind = "verify_email";
                st = store_exec_count(db, sql_mark_verified, 1, uid, &rows, err);
        } else if (strcmp(purpose, "password_reset") == 0 || strcmp(purpose, "invitation") == 0) {
                const char *pp[] = {*user_id, password_hash};
                bool reset = strcmp(purpose, "password_reset") == 0;

                act.kind = reset ? "password_reset" : "invitation_accepted";
                st = store_exec_count(db, sql_password_update, 2, pp, &rows, err);
                if (st == EJ_OK)
                        st = ej_db_exec(db, sql_mark_verified, 1, uid, NULL, err);
                if (st == EJ_OK && !reset && rows > 0)
                        st = store_invitations_accept_link(db, *user_id, data, err);
                if (st == EJ_OK && reset)
                        st = store_user_sessions_revoke(db, *user_id, NULL, err);
        } else if (strcmp(purpose, "email_change") == 0) {
                const char *ep[] = {*user_id, data};

                act.kind = "email_changed";
                st = store_exec_count(db, sql_email_move, 2, ep, &rows, err);
                if (st == EJ_ERR_CONFLICT)
                        ej_err_set(err, st, "email",
                                   "another account now uses this e-mail address");
        } else if (strcmp(purpose, "erasure") == 0) {
                act.kind = "erasure";
                act.client_addr = NULL;
                rows = 1;
                st = store_erase_in_tx(db, a, *user_id, *user_id, err);
        } else {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "unknown token purpose %s", purpose);
        }
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_INVALID, "token", "this account no longer exists");
        if (st == EJ_OK)
                st = store_activity_add(db, &act, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        st = ej_db_commit(db, err);
        if (st == EJ_ERR_CONFLICT && strcmp(purpose, "email_change") == 0)
                ej_err_set(err, st, "email", "another account now uses this e-mail address");
        return st;
}

enum ej_status store_profile_update(struct ej_db *db, const char *user_id, const char *name,
                                    const char *affiliation, const char *orcid, const char *bio,
                                    const char *theme, const struct users_act *act,
                                    struct ej_err *err)
{
        const char *params[] = {user_id, name, affiliation, orcid, bio, theme};

        return store_update_with_activity(db, sql_profile_update, 6, params, act, err);
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
        st = store_exec_count(db, sql_password_update, 2, params, &rows, err);
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        if (st == EJ_OK)
                st = store_user_sessions_revoke(db, user_id, keep_token_hash, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
                return store_fail(db, st);
        return ej_db_commit(db, err);
}
