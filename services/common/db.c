#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "mem.h"
#include "str.h"

/* One prepared statement of this connection: the SQL text's address and the server-side name. */
struct db_stmt {
        const char *sql;
        char name[16];
};

struct ej_db {
        PGconn *conn;
        char *conninfo;
        char *schema;
        struct db_stmt *stmts; /* prepared on this session; emptied when the session is reset */
        size_t nstmts;
        size_t capstmts;
        unsigned next_stmt;       /* names are never reused within a process's connection */
        bool in_tx;               /* between ej_db_begin and ej_db_commit/ej_db_rollback */
        enum ej_status tx_status; /* first failure inside the open transaction, EJ_OK if none */
        long long deadline_ms;    /* ej_db_set_deadline: epoch ms, 0 = none */
        ej_db_commit_hook hook;   /* ej_db_set_commit_hook, NULL = none */
        void *hook_ud;
};

/* Copies libpq's (possibly multi-line) message into err->msg as one line, marked for the log
 * only. */
static enum ej_status db_err_msg(struct ej_err *err, enum ej_status st, const char *field,
                                 const char *context, const char *msg)
{
        char line[sizeof(((struct ej_err *)0)->msg)];
        size_t n = 0;
        bool space = false;

        for (const char *p = msg ? msg : ""; *p != '\0' && n + 1 < sizeof(line); p++) {
                if (*p == '\n' || *p == '\r' || *p == '\t') {
                        space = n > 0;
                        continue;
                }
                if (space && n + 2 < sizeof(line))
                        line[n++] = ' ';
                space = false;
                line[n++] = *p;
        }
        line[n] = '\0';
        if (context != NULL)
                ej_err_set(err, st, field, "%s: %s", context, line);
        else
                ej_err_set(err, st, field, "%s", line);
        /* The server's words (and a constraint name as the field) are for our log only. */
        ej_err_mark_log_only(err);
        return st;
}

static void db_sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

/* Server notices ("relation already exists, skipping") go to the log as one debug line, not to
 * stderr as libpq's default does. */
static void db_notice(void *arg, const char *message)
{
        char line[256];
        size_t n = 0;

        (void)arg;
        for (; message[n] != '\0' && n + 1 < sizeof(line); n++)
                line[n] = message[n] == '\n' ? ' ' : message[n];
        while (n > 0 && line[n - 1] == ' ')
                n--;
        line[n] = '\0';
        ej_debug(NULL, "database: %s", line);
}

/* Sets the session up after a (re)connection: search_path to the schema. */
static enum ej_status db_session_init(struct ej_db *db, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        PGresult *res = NULL;
        char *quoted = NULL;
        const char *params[1];

        quoted = PQescapeIdentifier(db->conn, db->schema, strlen(db->schema));
        if (quoted == NULL) {
                st = db_err_msg(err, EJ_ERR_INVALID, NULL, "schema name", PQerrorMessage(db->conn));
                goto out;
        }
        params[0] = quoted;
        res = PQexecParams(db->conn, "SELECT pg_catalog.set_config('search_path', $1, false)", 1,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                st = ej_db_status_from_result(res, err);
                if (PQstatus(db->conn) != CONNECTION_OK)
                        st = EJ_ERR_UNAVAILABLE;
                if (err != NULL)
                        err->status = st;
                ej_err_prefix(err, "setting search_path");
        }
out:
        PQclear(res);
        PQfreemem(quoted);
        return st;
}

/* Forgets the statements prepared on a session that no longer exists. */
static void db_forget_session(struct ej_db *db)
{
        db->nstmts = 0;
}

/* Resets a broken connection once. */
static enum ej_status db_reset(struct ej_db *db, struct ej_err *err)
{
        db_forget_session(db);
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK)
                return db_err_msg(err, EJ_ERR_UNAVAILABLE, NULL, "database",
                                  PQerrorMessage(db->conn));
        ej_info(NULL, "database connection re-established");
        return db_session_init(db, err);
}

/*
 * Makes sure the connection is usable before a statement is sent. Outside a transaction a dead
 * connection (one the server closed while we were idle) is reset once; inside one the
 * transaction died with it, so the caller hears EJ_ERR_UNAVAILABLE and must roll back.
 */
static enum ej_status db_ready(struct ej_db *db, struct ej_err *err)
{
        if (db->in_tx) {
                if (db->tx_status != EJ_OK)
                        return db_err_msg(err, db->tx_status, NULL, "database",
                                          "transaction aborted by an earlier error");
                if (PQstatus(db->conn) != CONNECTION_OK ||
                    PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
                        db->tx_status = EJ_ERR_UNAVAILABLE;
                        return db_err_msg(err, EJ_ERR_UNAVAILABLE, NULL, "database",
                                          "connection lost inside a transaction");
                }
                return EJ_OK;
        }
        /* Reading what an idle session has received notices a server that closed it (restart,
         * pg_terminate_backend) before we send anything, so nothing is lost by resetting. Two
         * reads: the first may take the server's farewell message, the second sees the EOF. */
        for (int i = 0; i < 2 && PQstatus(db->conn) == CONNECTION_OK; i++)
                if (PQconsumeInput(db->conn) == 0)
                        break;
        if (PQstatus(db->conn) != CONNECTION_OK)
                return db_reset(db, err);
        return EJ_OK;
}

/* Turns a finished statement's result into a status, filling err; consumes nothing. */
static enum ej_status db_check(struct ej_db *db, PGresult *r, struct ej_err *err)
{
        enum ej_status st;
        ExecStatusType rs = PQresultStatus(r);

        if (r != NULL && (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK))
                return EJ_OK;
        if (r == NULL)
                st =
                    db_err_msg(err, EJ_ERR_UNAVAILABLE, NULL, "database", PQerrorMessage(db->conn));
        else
                st = ej_db_status_from_result(r, err);
        if (PQstatus(db->conn) != CONNECTION_OK && st != EJ_ERR_UNAVAILABLE) {
                st = EJ_ERR_UNAVAILABLE;
                if (err != NULL)
                        err->status = st;
        }
        if (db->in_tx && db->tx_status == EJ_OK)
                db->tx_status = st;
        return st;
}

enum ej_status ej_db_connect(struct ej_db **out, const char *conninfo, const char *schema,
                             int retry_ms, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_db *db = NULL;
        long long deadline = ej_mono_ms() + (retry_ms > 0 ? retry_ms : 0);
        long backoff = 50;
        const char *keys[] = {"dbname", "fallback_application_name", NULL};
        const char *vals[] = {conninfo, program_invocation_short_name, NULL};

        *out = NULL;
        if (conninfo == NULL || schema == NULL || schema[0] == '\0')
                return db_err_msg(err, EJ_ERR_INVALID, NULL, "database",
                                  "connection string and schema are required");
        db = xcalloc(1, sizeof(*db));
        db->conninfo = xstrdup(conninfo);
        db->schema = xstrdup(schema);
        for (;;) {
                PGPing ping;
                long long left;

                db->conn = PQconnectdbParams(keys, vals, 1);
                if (db->conn == NULL) {
                        st = db_err_msg(err, EJ_ERR_UNAVAILABLE, NULL, "database", "out of memory");
                        goto out_free;
                }
                if (PQstatus(db->conn) == CONNECTION_OK)
                        break;
                /* Retry only while the server is absent or refusing (starting up, shutting
                 * down); a wrong password or database name will not fix itself. */
                ping = PQpingParams(keys, vals, 1);
                left = deadline - ej_mono_ms();
                if ((ping != PQPING_NO_RESPONSE && ping != PQPING_REJECT) || left <= 0) {
                        st = db_err_msg(err, EJ_ERR_UNAVAILABLE, NULL, "database",
                                        PQerrorMessage(db->conn));
                        goto out_free;
                }
                PQfinish(db->conn);
                db->conn = NULL;
                db_sleep_ms(backoff < left ? backoff : (long)left);
                if (backoff < 1000)
                        backoff *= 2;
        }
        /* Kept by the PGconn across PQreset. */
        PQsetNoticeProcessor(db->conn, db_notice, NULL);
        st = db_session_init(db, err);
        if (st != EJ_OK)
                goto out_free;
        *out = db;
        return EJ_OK;

out_free:
        ej_db_destroy(db);
        return st;
}

void ej_db_destroy(struct ej_db *db)
{
        if (db == NULL)
                return;
        PQfinish(db->conn);
        free(db->stmts);
        free(db->conninfo);
        free(db->schema);
        free(db);
}

PGconn *ej_db_conn(struct ej_db *db)
{
        return db->conn;
}

/* Returns the cached statement for `sql`, preparing it on this session the first time. */
static enum ej_status db_prepare(struct ej_db *db, const char *sql, int nparams,
                                 const struct db_stmt **out, struct ej_err *err)
{
        enum ej_status st;
        struct db_stmt *s;
        PGresult *r;

        for (size_t i = 0; i < db->nstmts; i++) {
                if (db->stmts[i].sql == sql) {
                        *out = &db->stmts[i];
                        return EJ_OK;
                }
        }
        if (db->nstmts == db->capstmts) {
                db->capstmts = db->capstmts ? db->capstmts * 2 : 16;
                db->stmts = xrealloc(db->stmts, db->capstmts * sizeof(*db->stmts));
        }
        s = &db->stmts[db->nstmts];
        s->sql = sql;
        (void)snprintf(s->name, sizeof(s->name), "ej_s%u", db->next_stmt++);
        r = PQprepare(db->conn, s->name, sql, nparams, NULL);
        st = db_check(db, r, err);
        PQclear(r);
        if (st != EJ_OK) {
                ej_err_prefix(err, "preparing statement");
                return st;
        }
        db->nstmts++;
        *out = s;
        return EJ_OK;
}

enum ej_status ej_db_exec_bin(struct ej_db *db, const char *sql, int nparams,
                              const char *const *params, const int *lengths, const int *formats,
                              PGresult **res, struct ej_err *err)
{
        enum ej_status st;
        const struct db_stmt *s = NULL;
        PGresult *r = NULL;

        if (res != NULL)
                *res = NULL;
        st = db_ready(db, err);
        if (st != EJ_OK)
                return st;
        st = db_prepare(db, sql, nparams, &s, err);
        if (st != EJ_OK)
                return st;
        r = PQexecPrepared(db->conn, s->name, nparams, params, lengths, formats, 0);
        st = db_check(db, r, err);
        if (st != EJ_OK || res == NULL)
                PQclear(r);
        else
                *res = r;
        return st;
}

enum ej_status ej_db_exec(struct ej_db *db, const char *sql, int nparams, const char *const *params,
                          PGresult **res, struct ej_err *err)
{
        return ej_db_exec_bin(db, sql, nparams, params, NULL, NULL, res, err);
}

enum ej_status ej_db_exec_simple(struct ej_db *db, const char *sql, struct ej_err *err)
{
        enum ej_status st;
        PGresult *r;

        st = db_ready(db, err);
        if (st != EJ_OK)
                return st;
        r = PQexec(db->conn, sql);
        st = db_check(db, r, err);
        PQclear(r);
        return st;
}

/* True when the connection's user set a deadline that has passed. */
static bool db_past_deadline(const struct ej_db *db)
{
        return db->deadline_ms > 0 && ej_now_ms() >= db->deadline_ms;
}

void ej_db_set_deadline(struct ej_db *db, long long deadline_ms)
{
        if (db != NULL)
                db->deadline_ms = deadline_ms;
}

void ej_db_set_commit_hook(struct ej_db *db, ej_db_commit_hook fn, void *ud)
{
        if (db == NULL)
                return;
        db->hook = fn;
        db->hook_ud = ud;
}

enum ej_status ej_db_begin(struct ej_db *db, struct ej_err *err)
{
        enum ej_status st;
        PGresult *r;

        if (db->in_tx)
                return db_err_msg(err, EJ_ERR_INTERNAL, NULL, "database",
                                  "a transaction is already open");
        if (db_past_deadline(db))
                return ej_err_set(err, EJ_ERR_TIMEOUT, NULL,
                                  "the caller's deadline passed; nothing was started");
        st = db_ready(db, err);
        if (st != EJ_OK)
                return st;
        r = PQexec(db->conn, "BEGIN");
        st = db_check(db, r, err);
        PQclear(r);
        if (st == EJ_OK) {
                db->in_tx = true;
                db->tx_status = EJ_OK;
        }
        return st;
}

enum ej_status ej_db_commit(struct ej_db *db, struct ej_err *err)
{
        enum ej_status st;
        PGresult *r;

        if (!db->in_tx)
                return db_err_msg(err, EJ_ERR_INTERNAL, NULL, "database", "no transaction is open");
        st = db_ready(db, err);
        if (st == EJ_OK && db->hook != NULL)
                st = db->hook(db, db->hook_ud, err);
        /* Last: the hook's own statements take time too. Work committed must be answered, so
         * past this point nothing gives up. */
        if (st == EJ_OK && db_past_deadline(db))
                st = ej_err_set(err, EJ_ERR_TIMEOUT, NULL,
                                "the caller's deadline passed; the transaction was rolled back");
        if (st != EJ_OK) {
                ej_db_rollback(db);
                return st;
        }
        r = PQexec(db->conn, "COMMIT");
        st = db_check(db, r, err);
        /* A transaction the server had already aborted answers COMMIT with ROLLBACK. */
        if (st == EJ_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0)
                st = db_err_msg(err, EJ_ERR_INTERNAL, NULL, "database", "transaction rolled back");
        PQclear(r);
        db->in_tx = false;
        db->tx_status = EJ_OK;
        return st;
}

void ej_db_rollback(struct ej_db *db)
{
        if (db == NULL)
                return;
        if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
                PGresult *r = PQexec(db->conn, "ROLLBACK");

                PQclear(r);
        }
        db->in_tx = false;
        db->tx_status = EJ_OK;
}

enum ej_status ej_db_status_from_result(const PGresult *res, struct ej_err *err)
{
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *constraint = NULL;
        enum ej_status st = EJ_ERR_INTERNAL;

        if (code == NULL) {
                /* Errors libpq made up itself: the connection broke or never answered. */
                st = EJ_ERR_UNAVAILABLE;
        } else if (strcmp(code, "23505") == 0) {
                st = EJ_ERR_CONFLICT;
                constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        } else if (strcmp(code, "23503") == 0) {
                st = EJ_ERR_CONFLICT;
                constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        } else if (strcmp(code, "23502") == 0 || strcmp(code, "23514") == 0 ||
                   strncmp(code, "22", 2) == 0) {
                st = EJ_ERR_INVALID;
        } else if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0) {
                st = EJ_ERR_UNAVAILABLE; /* serialization failure, deadlock: retry later */
        } else if (strncmp(code, "08", 2) == 0 || strncmp(code, "57P0", 4) == 0) {
                st = EJ_ERR_UNAVAILABLE;
        } else if (strcmp(code, "57014") == 0) {
                st = EJ_ERR_TIMEOUT;
        }
        if (primary == NULL)
                primary = PQresultErrorMessage(res);
        if (primary == NULL || primary[0] == '\0')
                primary = "unknown database error";
        if (code != NULL) {
                char ctx[32];

                (void)snprintf(ctx, sizeof(ctx), "database %s", code);
                return db_err_msg(err, st, constraint, ctx, primary);
        }
        return db_err_msg(err, st, constraint, "database", primary);
}

/* Runs one statement with text parameters outside the cache (migration bookkeeping). */
static enum ej_status db_exec_once(struct ej_db *db, const char *sql, int nparams,
                                   const char *const *params, PGresult **res, struct ej_err *err)
{
        enum ej_status st;
        PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);

        st = db_check(db, r, err);
        if (st != EJ_OK || res == NULL)
                PQclear(r);
        else
                *res = r;
        return st;
}

static bool db_applied(const PGresult *applied, const char *name)
{
        for (int i = 0; i < PQntuples(applied); i++)
                if (strcmp(PQgetvalue(applied, i, 0), name) == 0)
                        return true;
        return false;
}

/* Applies one migration and records it, in one transaction. */
static enum ej_status db_apply(struct ej_db *db, const struct ej_migration *m, struct ej_err *err)
{
        static const char record_sql[] = "INSERT INTO schema_migrations (name) VALUES ($1)";
        enum ej_status st;
        const char *params[1] = {m->name};

        st = ej_db_begin(db, err);
        if (st != EJ_OK)
                goto out;
        st = ej_db_exec_simple(db, m->sql, err);
        if (st != EJ_OK)
                goto out_rollback;
        st = db_exec_once(db, record_sql, 1, params, NULL, err);
        if (st != EJ_OK)
                goto out_rollback;
        st = ej_db_commit(db, err);
        if (st == EJ_OK)
                ej_info(NULL, "applied migration %s to schema %s", m->name, db->schema);
        goto out;

out_rollback:
        ej_db_rollback(db);
out:
        if (st != EJ_OK) {
                char ctx[160];

                (void)snprintf(ctx, sizeof(ctx), "migration %s", m->name);
                ej_err_prefix(err, ctx);
        }
        return st;
}

enum ej_status ej_db_migrate(struct ej_db *db, const struct ej_migration *migrations, size_t n,
                             struct ej_err *err)
{
        static const char lock_sql[] = "SELECT pg_advisory_lock(hashtext($1))";
        static const char unlock_sql[] = "SELECT pg_advisory_unlock(hashtext($1))";
        static const char applied_sql[] = "SELECT name FROM schema_migrations";
        static const char bootstrap_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                                            "    name text PRIMARY KEY,\n"
                                            "    applied_at timestamptz NOT NULL DEFAULT now()\n"
                                            ")";
        enum ej_status st;
        char key[160];
        const char *params[1] = {key};
        char *quoted = NULL;
        struct ej_buf ddl = EJ_BUF_INIT;
        PGresult *applied = NULL;
        int len;

        if (db->in_tx)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "migrate: called inside an open transaction");
        len = snprintf(key, sizeof(key), "ej.migrate.%s", db->schema);
        if (len < 0 || (size_t)len >= sizeof(key))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "migrate: schema name too long");
        st = db_ready(db, err);
        if (st != EJ_OK)
                goto out;
        /* A session lock: replicas starting together wait here while one of them migrates. */
        st = db_exec_once(db, lock_sql, 1, params, NULL, err);
        if (st != EJ_OK)
                goto out;

        quoted = PQescapeIdentifier(db->conn, db->schema, strlen(db->schema));
        if (quoted == NULL) {
                st = db_err_msg(err, EJ_ERR_INVALID, NULL, "schema name", PQerrorMessage(db->conn));
                goto out_unlock;
        }
        ej_buf_appendf(&ddl, "CREATE SCHEMA IF NOT EXISTS %s", quoted);
        st = ej_db_exec_simple(db, ddl.p, err);
        if (st != EJ_OK)
                goto out_unlock;
        st = ej_db_exec_simple(db, bootstrap_sql, err);
        if (st != EJ_OK)
                goto out_unlock;
        st = db_exec_once(db, applied_sql, 0, NULL, &applied, err);
        if (st != EJ_OK)
                goto out_unlock;

        for (size_t i = 0; i < n; i++) {
                if (db_applied(applied, migrations[i].name))
                        continue;
                st = db_apply(db, &migrations[i], err);
                if (st != EJ_OK)
                        goto out_unlock;
        }

out_unlock:
        /* When the connection is gone the server has released the lock already. */
        if (PQstatus(db->conn) == CONNECTION_OK) {
                PGresult *r = PQexecParams(db->conn, unlock_sql, 1, NULL, params, NULL, NULL, 0);

                PQclear(r);
        }
out:
        if (st != EJ_OK)
                ej_err_prefix(err, "migrate");
        PQclear(applied);
        PQfreemem(quoted);
        ej_buf_free(&ddl);
        return st;
}

const char *ej_db_val(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return "";
        return PQgetvalue(res, row, col);
}

bool ej_db_isnull(const PGresult *res, int row, int col)
{
        return PQgetisnull(res, row, col) != 0;
}

int64_t ej_db_int64(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return 0;
        return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void ej_db_wait_notify(struct ej_db *db, int wake_fd, int ms)
{
        struct pollfd fds[2];
        int nfds = 1;
        PGconn *conn = db ? ej_db_conn(db) : NULL;
        bool up = conn != NULL && PQstatus(conn) == CONNECTION_OK;
        PGnotify *nt;
        bool notified = false;

        /* Notifications that arrived during the caller's last scan mean: scan again now. */
        if (up) {
                (void)PQconsumeInput(conn);
                while ((nt = PQnotifies(conn)) != NULL) {
                        PQfreemem(nt);
                        notified = true;
                }
                if (notified)
                        return;
        }
        fds[0].fd = wake_fd;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        if (up && PQsocket(conn) >= 0) {
                fds[1].fd = PQsocket(conn);
                fds[1].events = POLLIN;
                fds[1].revents = 0;
                nfds = 2;
        }
        if (poll(fds, (nfds_t)nfds, ms) <= 0)
                return;
        if (fds[0].revents != 0) {
                char buf[16];

                while (read(wake_fd, buf, sizeof(buf)) > 0)
                        ;
        }
        if (nfds == 2 && fds[1].revents != 0) {
                (void)PQconsumeInput(conn);
                while ((nt = PQnotifies(conn)) != NULL)
                        PQfreemem(nt);
        }
}
