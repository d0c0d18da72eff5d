/*
 * idem.h: the stored answers of requests sent with an Idempotency-Key.
 *
 * A client that did not learn the outcome of a write (the gateway answered outcome_unknown)
 * retries it with the same Idempotency-Key; the retry must get the first attempt's answer, not
 * a second execution. The service runtime (service.c) does this for every operation whose
 * request carries Ej-Idempotency-Key (bus.h), with the table `idempotency` that every service
 * schema has (ej_idem_migration, applied by ej_service_migrate):
 *
 *   1. before the handler, ej_idem_lookup: an answer stored for (caller, operation, key) is
 *      sent again; the same key with a different request is refused (conflict);
 *   2. inside the handler's transaction, just before its COMMIT (ej_idem_claim, a commit hook
 *      of db.h), a row claims the key: the claim commits with the work or not at all, and a
 *      concurrent duplicate's claim fails on the primary key, which rolls its work back;
 *   3. after the handler, ej_idem_store writes the answer into that row (or a new one for a
 *      handler that wrote without a transaction). Answers that say "try again" (unavailable,
 *      timeout, too_many_requests, internal) are not stored.
 * A claim whose answer was lost (the process died between COMMIT and step 3) is answered with
 * conflict: the work was done, the answer is gone. Rows older than a day are removed.
 *
 * The caller is the signed-in user (Ej-User-Id), or "" for anonymous calls; the request is
 * compared by its SHA-256, so no request body (passwords) is kept. One struct ej_idem per
 * thread (it lives in a worker); nothing here is shared between threads.
 */
#ifndef EJ_IDEM_H
#define EJ_IDEM_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "db.h"
#include "ids.h"
#include "mem.h"
#include "status.h"

#define EJ_IDEM_KEY_MAX 128 /* longest Idempotency-Key, in bytes */

/* The key of the call in hand. All strings are copies; set up by ej_idem_begin. */
struct ej_idem {
        bool active; /* the call carries a key */
        bool claimed;
        char scope[64];
        char op[64];
        char key[EJ_IDEM_KEY_MAX + 1];
        char hash[EJ_SHA256_HEX_LEN];
        unsigned stores; /* answers stored by this thread: now and then old rows go */
};

/* The shared table, as a migration ej_service_migrate applies before the service's own. */
extern const struct ej_migration ej_idem_migration;

/* True when `key` is an acceptable Idempotency-Key: 1 to EJ_IDEM_KEY_MAX printable ASCII
 * characters (0x21-0x7e). */
bool ej_idem_key_valid(const char *key);

/* Starts a call: with `key` NULL or "" the call has none and every other function does
 * nothing. `scope` is the caller (user id, "" anonymous), `op` the operation, `data`/`n` the
 * packed request. EJ_ERR_INVALID (err filled, field "Idempotency-Key") for a key that is not
 * acceptable. */
enum ej_status ej_idem_begin(struct ej_idem *ic, const char *scope, const char *op, const char *key,
                             const void *data, size_t n, struct ej_err *err);

/* Looks for the answer of an earlier call with the same key. *found false: run the handler.
 * *found true: *answer and `answer_err` hold the stored status and detail, and on EJ_OK *resp
 * the stored response unpacked (as `resp_desc`) into `arena`. Returns EJ_OK, EJ_ERR_CONFLICT
 * when the key came with another request or its answer was lost, or a database failure. */
enum ej_status ej_idem_lookup(struct ej_idem *ic, struct ej_db *db, struct ej_arena *arena,
                              const ProtobufCMessageDescriptor *resp_desc, bool *found,
                              enum ej_status *answer, struct ej_err *answer_err,
                              ProtobufCMessage **resp, struct ej_err *err);

/* The commit hook (db.h; `ud` is the struct ej_idem): claims the key inside the transaction
 * about to commit, once per call. EJ_ERR_CONFLICT when another call holds it. */
enum ej_status ej_idem_claim(struct ej_db *db, void *ud, struct ej_err *err);

/* Stores the answer of the call (status `st`, its detail, `resp` on EJ_OK), when there is one
 * worth keeping (see the top of this file). A failure is logged, not returned: the answer
 * still goes to the client. */
void ej_idem_store(struct ej_idem *ic, struct ej_db *db, struct ej_arena *arena, enum ej_status st,
                   const struct ej_err *detail, const ProtobufCMessage *resp,
                   const char *request_id);

#endif
