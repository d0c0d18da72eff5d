/* store_admin.c: the SQL of administration: role grants and revocations (never the last active
 * admin), admin edits and deactivation, the users list and the activity log (both built per
 * request for their filters), and the benchmark's synthetic users. */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "str.h"

static const char sql_role_grant[] =
    "INSERT INTO user_roles (user_id, role, granted_by) "
    "VALUES ($1::uuid, $2, nullif($3, '')::uuid) ON CONFLICT DO NOTHING";

static const char sql_user_lock[] =
    "SELECT email_normalized FROM users WHERE id = $1::uuid AND erased_at IS NULL FOR UPDATE";

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

/* A cheap prepared statement: running it lets ej_db reset a lost connection. */
static const char sql_probe[] = "SELECT 1";

/* ---- for the other areas, in their transactions ----------------------------------------- */

enum ej_status store_user_lock(struct ej_db *db, struct ej_arena *a, const char *user_id,
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

enum ej_status store_admin_guard(struct ej_db *db, const char *user_id, struct ej_err *err)
{
        const char *params[] = {user_id};
        PGresult *res = NULL;
        enum ej_status st = ej_db_exec(db, sql_admin_lock, 0, NULL, NULL, err);

        if (st == EJ_OK)
                st = ej_db_exec(db, sql_admin_count, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (store_val_true(res, 0, 1) && ej_db_int64(res, 0, 0) == 0)
                st = ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                "this is the last active admin; make someone else an admin first");
        PQclear(res);
        return st;
}

enum ej_status store_role_insert(struct ej_db *db, const char *user_id, const char *role,
                                 const char *granted_by, struct ej_err *err)
{
        const char *params[] = {user_id, role, store_or_empty(granted_by)};

        return ej_db_exec(db, sql_role_grant, 3, params, NULL, err);
}

/* ---- admin changes ---------------------------------------------------------------------- */

enum ej_status store_user_admin_update(struct ej_db *db, const char *user_id, const char *name,
                                       const char *email, const char *affiliation,
                                       const char *orcid, const char *bio,
                                       const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, name, email, affiliation, orcid, bio};

        return store_update_with_activity(db, sql_admin_update, 6, params, act, err);
}

enum ej_status store_role_grant(struct ej_db *db, const char *user_id, const char *role,
                                const char *granted_by, const struct users_act *act,
                                struct ej_err *err)
{
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = store_user_lock(db, NULL, user_id, NULL, err);
        if (st == EJ_OK)
                st = store_role_insert(db, user_id, role, granted_by, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

enum ej_status store_role_revoke(struct ej_db *db, const char *user_id, const char *role,
                                 const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, role};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = store_user_lock(db, NULL, user_id, NULL, err);
        if (st == EJ_OK && strcmp(role, "admin") == 0)
                st = store_admin_guard(db, user_id, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_role_revoke, 2, params, NULL, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

enum ej_status store_user_set_active(struct ej_db *db, const char *user_id, bool active,
                                     const struct users_act *act, struct ej_err *err)
{
        const char *params[] = {user_id, active ? "t" : "f"};
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = store_user_lock(db, NULL, user_id, NULL, err);
        if (st == EJ_OK && !active)
                st = store_admin_guard(db, user_id, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_set_active, 2, params, NULL, err);
        if (st == EJ_OK && !active)
                st = store_user_sessions_revoke(db, user_id, NULL, err);
        if (st == EJ_OK)
                st = store_extras(db, act, NULL, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
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
                st = ej_db_exec(db, sql_probe, 0, NULL, NULL, err);
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

/* Decodes a cursor of `sort`; false when it is not one of ours or belongs to another sort. A
 * cursor is the client's text: its key is checked here as SQL would take it (UTF-8 text, a
 * created-time within EJ_TIME_MS_MAX), so a forged one is refused before the query, never by
 * PostgreSQL. */
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
        if (!ej_utf8_valid(*key, strlen(*key)))
                return false;
        if (strcmp(sort, "created") == 0) {
                char *end = NULL;
                long long us;

                errno = 0;
                us = strtoll(*key, &end, 10);
                if (end == *key || *end != '\0' || errno == ERANGE || us < 0 ||
                    us > EJ_TIME_MS_MAX * 1000)
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
        /* The client's cursor is checked before any statement runs. */
        if (q->cursor[0] &&
            (!cursor_decode(a, q->cursor, q->sort, &ckey, &cid) || !ej_uuid_valid(cid)))
                return ej_err_set(err, EJ_ERR_INVALID, "page.cursor",
                                  "this paging cursor is not valid (it belongs to another list or "
                                  "sort order, or was altered): start again from the first page");
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
                (*users)[i] = store_user_from_row(a, res, i);
        *n = (size_t)rows;
out:
        PQclear(res);
        ej_buf_free(&where);
        ej_buf_free(&keyset);
        ej_buf_free(&sql);
        return st;
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
                long long c;

                errno = 0;
                c = strtoll(cursor, &end, 10);
                if (end == cursor || *end != '\0' || errno == ERANGE || c <= 0) {
                        ej_buf_free(&sql);
                        return ej_err_set(err, EJ_ERR_INVALID, "page.cursor",
                                          "this paging cursor is not valid (it was altered): "
                                          "start again from the first page");
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
                return store_fail(db, st);
        st = ej_db_commit(db, err);
        /* Fresh statistics and visibility maps, so the first pages are planned and read as
         * they will be in steady state. */
        if (st == EJ_OK)
                st = ej_db_exec_simple(db, "VACUUM ANALYZE users", err);
        if (st == EJ_OK)
                st = ej_db_exec_simple(db, "VACUUM ANALYZE user_roles", err);
        return st;
}
