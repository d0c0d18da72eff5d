/*
 * db.h: PostgreSQL through libpq, for one thread at a time.
 *
 * A struct ej_db wraps one PGconn bound to one service schema (search_path is set to it) and a
 * cache of prepared statements keyed by the address of the SQL text: pass the same
 * `static const char` string every time and it is prepared once per connection. Statuses come
 * from SQLSTATEs (23505 -> EJ_ERR_CONFLICT, connection loss -> EJ_ERR_UNAVAILABLE, ...). A lost
 * connection is reset on the next call. Each worker thread owns its own struct ej_db; nothing
 * here is shared between threads.
 *
 * Migrations: each service embeds its numbered SQL files (services/<svc>/schema/NNN_name.sql,
 * see tools/embed-sql.sh). ej_db_migrate applies the ones not yet recorded, each in its own
 * transaction, under an advisory lock so replicas starting together do not collide, and keeps
 * the record in <schema>.schema_migrations, which it creates. The modules that own tables every
 * service shares give their DDL as a migration of their own (ej_events_migration in events.h,
 * ej_mail_migration in mail.h); the runtime applies those first (ej_service_migrate).
 */
#ifndef EJ_DB_H
#define EJ_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "status.h"

struct ej_migration {
        const char *name; /* "001_users.sql": the order and the record of what was applied */
        const char *sql;  /* may hold several statements */
};

struct ej_db;

/* Connects with `conninfo` (a libpq connection string or URI) and sets search_path to `schema`
 * (which need not exist yet; ej_db_migrate creates it). Retries for up to `retry_ms` while the
 * server refuses connections (it may still be starting), then fails with EJ_ERR_UNAVAILABLE.
 * On success *out is owned by the caller (ej_db_destroy). */
enum ej_status ej_db_connect(struct ej_db **out, const char *conninfo, const char *schema,
                             int retry_ms, struct ej_err *err);

/* Closes the connection and frees everything. Accepts NULL. */
void ej_db_destroy(struct ej_db *db);

/* The underlying connection, borrowed (for LISTEN, pipelines and other libpq features). */
PGconn *ej_db_conn(struct ej_db *db);

/* Runs `sql` (a static string: it is prepared once and cached by address) with `nparams` text
 * parameters (a NULL element is SQL NULL). On EJ_OK *res (may be NULL when the caller wants no
 * rows) receives the result, which the caller frees with PQclear. On failure nothing is left to
 * free and `err` names the SQLSTATE's meaning. */
enum ej_status ej_db_exec(struct ej_db *db, const char *sql, int nparams, const char *const *params,
                          PGresult **res, struct ej_err *err);

/* Like ej_db_exec with binary-capable parameters: `lengths[i]` is the byte length of params[i]
 * when `formats[i]` is 1 (binary, e.g. a bytea), ignored when 0 (text). `lengths` and `formats`
 * may be NULL (all text). Results are in text format. */
enum ej_status ej_db_exec_bin(struct ej_db *db, const char *sql, int nparams,
                              const char *const *params, const int *lengths, const int *formats,
                              PGresult **res, struct ej_err *err);

/* Like ej_db_exec for one-off SQL that is not prepared (no parameters allowed), e.g. DDL. */
enum ej_status ej_db_exec_simple(struct ej_db *db, const char *sql, struct ej_err *err);

/* Transactions. ej_db_rollback is safe to call when no transaction is open. With a deadline
 * set (ej_db_set_deadline) and passed, ej_db_begin starts nothing and ej_db_commit rolls back
 * instead of committing; both then fail with EJ_ERR_TIMEOUT. With a commit hook set,
 * ej_db_commit runs it inside the transaction just before COMMIT; a failing hook rolls the
 * transaction back and its status is returned. */
enum ej_status ej_db_begin(struct ej_db *db, struct ej_err *err);
enum ej_status ej_db_commit(struct ej_db *db, struct ej_err *err);
void ej_db_rollback(struct ej_db *db);

/* The moment (Unix epoch milliseconds; 0 = none) after which the connection's user no longer
 * wants work done: the service runtime sets its caller's deadline around each handler call, so
 * a transaction is not committed for a caller that has given up. The check is made just before
 * COMMIT: work committed is answered. */
void ej_db_set_deadline(struct ej_db *db, long long deadline_ms);

/* Runs `fn(db, ud, err)` inside every transaction of `db` just before its COMMIT, until cleared
 * with fn NULL. `ud` is borrowed. */
typedef enum ej_status (*ej_db_commit_hook)(struct ej_db *db, void *ud, struct ej_err *err);
void ej_db_set_commit_hook(struct ej_db *db, ej_db_commit_hook fn, void *ud);

/* Maps a failed result's SQLSTATE to a status and fills `err`. */
enum ej_status ej_db_status_from_result(const PGresult *res, struct ej_err *err);

/* Applies `migrations` (n of them, in array order) to the connection's schema. */
enum ej_status ej_db_migrate(struct ej_db *db, const struct ej_migration *migrations, size_t n,
                             struct ej_err *err);

/* Waits up to `ms` milliseconds for a NOTIFY on a channel this connection LISTENs to, or for
 * `wake_fd` (a pipe's read end: the owner's stop or wake signal) to become readable; drains
 * both. Returns at once when notifications had already arrived. `db` may be NULL or
 * disconnected: then only `wake_fd` and the timeout count. For background threads that sleep
 * between scans of a table (the outbox relay, the mail sender). */
void ej_db_wait_notify(struct ej_db *db, int wake_fd, int ms);

/* Row access. Values are borrowed from the PGresult. */
const char *ej_db_val(const PGresult *res, int row, int col); /* "" for NULL */
bool ej_db_isnull(const PGresult *res, int row, int col);
int64_t ej_db_int64(const PGresult *res, int row, int col); /* 0 for NULL */

#endif
