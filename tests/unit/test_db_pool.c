/*
 * Unit tests of services/common/db_pool.c against a real PostgreSQL (EJ_TEST_DB_URL, set by
 * tests/run-all.sh): reuse of idle connections, the idle cap, a transaction left open, a server
 * that does not answer, a pool destroyed while a connection is lent, and borrowers on several
 * threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "db_pool.h"
#include "ids.h"
#include "log.h"

#define N_THREADS 8
#define N_ROUNDS  50

static const char *db_url;
static char schema[64];

/* The first value of `sql` on `db` as a number, -1 on error. */
static long long scalar(struct ej_db *db, const char *sql)
{
        PGresult *r = PQexec(ej_db_conn(db), sql);
        long long v = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
                v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return v;
}

static void test_create(void)
{
        struct ej_db_pool *p = (struct ej_db_pool *)1;
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(ej_db_pool_create(&p, NULL, "x", 1, &err) == EJ_ERR_INVALID);
        CHECK(p == NULL);
        CHECK(ej_db_pool_create(&p, db_url, "x", -1, &err) == EJ_ERR_INVALID);
        ej_db_pool_destroy(NULL);
        ej_db_pool_put(NULL, NULL);
}

static void test_reuse_and_cap(void)
{
        struct ej_db_pool *p = NULL;
        struct ej_db *a = NULL;
        struct ej_db *b = NULL;
        struct ej_db *c = NULL;
        struct ej_err err;
        long long pid_a;
        int idle = -1;
        int lent = -1;

        CHECK(ej_db_pool_create(&p, db_url, schema, 2, &err) == EJ_OK);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 0 && lent == 0); /* nothing is opened before it is needed */

        CHECK(ej_db_pool_take(p, &a, &err) == EJ_OK && a != NULL);
        pid_a = scalar(a, "SELECT pg_backend_pid()");
        CHECK(pid_a > 0);
        {
                PGresult *r = PQexec(ej_db_conn(a), "SHOW search_path");

                CHECK(PQresultStatus(r) == PGRES_TUPLES_OK &&
                      strstr(PQgetvalue(r, 0, 0), schema) != NULL);
                PQclear(r);
        }
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 0 && lent == 1);
        ej_db_pool_put(p, a);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 1 && lent == 0);

        /* The idle connection is handed out again, not a new one. */
        CHECK(ej_db_pool_take(p, &a, &err) == EJ_OK);
        CHECK(scalar(a, "SELECT pg_backend_pid()") == pid_a);

        /* Three lent at once; two stay idle after, the third is closed. */
        CHECK(ej_db_pool_take(p, &b, &err) == EJ_OK);
        CHECK(ej_db_pool_take(p, &c, &err) == EJ_OK);
        CHECK(a != b && b != c && a != c);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 0 && lent == 3);
        ej_db_pool_put(p, a);
        ej_db_pool_put(p, b);
        ej_db_pool_put(p, c);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 2 && lent == 0);
        ej_db_pool_destroy(p);
}

/* A borrower that leaves a transaction open does not hand it to the next one. */
static void test_open_transaction(void)
{
        struct ej_db_pool *p = NULL;
        struct ej_db *db = NULL;
        struct ej_err err;

        CHECK(ej_db_pool_create(&p, db_url, schema, 1, &err) == EJ_OK);
        CHECK(ej_db_pool_take(p, &db, &err) == EJ_OK);
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec_simple(db, "CREATE TEMP TABLE left_open (x int)", &err) == EJ_OK);
        CHECK(PQtransactionStatus(ej_db_conn(db)) == PQTRANS_INTRANS);
        ej_db_pool_put(p, db);
        db = NULL;
        CHECK(ej_db_pool_take(p, &db, &err) == EJ_OK);
        CHECK(PQtransactionStatus(ej_db_conn(db)) == PQTRANS_IDLE);
        CHECK(scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'left_open'") == 0);
        ej_db_pool_put(p, db);
        ej_db_pool_destroy(p);
}

static void test_unreachable(void)
{
        struct ej_db_pool *p = NULL;
        struct ej_db *db = NULL;
        struct ej_err err;
        int idle = -1;
        int lent = -1;

        CHECK(ej_db_pool_create(&p, "host=127.0.0.1 port=1 connect_timeout=1", schema, 1, &err) ==
              EJ_OK);
        CHECK(ej_db_pool_take(p, &db, &err) == EJ_ERR_UNAVAILABLE);
        CHECK(db == NULL);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(idle == 0 && lent == 0);
        ej_db_pool_destroy(p);
}

/* Destroyed while a connection is lent: it lends no more, and the last put frees it (the
 * sanitizer build would see a leak or a use after free). */
static void test_destroy_while_lent(void)
{
        struct ej_db_pool *p = NULL;
        struct ej_db *a = NULL;
        struct ej_db *b = NULL;
        struct ej_err err;

        CHECK(ej_db_pool_create(&p, db_url, schema, 2, &err) == EJ_OK);
        CHECK(ej_db_pool_take(p, &a, &err) == EJ_OK);
        CHECK(ej_db_pool_take(p, &b, &err) == EJ_OK);
        ej_db_pool_put(p, b);
        ej_db_pool_destroy(p);
        CHECK(scalar(a, "SELECT 1") == 1);
        b = NULL;
        CHECK(ej_db_pool_take(p, &b, &err) == EJ_ERR_UNAVAILABLE);
        CHECK(b == NULL);
        ej_db_pool_put(p, a);
}

static void *borrower(void *arg)
{
        struct ej_db_pool *p = arg;
        long failures = 0;

        for (int i = 0; i < N_ROUNDS; i++) {
                struct ej_db *db = NULL;
                struct ej_err err;

                if (ej_db_pool_take(p, &db, &err) != EJ_OK || scalar(db, "SELECT 1") != 1)
                        failures++;
                ej_db_pool_put(p, db);
        }
        return (void *)failures;
}

static void test_threads(void)
{
        struct ej_db_pool *p = NULL;
        pthread_t t[N_THREADS];
        struct ej_err err;
        long failures = 0;
        int idle = -1;
        int lent = -1;

        CHECK(ej_db_pool_create(&p, db_url, schema, 3, &err) == EJ_OK);
        for (int i = 0; i < N_THREADS; i++)
                CHECK(pthread_create(&t[i], NULL, borrower, p) == 0);
        for (int i = 0; i < N_THREADS; i++) {
                void *r = NULL;

                pthread_join(t[i], &r);
                failures += (long)r;
        }
        CHECK(failures == 0);
        ej_db_pool_counts(p, &idle, &lent);
        CHECK(lent == 0 && idle >= 1 && idle <= 3);
        ej_db_pool_destroy(p);
}

int main(void)
{
        struct ej_err err;

        ej_log_init("test_db_pool", "error");
        db_url = getenv("EJ_TEST_DB_URL");
        if (db_url == NULL || db_url[0] == '\0') {
                fprintf(stderr, "test_db_pool: EJ_TEST_DB_URL is not set (libpq connection "
                                "string of a scratch database; tests/run-all.sh sets it)\n");
                CHECK(!"EJ_TEST_DB_URL set");
                return check_report();
        }
        if (ej_ids_init(&err) != EJ_OK)
                return 1;
        /* search_path names a schema that need not exist: nothing here creates tables in it. */
        snprintf(schema, sizeof(schema), "ej_test_pool_%d", (int)getpid());
        test_create();
        test_reuse_and_cap();
        test_open_transaction();
        test_unreachable();
        test_destroy_while_lent();
        test_threads();
        return check_report();
}
