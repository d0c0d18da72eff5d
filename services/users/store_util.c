/* store_util.c: what the store files share (store_internal.h): rows into messages, the activity
 * row and mail that go with a change, transactions and row counts. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "mail.h"

static const char sql_activity_insert[] =
    "INSERT INTO activity (kind, actor_id, user_id, client_addr, details) "
    "VALUES ($1, nullif($2, '')::uuid, nullif($3, '')::uuid, nullif($4, ''), "
    "        coalesce($5::jsonb, '{}'::jsonb))";

/* ---- helpers ---------------------------------------------------------------------------- */

char **store_split_csv(struct ej_arena *a, const char *csv, size_t *n_out)
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

bool store_val_true(const PGresult *res, int row, int col)
{
        return ej_db_val(res, row, col)[0] == 't';
}

Ej__Users__User *store_user_from_row(struct ej_arena *a, const PGresult *res, int row)
{
        Ej__Users__User *u = ej_arena_alloc(a, sizeof(*u));

        ej__users__user__init(u);
        u->id = ej_arena_strdup(a, ej_db_val(res, row, 0));
        u->name = ej_arena_strdup(a, ej_db_val(res, row, 1));
        u->email = ej_arena_strdup(a, ej_db_val(res, row, 2));
        u->created_at_ms = ej_db_int64(res, row, 3);
        u->roles = store_split_csv(a, ej_db_val(res, row, 4), &u->n_roles);
        u->affiliation = ej_arena_strdup(a, ej_db_val(res, row, 5));
        u->orcid = ej_arena_strdup(a, ej_db_val(res, row, 6));
        u->bio = ej_arena_strdup(a, ej_db_val(res, row, 7));
        u->theme = ej_arena_strdup(a, ej_db_val(res, row, 8));
        u->verified = store_val_true(res, row, 9);
        u->deactivated = store_val_true(res, row, 10);
        u->consent_version = (uint32_t)ej_db_int64(res, row, 11);
        u->pending_email = ej_arena_strdup(a, ej_db_val(res, row, 12));
        u->last_login_at_ms = ej_db_int64(res, row, 13);
        u->erased = store_val_true(res, row, 14);
        u->has_password = store_val_true(res, row, 15);
        return u;
}

const char *store_or_empty(const char *s)
{
        return s ? s : "";
}

enum ej_status store_activity_add(struct ej_db *db, const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {act->kind, store_or_empty(act->actor_id),
                                store_or_empty(act->user_id), store_or_empty(act->client_addr),
                                act->details};

        return ej_db_exec(db, sql_activity_insert, 5, params, NULL, err);
}

enum ej_status store_extras(struct ej_db *db, const struct users_act *act,
                            const struct users_mail *mail, struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        if (act)
                st = store_activity_add(db, act, err);
        if (st == EJ_OK && mail)
                st = ej_mail_enqueue(db, mail->tpl, mail->to, mail->vars, err);
        return st;
}

enum ej_status store_fail(struct ej_db *db, enum ej_status st)
{
        ej_db_rollback(db);
        return st;
}

/* Rows changed by the last UPDATE/DELETE in `res`. */
static long affected(const PGresult *res)
{
        return strtol(PQcmdTuples((PGresult *)(uintptr_t)res), NULL, 10);
}

enum ej_status store_exec_count(struct ej_db *db, const char *sql, int n, const char *const *p,
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

enum ej_status store_user_text(struct ej_db *db, struct ej_arena *a, const char *sql,
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

enum ej_status store_update_with_activity(struct ej_db *db, const char *sql, int n,
                                          const char *const *params, const struct users_act *act,
                                          struct ej_err *err)
{
        long rows = 0;
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = store_exec_count(db, sql, n, params, &rows, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        if (st == EJ_OK && rows == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "user_id", "no such user");
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        st = ej_db_commit(db, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "email", "an account with this e-mail address already exists");
        return st;
}
