/* store_throttle.c: the SQL of the shared throttle (table throttle_hits, schema/006): counting
 * a limit's hits within its window, recording hits, and taking a quota as one step serialised
 * per key across every replica. Callers name the buckets (users.h, USERS_TB_*). */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hits of one (bucket, key) within the window $3 (seconds), and the whole seconds until the
 * oldest of them leaves it. */
static const char sql_throttle_count[] =
    "SELECT count(*), "
    "  coalesce(ceil(extract(epoch FROM min(at) + $3::bigint * interval '1 second' - now())), 1) "
    "FROM throttle_hits "
    "WHERE bucket = $1 AND key = $2 AND at > now() - $3::bigint * interval '1 second'";

static const char sql_throttle_insert[] = "INSERT INTO throttle_hits (bucket, key) VALUES ($1, $2)";

static const char sql_throttle_purge[] =
    "DELETE FROM throttle_hits WHERE at < now() - interval '1 day'";

static const char sql_throttle_forget[] =
    "DELETE FROM throttle_hits WHERE bucket = $1 AND key = $2";

/* Held until the transaction ends: one taker of a (bucket, key) at a time, on every replica.
 * The two-key form keeps these locks apart from the service's one-key advisory locks. */
static const char sql_throttle_lock[] =
    "SELECT pg_advisory_xact_lock(hashtext('ej.users.throttle'), hashtext($1 || chr(10) || $2))";

static bool limit_applies(const struct users_limit *l)
{
        return l->key != NULL && l->key[0] != '\0' && l->max > 0 && l->window_s > 0;
}

/* The hits of `l` within its window into *count, the seconds until the oldest leaves into
 * *retry_s. */
static enum ej_status limit_count(struct ej_db *db, const struct users_limit *l, long long *count,
                                  long long *retry_s, struct ej_err *err)
{
        char w[24];
        const char *params[] = {l->bucket, l->key, w};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(w, sizeof(w), "%ld", l->window_s);
        st = ej_db_exec(db, sql_throttle_count, 3, params, &res, err);
        if (st != EJ_OK)
                return st;
        *count = ej_db_int64(res, 0, 0);
        *retry_s = ej_db_int64(res, 0, 1);
        PQclear(res);
        return EJ_OK;
}

/* Counts every applicable limit; *full_retry_s receives the longest wait among the full ones
 * (0: none is full). */
static enum ej_status limits_full(struct ej_db *db, const struct users_limit *lim, size_t n,
                                  long long *full_retry_s, struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        *full_retry_s = 0;
        for (size_t i = 0; i < n && st == EJ_OK; i++) {
                long long count = 0, retry = 0;

                if (!limit_applies(&lim[i]))
                        continue;
                st = limit_count(db, &lim[i], &count, &retry, err);
                if (st == EJ_OK && count >= lim[i].max) {
                        if (retry < 1)
                                retry = 1;
                        if (retry > *full_retry_s)
                                *full_retry_s = retry;
                }
        }
        return st;
}

static enum ej_status limits_record(struct ej_db *db, const struct users_limit *lim, size_t n,
                                    struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        for (size_t i = 0; i < n && st == EJ_OK; i++) {
                const char *params[2];

                if (!limit_applies(&lim[i]))
                        continue;
                params[0] = lim[i].bucket;
                params[1] = lim[i].key;
                st = ej_db_exec(db, sql_throttle_insert, 2, params, NULL, err);
        }
        if (st == EJ_OK && randombytes_uniform(100) == 0)
                st = ej_db_exec(db, sql_throttle_purge, 0, NULL, NULL, err);
        return st;
}

enum ej_status store_throttle_check(struct ej_db *db, const struct users_limit *lim, size_t n,
                                    int *retry_after_s, struct ej_err *err)
{
        long long retry = 0;
        enum ej_status st = limits_full(db, lim, n, &retry, err);

        if (st == EJ_OK && retry > 0) {
                *retry_after_s = retry > 86400 ? 86400 : (int)retry;
                st =
                    ej_err_set(err, EJ_ERR_TOO_MANY, NULL,
                               "too many failed attempts; try again in %d seconds", *retry_after_s);
        }
        return st;
}

enum ej_status store_throttle_note(struct ej_db *db, const struct users_limit *lim, size_t n,
                                   const struct users_act *act, struct ej_err *err)
{
        enum ej_status st = ej_db_begin(db, err);

        if (st != EJ_OK)
                return st;
        st = limits_record(db, lim, n, err);
        if (st == EJ_OK && act)
                st = store_activity_add(db, act, err);
        if (st != EJ_OK)
                return store_fail(db, st);
        return ej_db_commit(db, err);
}

/* Orders limits by bucket, then key: every taker locks in the same order (no deadlock). */
static int limit_cmp(const void *a, const void *b)
{
        const struct users_limit *x = *(const struct users_limit *const *)a;
        const struct users_limit *y = *(const struct users_limit *const *)b;
        int c = strcmp(x->bucket, y->bucket);

        return c != 0 ? c : strcmp(x->key, y->key);
}

enum ej_status store_throttle_take(struct ej_db *db, const struct users_limit *lim, size_t n,
                                   bool *granted, struct ej_err *err)
{
        const struct users_limit *order[USERS_LIMITS_MAX];
        size_t k = 0;
        long long retry = 0;
        enum ej_status st;

        *granted = false;
        if (n > USERS_LIMITS_MAX)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "more than %d limits at once",
                                  USERS_LIMITS_MAX);
        for (size_t i = 0; i < n; i++)
                if (limit_applies(&lim[i]))
                        order[k++] = &lim[i];
        qsort(order, k, sizeof(order[0]), limit_cmp);
        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                return st;
        for (size_t i = 0; i < k && st == EJ_OK; i++) {
                const char *params[] = {order[i]->bucket, order[i]->key};

                st = ej_db_exec(db, sql_throttle_lock, 2, params, NULL, err);
        }
        if (st == EJ_OK)
                st = limits_full(db, lim, n, &retry, err);
        if (st == EJ_OK && retry == 0) {
                st = limits_record(db, lim, n, err);
                *granted = st == EJ_OK;
        }
        if (st != EJ_OK) {
                *granted = false;
                return store_fail(db, st);
        }
        st = ej_db_commit(db, err);
        if (st != EJ_OK)
                *granted = false;
        return st;
}

enum ej_status store_throttle_forget(struct ej_db *db, const char *bucket, const char *key,
                                     struct ej_err *err)
{
        const char *params[] = {bucket, key};

        return ej_db_exec(db, sql_throttle_forget, 2, params, NULL, err);
}
