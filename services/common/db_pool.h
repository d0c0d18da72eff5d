/*
 * db_pool.h: PostgreSQL connections lent to threads that own none.
 *
 * A request worker of the service runtime owns its struct ej_db (service.h). Work a service
 * runs on threads it does not own (callbacks of its own NATS subscriptions, a sweeper) borrows a
 * connection from the runtime's pool instead of opening connections of its own:
 * ej_db_pool_take hands out an idle connection, or opens a new one when none is idle, and
 * ej_db_pool_put gives it back. At most `max_idle` connections stay open between borrowings;
 * the number lent at once is not capped, so a borrower never waits for another (the callers
 * bound their own concurrency, e.g. the uploads a replica takes at once).
 *
 * The pool owns the idle connections; a borrowed one is the borrower's until it is put back,
 * and is used by one thread at a time, as db.h requires. Every function is thread-safe.
 */
#ifndef EJ_DB_POOL_H
#define EJ_DB_POOL_H

#include "db.h"
#include "status.h"

struct ej_db_pool;

/* Creates an empty pool of connections to `schema` through `conninfo` (both copied); no
 * connection is opened until one is taken. On success *out is the caller's (ej_db_pool_destroy).
 */
enum ej_status ej_db_pool_create(struct ej_db_pool **out, const char *conninfo, const char *schema,
                                 int max_idle, struct ej_err *err);

/* Closes the idle connections and frees the pool. When connections are still lent (a borrower
 * on a thread that outlived its owner's stop), the pool lives on, lending nothing more, until
 * the last of them is put back, which closes it and frees the pool. Accepts NULL. */
void ej_db_pool_destroy(struct ej_db_pool *p);

/* Lends a connection: an idle one, or a new one (waiting up to 2 s for the server to accept
 * it; EJ_ERR_UNAVAILABLE after that, and at once after ej_db_pool_destroy). On EJ_OK *db is
 * the caller's until ej_db_pool_put. */
enum ej_status ej_db_pool_take(struct ej_db_pool *p, struct ej_db **db, struct ej_err *err);

/* Gives back a connection from ej_db_pool_take. A transaction left open is rolled back; the
 * connection is closed instead of kept when `max_idle` are already idle. Accepts a NULL `db`. */
void ej_db_pool_put(struct ej_db_pool *p, struct ej_db *db);

/* How many connections are idle in the pool, and how many are lent now (for tests, metrics). */
void ej_db_pool_counts(struct ej_db_pool *p, int *idle, int *lent);

#endif
