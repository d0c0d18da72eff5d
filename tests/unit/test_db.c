/*
 * Unit tests of services/common/db.c against a real PostgreSQL.
 *
 * EJ_TEST_DB_URL is the libpq connection string of a scratch database (tests/run-all.sh starts
 * a private cluster and sets it). Each run works in its own schemas (named with the pid) and
 * drops them at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "ids.h"
#include "log.h"
#include "service.h"

static const char *db_url;
static char schema[64];
static char schema_conc[64];

static const char sql_insert_item[] = "INSERT INTO items (name, qty, note) VALUES ($1, $2, $3) "
                                      "RETURNING id";
static const char sql_get_item[] = "SELECT id, name, qty, note FROM items WHERE name = $1";
static const char sql_count_items[] = "SELECT count(*) FROM items WHERE name = $1";
static const char sql_insert_child[] = "INSERT INTO children (item_id) VALUES ($1)";
static const char sql_echo[] = "SELECT $1::bigint + 1";
static const char sql_backend_pid[] = "SELECT pg_backend_pid()";
static const char sql_raise[] = "SELECT ej_test_raise($1)";
static const char sql_bytes[] = "SELECT length($1::bytea), encode($1::bytea, 'hex')";

static const struct ej_migration migrations_v1[] = {
    {"001_items.sql", "CREATE TABLE items (\n"
                      "    id bigserial PRIMARY KEY,\n"
                      "    name text NOT NULL UNIQUE,\n"
                      "    qty integer NOT NULL CHECK (qty >= 0),\n"
                      "    note text\n"
                      ");\n"
                      "CREATE TABLE children (\n"
                      "    id bigserial PRIMARY KEY,\n"
                      "    item_id bigint NOT NULL CONSTRAINT children_item_fk REFERENCES items\n"
                      ");\n"},
    {"002_applied_log.sql", "CREATE TABLE applied_log (what text NOT NULL);\n"
                            "INSERT INTO applied_log VALUES ('002');\n"
                            "CREATE FUNCTION ej_test_raise(code text) RETURNS int\n"
                            "LANGUAGE plpgsql AS $$\n"
                            "BEGIN\n"
                            "    RAISE EXCEPTION 'raised %', code USING ERRCODE = code;\n"
                            "END $$;\n"},
};

static const struct ej_migration migrations_v2[] = {
    migrations_v1[0],
    migrations_v1[1],
    {"003_more.sql", "INSERT INTO applied_log VALUES ('003');\n"},
};

static const struct ej_migration migrations_bad[] = {
    migrations_v1[0],
    migrations_v1[1],
    migrations_v2[2],
    {"004_bad.sql", "CREATE TABLE half_done (x int);\n"
                    "INSERT INTO applied_log VALUES ('004');\n"
                    "SELECT no_such_column FROM applied_log;\n"},
};

/* Runs `sql` on a separate admin connection and returns the first value as a number (-1 on
 * error). */
static void quiet_notice(void *arg, const char *message)
{
        (void)arg;
        (void)message;
}

static long long admin_scalar(const char *sql)
{
        PGconn *c = PQconnectdb(db_url);
        PGresult *r = NULL;
        long long v = -1;

        if (PQstatus(c) != CONNECTION_OK)
                goto out;
        PQsetNoticeProcessor(c, quiet_notice, NULL);
        r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
                v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
                v = 0;
        else
                fprintf(stderr, "admin query failed: %s", PQerrorMessage(c));
out:
        PQclear(r);
        PQfinish(c);
        return v;
}

static long long db_scalar(struct ej_db *db, const char *sql)
{
        PGresult *r = NULL;
        long long v = -1;
        struct ej_err err;

        if (ej_db_exec_simple(db, "SELECT 1", &err) != EJ_OK)
                return -1;
        r = PQexec(ej_db_conn(db), sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
                v = ej_db_int64(r, 0, 0);
        PQclear(r);
        return v;
}

/* db_url (keyword or URI form) with another database name, in keyword form. */
static void url_with_dbname(char *out, size_t cap, const char *dbname)
{
        PQconninfoOption *opts = PQconninfoParse(db_url, NULL);
        size_t n = 0;

        out[0] = '\0';
        for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
                const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
                int w;

                if (v == NULL)
                        continue;
                w = snprintf(out + n, cap - n, "%s='%s' ", o->keyword, v);
                if (w < 0 || (size_t)w >= cap - n)
                        break;
                n += (size_t)w;
        }
        PQconninfoFree(opts);
}

static void test_connect_failure(void)
{
        struct ej_db *db = NULL;
        struct ej_err err;
        long long t0 = ej_mono_ms();
        enum ej_status st;

        ej_err_clear(&err);
        st = ej_db_connect(&db, "host=127.0.0.1 port=1 connect_timeout=2", "x", 400, &err);
        CHECK(st == EJ_ERR_UNAVAILABLE);
        CHECK(db == NULL);
        CHECK(ej_mono_ms() - t0 >= 350); /* it retried for about retry_ms */
        CHECK(ej_mono_ms() - t0 < 5000); /* and gave up */
        CHECK(strstr(err.msg, "database") == err.msg);
        CHECK(strchr(err.msg, '\n') == NULL);
        CHECK(strlen(err.msg) > 20);

        /* The server answers but refuses for good: no point retrying for the whole period. */
        t0 = ej_mono_ms();
        {
                char bad[512];

                char name[64];

                snprintf(name, sizeof(name), "ej_no_such_database_%d", (int)getpid());
                url_with_dbname(bad, sizeof(bad), name);
                st = ej_db_connect(&db, bad, "x", 5000, &err);
        }
        CHECK(st == EJ_ERR_UNAVAILABLE);
        CHECK(ej_mono_ms() - t0 < 3000);
        CHECK(strstr(err.msg, "does not exist") != NULL);

        st = ej_db_connect(&db, db_url, "", 0, &err);
        CHECK(st == EJ_ERR_INVALID);
}

static void test_migrate(struct ej_db *db)
{
        struct ej_err err;
        enum ej_status st;
        char q[256];

        /* As the runtime does it: the tables every service shares, whose DDL their modules own
         * (events.c, mail.c, idem.c), then the service's own. */
        st = ej_service_migrate(db, migrations_v1, 2, &err);
        CHECK(st == EJ_OK);
        if (st != EJ_OK)
                fprintf(stderr, "migrate: %s\n", err.msg);
        /* The shared steps (000_*) come first. */
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM \"%s\".schema_migrations WHERE name LIKE '000\\_%%'",
                 schema);
        CHECK(admin_scalar(q) == 3);
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM \"%s\".schema_migrations WHERE name NOT LIKE '000\\_%%'",
                 schema);
        CHECK(admin_scalar(q) == 2); /* 001, 002 */
        snprintf(q, sizeof(q), "SELECT count(*) FROM \"%s\".applied_log", schema);
        CHECK(admin_scalar(q) == 1);
        /* The shared tables exist. */
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM information_schema.tables WHERE table_schema = '%s' "
                 "AND table_name IN ('outbox', 'processed_events', 'schema_migrations', "
                 "'mail_templates', 'mail_outbox', 'idempotency')",
                 schema);
        CHECK(admin_scalar(q) == 6);
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s' "
                 "AND indexdef LIKE '%%WHERE (published_at IS NULL)%%'",
                 schema);
        CHECK(admin_scalar(q) == 1);

        /* Twice: nothing is applied again. */
        st = ej_db_migrate(db, migrations_v1, 2, &err);
        CHECK(st == EJ_OK);
        snprintf(q, sizeof(q), "SELECT count(*) FROM \"%s\".applied_log", schema);
        CHECK(admin_scalar(q) == 1);

        /* A new migration is applied alone. */
        st = ej_db_migrate(db, migrations_v2, 3, &err);
        CHECK(st == EJ_OK);
        CHECK(admin_scalar(q) == 2);
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM \"%s\".schema_migrations WHERE name NOT LIKE '000\\_%%'",
                 schema);
        CHECK(admin_scalar(q) == 3);

        /* A failing migration leaves nothing behind, says which one failed, and releases the
         * lock. */
        st = ej_db_migrate(db, migrations_bad, 4, &err);
        CHECK(st == EJ_ERR_INTERNAL);
        CHECK(strstr(err.msg, "004_bad.sql") != NULL);
        CHECK(strstr(err.msg, "no_such_column") != NULL);
        CHECK(admin_scalar(q) == 3);
        snprintf(q, sizeof(q), "SELECT count(*) FROM \"%s\".applied_log", schema);
        CHECK(admin_scalar(q) == 2);
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND "
                 "tablename = 'half_done'",
                 schema);
        CHECK(admin_scalar(q) == 0);
        snprintf(q, sizeof(q), "SELECT pg_try_advisory_lock(hashtext('ej.migrate.%s'))::int",
                 schema);
        CHECK(admin_scalar(q) == 1);
        /* The connection is still good afterwards. */
        CHECK(ej_db_exec_simple(db, "SELECT 1", &err) == EJ_OK);
}

struct conc_arg {
        enum ej_status st;
        char msg[256];
};

static const struct ej_migration migrations_slow[] = {
    {"001_slow.sql", "CREATE TABLE once (x int);\n"
                     "SELECT pg_sleep(0.3);\n"
                     "INSERT INTO once VALUES (1);\n"},
};

static void *conc_migrate(void *p)
{
        struct conc_arg *a = p;
        struct ej_db *db = NULL;
        struct ej_err err;

        ej_err_clear(&err);
        a->st = ej_db_connect(&db, db_url, schema_conc, 2000, &err);
        if (a->st == EJ_OK)
                a->st = ej_db_migrate(db, migrations_slow, 1, &err);
        snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
        ej_db_destroy(db);
        return NULL;
}

static void test_migrate_concurrent(void)
{
        pthread_t t[3];
        struct conc_arg a[3];
        char q[256];

        memset(a, 0, sizeof(a));
        for (int i = 0; i < 3; i++)
                CHECK(pthread_create(&t[i], NULL, conc_migrate, &a[i]) == 0);
        for (int i = 0; i < 3; i++) {
                pthread_join(t[i], NULL);
                CHECK(a[i].st == EJ_OK);
                if (a[i].st != EJ_OK)
                        fprintf(stderr, "concurrent migrate %d: %s\n", i, a[i].msg);
        }
        snprintf(q, sizeof(q), "SELECT count(*) FROM \"%s\".once", schema_conc);
        CHECK(admin_scalar(q) == 1);
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM \"%s\".schema_migrations WHERE name NOT LIKE '000\\_%%'",
                 schema_conc);
        CHECK(admin_scalar(q) == 1);
}

static void test_exec(struct ej_db *db)
{
        struct ej_err err;
        PGresult *res = NULL;
        enum ej_status st;
        const char *p3[3];

        p3[0] = "alpha";
        p3[1] = "5";
        p3[2] = NULL; /* SQL NULL */
        st = ej_db_exec(db, sql_insert_item, 3, p3, &res, &err);
        CHECK(st == EJ_OK);
        CHECK(res != NULL && PQntuples(res) == 1 && ej_db_int64(res, 0, 0) > 0);
        PQclear(res);
        res = NULL;

        st = ej_db_exec(db, sql_get_item, 1, p3, &res, &err);
        CHECK(st == EJ_OK);
        if (st == EJ_OK && PQntuples(res) == 1) {
                CHECK(strcmp(ej_db_val(res, 0, 1), "alpha") == 0);
                CHECK(ej_db_int64(res, 0, 2) == 5);
                CHECK(ej_db_isnull(res, 0, 3));
                CHECK(strcmp(ej_db_val(res, 0, 3), "") == 0);
                CHECK(!ej_db_isnull(res, 0, 1));
        } else {
                CHECK(!"item not found");
        }
        PQclear(res);
        res = NULL;

        /* res may be NULL when the caller wants no rows. */
        p3[0] = "beta";
        p3[1] = "0";
        p3[2] = "a note";
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);

        /* 64-bit values survive. */
        {
                const char *p1[1] = {"9000000000000000000"};

                st = ej_db_exec(db, sql_echo, 1, p1, &res, &err);
                CHECK(st == EJ_OK && ej_db_int64(res, 0, 0) == 9000000000000000001LL);
                PQclear(res);
                res = NULL;
        }

        /* Binary parameters: bytes with NULs and high bits go through unchanged. */
        {
                static const char bytes[] = {'\x00', '\x01', '\xff', '\x7f', '\x00'};
                const char *pb[1] = {bytes};
                int len[1] = {(int)sizeof(bytes)};
                int fmt[1] = {1};

                st = ej_db_exec_bin(db, sql_bytes, 1, pb, len, fmt, &res, &err);
                CHECK(st == EJ_OK);
                CHECK(st == EJ_OK && ej_db_int64(res, 0, 0) == 5);
                CHECK(st == EJ_OK && strcmp(ej_db_val(res, 0, 1), "0001ff7f00") == 0);
                PQclear(res);
                res = NULL;
        }
}

static void test_errors(struct ej_db *db)
{
        struct ej_err err;
        enum ej_status st;
        PGresult *res = (PGresult *)1;
        const char *p3[3] = {"alpha", "1", NULL};

        /* Unique violation: conflict, with the constraint name for the handler to map. */
        ej_err_clear(&err);
        st = ej_db_exec(db, sql_insert_item, 3, p3, &res, &err);
        CHECK(st == EJ_ERR_CONFLICT);
        CHECK(res == NULL);
        CHECK(err.status == EJ_ERR_CONFLICT);
        CHECK(strcmp(err.field, "items_name_key") == 0);
        CHECK(strstr(err.msg, "23505") != NULL);
        CHECK(strstr(err.msg, "duplicate key") != NULL);

        /* Foreign key violation. */
        {
                const char *p1[1] = {"987654321"};

                st = ej_db_exec(db, sql_insert_child, 1, p1, NULL, &err);
                CHECK(st == EJ_ERR_CONFLICT);
                CHECK(strcmp(err.field, "children_item_fk") == 0);
        }

        /* Check constraint, NOT NULL and a malformed number: invalid. */
        p3[0] = "gamma";
        p3[1] = "-1";
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_ERR_INVALID);
        p3[1] = NULL;
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_ERR_INVALID);
        p3[1] = "many";
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "22P02") != NULL);

        /* Syntax errors are bugs. */
        st = ej_db_exec_simple(db, "SELEC 1", &err);
        CHECK(st == EJ_ERR_INTERNAL);
        CHECK(strstr(err.msg, "42601") != NULL);

        /* The SQLSTATE table, one code at a time. */
        {
                static const struct {
                        const char *code;
                        enum ej_status st;
                } cases[] = {
                    {"23505", EJ_ERR_CONFLICT},    {"23503", EJ_ERR_CONFLICT},
                    {"23502", EJ_ERR_INVALID},     {"23514", EJ_ERR_INVALID},
                    {"22001", EJ_ERR_INVALID},     {"22P02", EJ_ERR_INVALID},
                    {"40001", EJ_ERR_UNAVAILABLE}, {"40P01", EJ_ERR_UNAVAILABLE},
                    {"08006", EJ_ERR_UNAVAILABLE}, {"57P01", EJ_ERR_UNAVAILABLE},
                    {"57P03", EJ_ERR_UNAVAILABLE}, {"57014", EJ_ERR_TIMEOUT},
                    {"42501", EJ_ERR_INTERNAL},    {"P0001", EJ_ERR_INTERNAL},
                };

                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        const char *p1[1] = {cases[i].code};

                        st = ej_db_exec(db, sql_raise, 1, p1, NULL, &err);
                        CHECK(st == cases[i].st);
                        if (st != cases[i].st)
                                fprintf(stderr, "  code %s gave %s (%s)\n", cases[i].code,
                                        ej_status_name(st), err.msg);
                        CHECK(strstr(err.msg, cases[i].code) != NULL);
                        /* The server's words are detail for the log, never for a client. */
                        CHECK(err.log_only);
                }
        }
        /* Every database failure is marked, also those the connection layer words itself. */
        CHECK(ej_db_exec_simple(db, "SELECT interval '1 millisecond' * 9223372036854775807",
                                &err) == EJ_ERR_INVALID);
        CHECK(err.log_only && strstr(err.msg, "22008") != NULL);
        CHECK(ej_db_commit(db, &err) == EJ_ERR_INTERNAL && err.log_only);
        ej_err_set(&err, EJ_ERR_INVALID, "x", "a handler's own sentence");
        CHECK(!err.log_only);

        /* A real statement timeout. */
        CHECK(ej_db_exec_simple(db, "SET statement_timeout = 50", &err) == EJ_OK);
        CHECK(ej_db_exec_simple(db, "SELECT pg_sleep(2)", &err) == EJ_ERR_TIMEOUT);
        CHECK(ej_db_exec_simple(db, "SET statement_timeout = 0", &err) == EJ_OK);
}

static void test_transactions(struct ej_db *db)
{
        struct ej_err err;
        const char *p3[3] = {"tx-rolled-back", "1", NULL};
        const char *p1[1];
        PGresult *res = NULL;

        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_begin(db, &err) == EJ_ERR_INTERNAL); /* no nesting */
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        ej_db_rollback(db);
        p1[0] = p3[0];
        CHECK(ej_db_exec(db, sql_count_items, 1, p1, &res, &err) == EJ_OK);
        CHECK(res != NULL && ej_db_int64(res, 0, 0) == 0);
        PQclear(res);
        res = NULL;

        p3[0] = "tx-committed";
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        p1[0] = p3[0];
        CHECK(ej_db_exec(db, sql_count_items, 1, p1, &res, &err) == EJ_OK);
        CHECK(res != NULL && ej_db_int64(res, 0, 0) == 1);
        PQclear(res);
        res = NULL;

        /* An error inside the transaction: later statements and the commit fail, and nothing
         * of it is kept. */
        p3[0] = "tx-aborted";
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_ERR_CONFLICT);
        CHECK(ej_db_exec(db, sql_count_items, 1, p1, NULL, &err) != EJ_OK);
        CHECK(ej_db_commit(db, &err) != EJ_OK);
        p1[0] = p3[0];
        CHECK(ej_db_exec(db, sql_count_items, 1, p1, &res, &err) == EJ_OK);
        CHECK(res != NULL && ej_db_int64(res, 0, 0) == 0);
        PQclear(res);
        res = NULL;

        /* Rollback with nothing open is harmless; commit with nothing open is a bug. */
        ej_db_rollback(db);
        CHECK(ej_db_commit(db, &err) == EJ_ERR_INTERNAL);
        ej_db_rollback(NULL);
}

static long long count_of(struct ej_db *db, const char *name)
{
        const char *p1[1] = {name};
        PGresult *res = NULL;
        struct ej_err err;
        long long n = -1;

        if (ej_db_exec(db, sql_count_items, 1, p1, &res, &err) == EJ_OK)
                n = ej_db_int64(res, 0, 0);
        PQclear(res);
        return n;
}

static int hook_calls;

static enum ej_status hook_insert(struct ej_db *db, void *ud, struct ej_err *err)
{
        const char *p3[3] = {ud, "1", NULL};

        hook_calls++;
        return ej_db_exec(db, sql_insert_item, 3, p3, NULL, err);
}

/* The caller's deadline: nothing starts after it, and a transaction open when it passes is
 * rolled back at COMMIT instead of committed. The commit hook runs inside the transaction. */
static void test_deadline_and_hook(struct ej_db *db)
{
        struct ej_err err;
        const char *p3[3] = {"dl-late-begin", "1", NULL};

        ej_db_set_deadline(db, ej_now_ms() - 1);
        CHECK(ej_db_begin(db, &err) == EJ_ERR_TIMEOUT);
        ej_db_set_deadline(db, ej_now_ms() + 150);
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        p3[0] = "dl-late-commit";
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_exec_simple(db, "SELECT pg_sleep(0.3)", &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_ERR_TIMEOUT);
        CHECK(count_of(db, "dl-late-commit") == 0);

        /* In time: committed. */
        ej_db_set_deadline(db, ej_now_ms() + 10000);
        p3[0] = "dl-in-time";
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(count_of(db, "dl-in-time") == 1);
        ej_db_set_deadline(db, 0);

        /* The hook's row commits with the work; a failing hook (here a duplicate) takes the
         * whole transaction back. */
        hook_calls = 0;
        ej_db_set_commit_hook(db, hook_insert, "hook-row");
        p3[0] = "hook-work";
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(count_of(db, "hook-row") == 1 && count_of(db, "hook-work") == 1);
        p3[0] = "hook-work-2";
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_insert_item, 3, p3, NULL, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_ERR_CONFLICT);
        CHECK(count_of(db, "hook-work-2") == 0 && count_of(db, "hook-row") == 1);
        CHECK(hook_calls == 2);
        ej_db_set_commit_hook(db, NULL, NULL);
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(hook_calls == 2);
}

static void test_prepared_cache(struct ej_db *db)
{
        struct ej_err err;
        long long before, after;
        int ok = 0;

        before = db_scalar(db, "SELECT count(*) FROM pg_prepared_statements");
        for (int i = 0; i < 2000; i++) {
                char n[32];
                const char *p1[1] = {n};
                PGresult *res = NULL;

                snprintf(n, sizeof(n), "%d", i);
                if (ej_db_exec(db, sql_echo, 1, p1, &res, &err) == EJ_OK &&
                    ej_db_int64(res, 0, 0) == i + 1)
                        ok++;
                PQclear(res);
        }
        CHECK(ok == 2000);
        after = db_scalar(db, "SELECT count(*) FROM pg_prepared_statements");
        /* sql_echo was prepared by an earlier test already: no new statement. */
        CHECK(before > 0);
        CHECK(after == before);
}

/* Terminates `pid` from another connection and waits until it is gone. */
static void terminate_backend(long long pid)
{
        char q[160];

        snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%lld)", pid);
        CHECK(admin_scalar(q) >= 0);
        snprintf(q, sizeof(q), "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", pid);
        for (int i = 0; i < 100 && admin_scalar(q) != 0; i++)
                usleep(20000);
}

static long long backend_pid(struct ej_db *db)
{
        PGresult *res = NULL;
        struct ej_err err;
        long long pid = -1;

        if (ej_db_exec(db, sql_backend_pid, 0, NULL, &res, &err) == EJ_OK)
                pid = ej_db_int64(res, 0, 0);
        PQclear(res);
        return pid;
}

static void test_reconnect(struct ej_db *db)
{
        struct ej_err err;
        long long pid1, pid2, pid3;
        enum ej_status st;
        PGresult *res = NULL;
        const char *p1[1] = {"alpha"};

        pid1 = backend_pid(db);
        CHECK(pid1 > 0);
        terminate_backend(pid1);
        /* Idle connection killed: the next call notices before sending and reconnects. */
        st = ej_db_exec(db, sql_get_item, 1, p1, &res, &err);
        CHECK(st == EJ_OK);
        if (st != EJ_OK)
                fprintf(stderr, "after terminate: %s\n", err.msg);
        CHECK(st == EJ_OK && PQntuples(res) == 1);
        PQclear(res);
        res = NULL;
        pid2 = backend_pid(db);
        CHECK(pid2 > 0 && pid2 != pid1);
        /* search_path came back with the new session. */
        CHECK(db_scalar(db, "SELECT count(*) FROM items WHERE name = 'alpha'") == 1);

        /* Killed inside a transaction: the transaction is lost and says so; no silent retry. */
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_db_exec(db, sql_get_item, 1, p1, NULL, &err) == EJ_OK);
        terminate_backend(pid2);
        st = ej_db_exec(db, sql_get_item, 1, p1, NULL, &err);
        CHECK(st == EJ_ERR_UNAVAILABLE);
        CHECK(strchr(err.msg, '\n') == NULL);
        st = ej_db_commit(db, &err);
        CHECK(st == EJ_ERR_UNAVAILABLE);
        ej_db_rollback(db);
        pid3 = backend_pid(db);
        CHECK(pid3 > 0 && pid3 != pid2);
        CHECK(ej_db_exec(db, sql_get_item, 1, p1, NULL, &err) == EJ_OK);
}

int main(void)
{
        struct ej_db *db = NULL;
        struct ej_err err;
        char q[256];

        ej_log_init("test_db", "warn");
        db_url = getenv("EJ_TEST_DB_URL");
        if (db_url == NULL || db_url[0] == '\0') {
                fprintf(stderr, "test_db: EJ_TEST_DB_URL is not set (libpq connection string "
                                "of a scratch database; tests/run-all.sh sets it)\n");
                CHECK(!"EJ_TEST_DB_URL set");
                return check_report();
        }
        if (ej_ids_init(&err) != EJ_OK)
                return 1;
        snprintf(schema, sizeof(schema), "ej_test_db_%d", (int)getpid());
        snprintf(schema_conc, sizeof(schema_conc), "ej_test_dbc_%d", (int)getpid());

        test_connect_failure();
        if (ej_db_connect(&db, db_url, schema, 5000, &err) != EJ_OK) {
                fprintf(stderr, "test_db: cannot connect: %s\n", err.msg);
                CHECK(!"connect");
                return check_report();
        }
        test_migrate(db);
        test_migrate_concurrent();
        test_exec(db);
        test_errors(db);
        test_transactions(db);
        test_deadline_and_hook(db);
        test_prepared_cache(db);
        test_reconnect(db);

        ej_db_destroy(db);
        ej_db_destroy(NULL);
        snprintf(q, sizeof(q), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
        CHECK(admin_scalar(q) == 0);
        snprintf(q, sizeof(q), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema_conc);
        CHECK(admin_scalar(q) == 0);
        return check_report();
}
