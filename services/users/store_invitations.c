/* store_invitations.c: all SQL of invitations to a role (schema/006_invitations.sql): opening
 * one, the invitee's pending list, and accepting (the role is granted then, never before) or
 * declining. */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#include "ids.h"

/* Whether the person holds the role already. */
static const char sql_has_role[] =
    "SELECT 1 FROM user_roles WHERE user_id = $1::uuid AND role = $2";

/* Opens the pending invitation of (person, role), or renews the one that is pending: the latest
 * inviter and a fresh expiry. Returns its id. */
static const char sql_open[] =
    "INSERT INTO invitations (id, user_id, role, invited_by, expires_at) "
    "VALUES ($1::uuid, $2::uuid, $3, nullif($4, '')::uuid, "
    "        now() + $5::bigint * interval '1 second') "
    "ON CONFLICT (user_id, role) WHERE state = 'pending' DO UPDATE "
    "SET invited_by = EXCLUDED.invited_by, created_at = now(), expires_at = EXCLUDED.expires_at "
    "RETURNING id";

#define INVITATION_COLS                                                                            \
        "i.id, i.role, coalesce(u.name, ''), "                                                     \
        "(extract(epoch FROM i.created_at) * 1000)::bigint, "                                      \
        "(extract(epoch FROM i.expires_at) * 1000)::bigint, i.state "

static const char sql_mine[] =
    "SELECT " INVITATION_COLS "FROM invitations i LEFT JOIN users u ON u.id = i.invited_by "
    "WHERE i.user_id = $1::uuid AND i.state = 'pending' "
    "AND i.expires_at > now() ORDER BY i.created_at, i.id";

/* The caller's pending invitation `$1`, locked; the last column tells whether it has expired. */
static const char sql_lock_one[] =
    "SELECT i.role, coalesce(i.invited_by::text, ''), i.expires_at <= now() "
    "FROM invitations i WHERE i.id = $1::uuid AND i.user_id = $2::uuid AND i.state = 'pending' "
    "FOR UPDATE";

/* The pending, unexpired invitations of `$1` that a mailed link accepts: the one it names ($2),
 * or all of them when it names none (the account the invitation made). */
static const char sql_lock_for_link[] =
    "SELECT i.id, i.role, coalesce(i.invited_by::text, '') FROM invitations i "
    "WHERE i.user_id = $1::uuid AND i.state = 'pending' AND i.expires_at > now() "
    "AND ($2 = '' OR i.id::text = $2) ORDER BY i.created_at FOR UPDATE";

static const char sql_answer[] =
    "UPDATE invitations SET state = $2, answered_at = now() WHERE id = $1::uuid";

static const char sql_get[] =
    "SELECT " INVITATION_COLS "FROM invitations i LEFT JOIN users u ON u.id = i.invited_by "
    "WHERE i.id = $1::uuid";

static const char sql_forget[] = "DELETE FROM invitations WHERE user_id = $1::uuid";

/* An Invitation from the INVITATION_COLS columns of `row`. */
static Ej__Users__Invitation *invitation_from_row(struct ej_arena *a, const PGresult *res, int row)
{
        Ej__Users__Invitation *inv = ej_arena_alloc(a, sizeof(*inv));

        ej__users__invitation__init(inv);
        inv->id = ej_arena_strdup(a, ej_db_val(res, row, 0));
        inv->role = ej_arena_strdup(a, ej_db_val(res, row, 1));
        inv->inviter_name = ej_arena_strdup(a, ej_db_val(res, row, 2));
        inv->created_at_ms = ej_db_int64(res, row, 3);
        inv->expires_at_ms = ej_db_int64(res, row, 4);
        inv->state = ej_arena_strdup(a, ej_db_val(res, row, 5));
        return inv;
}

enum ej_status store_invitation_open(struct ej_db *db, struct ej_arena *a,
                                     const struct users_invitation_new *in,
                                     const struct users_act *act, const struct users_mail *mail,
                                     char **invitation_id, bool *already_member, struct ej_err *err)
{
        char id[EJ_UUID_LEN];
        char ttl[24];
        const char *role_p[] = {in->user_id, in->role};
        const char *open_p[] = {id, in->user_id, in->role, store_or_empty(in->invited_by), ttl};
        PGresult *res = NULL;
        enum ej_status st;

        *invitation_id = NULL;
        *already_member = false;
        ej_uuid(id);
        snprintf(ttl, sizeof(ttl), "%ld", in->ttl_s);
        st = ej_db_begin(db, err);
        if (st == EJ_OK)
                st = store_user_lock(db, NULL, in->user_id, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_has_role, 2, role_p, &res, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        *already_member = PQntuples(res) > 0;
        PQclear(res);
        res = NULL;
        if (*already_member)
                return store_fail(db, EJ_OK); /* nothing to ask: nothing written */
        st = ej_db_exec(db, sql_open, 5, open_p, &res, err);
        if (st == EJ_OK)
                *invitation_id = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        PQclear(res);
        if (st == EJ_OK)
                st = store_extras(db, act, mail, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

enum ej_status store_invitations_mine(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                      Ej__Users__Invitation ***out, size_t *n, struct ej_err *err)
{
        const char *params[] = {user_id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_mine, 1, params, &res, err);
        int rows;

        *out = NULL;
        *n = 0;
        if (st != EJ_OK)
                return st;
        rows = PQntuples(res);
        *out = ej_arena_alloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**out));
        for (int i = 0; i < rows; i++)
                (*out)[i] = invitation_from_row(a, res, i);
        *n = (size_t)rows;
        PQclear(res);
        return EJ_OK;
}

/* Marks `id` answered and, when `accept`, grants `role` on behalf of `inviter` (may be ""). */
static enum ej_status answer_in_tx(struct ej_db *db, const char *id, const char *user_id,
                                   const char *role, const char *inviter, bool accept,
                                   struct ej_err *err)
{
        const char *params[] = {id, accept ? "accepted" : "declined"};
        enum ej_status st = ej_db_exec(db, sql_answer, 2, params, NULL, err);

        if (st == EJ_OK && accept)
                st = store_role_insert(db, user_id, role, inviter, err);
        return st;
}

enum ej_status store_invitation_answer(struct ej_db *db, struct ej_arena *a, const char *id,
                                       const char *user_id, bool accept, struct users_act *act,
                                       Ej__Users__Invitation **out, struct ej_err *err)
{
        const char *lock_p[] = {id, user_id};
        const char *get_p[] = {id};
        PGresult *res = NULL;
        char *role = NULL;
        char *inviter = NULL;
        bool expired = false;
        enum ej_status st = ej_db_begin(db, err);

        *out = NULL;
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_lock_one, 2, lock_p, &res, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        if (PQntuples(res) == 0) {
                PQclear(res);
                return store_fail(db, ej_err_set(err, EJ_ERR_NOT_FOUND, "invitation_id",
                                                 "there is no such invitation waiting for you"));
        }
        role = ej_arena_strdup(a, ej_db_val(res, 0, 0));
        inviter = ej_arena_strdup(a, ej_db_val(res, 0, 1));
        expired = store_val_true(res, 0, 2);
        PQclear(res);
        res = NULL;
        if (expired && accept)
                return store_fail(db, ej_err_set(err, EJ_ERR_CONFLICT, "invitation_id",
                                                 "this invitation has expired; ask for a new one"));
        act->details = ej_arena_printf(a, "{\"role\":\"%s\"}", role);
        st = answer_in_tx(db, id, user_id, role, inviter, accept, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_get, 1, get_p, &res, err);
        if (st == EJ_OK)
                *out = invitation_from_row(a, res, 0);
        PQclear(res);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

enum ej_status store_invitations_accept_link(struct ej_db *db, const char *user_id,
                                             const char *invitation_id, struct ej_err *err)
{
        const char *params[] = {user_id, store_or_empty(invitation_id)};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_lock_for_link, 2, params, &res, err);

        for (int i = 0; st == EJ_OK && i < PQntuples(res); i++)
                st = answer_in_tx(db, ej_db_val(res, i, 0), user_id, ej_db_val(res, i, 1),
                                  ej_db_val(res, i, 2), true, err);
        PQclear(res);
        return st;
}

enum ej_status store_invitations_forget(struct ej_db *db, const char *user_id, struct ej_err *err)
{
        const char *params[] = {user_id};

        return ej_db_exec(db, sql_forget, 1, params, NULL, err);
}
