/* store_consent.c: the SQL of consent and GDPR: the consent texts and ledger, site texts (the
 * privacy policy), the personal-data export and erasure (anonymisation). */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#include "events.h"
#include "ids.h"

static const char sql_consent_state[] =
    "SELECT EXISTS (SELECT 1 FROM consent_versions c "
    "               WHERE c.required AND c.version > coalesce(u.consent_version, 0)), "
    "       coalesce((SELECT max(c.version) FROM consent_versions c), 0) "
    "FROM users u WHERE u.id = $1::uuid";

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
    "  'invitations', coalesce((SELECT json_agg(json_build_object('role', i.role, "
    "      'state', i.state, 'created_at', i.created_at, 'expires_at', i.expires_at, "
    "      'answered_at', i.answered_at) ORDER BY i.created_at) "
    "      FROM invitations i WHERE i.user_id = u.id), '[]'::json), "
    "  'activity', coalesce((SELECT json_agg(json_build_object('kind', a.kind, 'at', a.at, "
    "      'by_self', a.actor_id = u.id, 'about_self', a.user_id = u.id, "
    "      'client_addr', a.client_addr, 'details', a.details) ORDER BY a.id) "
    "      FROM activity a WHERE a.user_id = u.id OR a.actor_id = u.id), '[]'::json)"
    ")::text FROM users u WHERE u.id = $1::uuid";

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

/* ---- for the other areas, in their transactions ----------------------------------------- */

static enum ej_status ledger_add(struct ej_db *db, const char *user_id, uint32_t version,
                                 const char *action, const char *addr, struct ej_err *err)
{
        char v[16];
        const char *params[] = {user_id, v, action, store_or_empty(addr)};

        snprintf(v, sizeof(v), "%u", version);
        return ej_db_exec(db, sql_ledger_insert, 4, params, NULL, err);
}

enum ej_status store_consent_note(struct ej_db *db, const char *user_id, uint32_t version,
                                  uint32_t ledger_version, const char *action, const char *addr,
                                  struct ej_err *err)
{
        char v[16];
        const char *params[] = {user_id, v};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(v, sizeof(v), "%u", version);
        st = ej_db_exec(db, sql_consent_set, 2, params, &res, err);
        if (st == EJ_OK && PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        PQclear(res);
        if (st == EJ_OK)
                st = ledger_add(db, user_id, ledger_version, action, addr, err);
        return st;
}

/* ---- consent, site texts, export -------------------------------------------------------- */

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
                *required = store_val_true(res, 0, 0);
                *current = (uint32_t)ej_db_int64(res, 0, 1);
        }
        PQclear(res);
        return st;
}

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
                out->required = store_val_true(res, 0, 2);
                out->published_at_ms = ej_db_int64(res, 0, 3);
        }
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_consent_publish(struct ej_db *db, const char *markdown, bool required,
                                     const char *actor_id, const struct users_act *act,
                                     uint32_t *version, struct ej_err *err)
{
        const char *params[] = {markdown, required ? "t" : "f", store_or_empty(actor_id)};
        PGresult *res = NULL;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_consent_lock, 0, NULL, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_consent_insert, 3, params, &res, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        *version = (uint32_t)ej_db_int64(res, 0, 0);
        PQclear(res);
        st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
                return store_fail(db, st);
        if (PQntuples(res) == 0) {
                PQclear(res);
                return store_fail(db, ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user"));
        }
        prior = (uint32_t)ej_db_int64(res, 0, 0);
        PQclear(res);
        if (version > 0 && version != prior)
                return store_fail(db, ej_err_set(err, EJ_ERR_CONFLICT, "version",
                                                 prior == 0 ? "no consent text is published"
                                                            : "a newer consent text was published; "
                                                              "read and accept version %u",
                                                 prior));
        if (version == 0 && prior == 0) {
                /* Nothing accepted: nothing to withdraw. */
                ej_db_rollback(db);
                return EJ_OK;
        }
        st = store_consent_note(db, user_id, version, version > 0 ? version : prior,
                                version > 0 ? "accept" : "withdraw", client_addr, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
        const char *params[] = {key, markdown, store_or_empty(actor_id)};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_text_set, 3, params, NULL, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

enum ej_status store_export_json(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                 char **json, struct ej_err *err)
{
        return store_user_text(db, a, sql_export, user_id, json, err);
}

/* ---- erasure ---------------------------------------------------------------------------- */

enum ej_status store_erase_in_tx(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                 const char *actor_id, struct ej_err *err)
{
        char uuid[EJ_UUID_LEN];
        char placeholder[80];
        char *email_key = NULL;
        const char *uid[] = {user_id};
        const char *erase[] = {user_id, placeholder};
        Ej__Users__UserErased ev = EJ__USERS__USER_ERASED__INIT;
        enum ej_status st;

        st = store_user_lock(db, a, user_id, &email_key, err);
        if (st == EJ_OK)
                st = store_admin_guard(db, user_id, err);
        if (st != EJ_OK)
                return st;
        ej_uuid(uuid);
        snprintf(placeholder, sizeof(placeholder), "deleted-%s@invalid", uuid);
        st = ej_db_exec(db, sql_erase_user, 2, erase, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_roles, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = store_user_sessions_revoke(db, user_id, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_tokens, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = store_invitations_forget(db, user_id, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_activity, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_erase_ledger, 1, uid, NULL, err);
        if (st == EJ_OK)
                st = store_throttle_forget(db, USERS_TB_LOGIN_ACCOUNT, email_key, err);
        ev.user_id = (char *)(uintptr_t)user_id;
        if (st == EJ_OK)
                st = ej_outbox_add(db, USERS_EVT_ERASED, "user.erased", actor_id, &ev.base, NULL,
                                   err);
        return st;
}

enum ej_status store_user_erase(struct ej_db *db, const char *user_id, const char *actor_id,
                                const struct users_act *act, struct ej_err *err)
{
        struct ej_arena *a = ej_arena_create(0);
        enum ej_status st = ej_db_begin(db, err);

        if (st == EJ_OK)
                st = store_erase_in_tx(db, a, user_id, actor_id, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st == EJ_OK)
                st = ej_db_commit(db, err);
        else
                ej_db_rollback(db);
        ej_arena_destroy(a);
        return st;
}
