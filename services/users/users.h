/*
 * users.h: the users service's internals (accounts, roles, sessions). Subjects ej.users.<verb>.
 *
 * handlers.c holds one function per operation (validation, password hashing, tokens); it
 * touches neither SQL nor NATS directly. store.c holds every SQL statement of the service and
 * turns rows into the protobuf messages of proto/users.proto, allocated in the caller's arena.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash_str, interactive limits: 2 passes,
 * 64 MiB). Hashing is CPU- and memory-heavy, so at most `hash_slots` hashes run at once in a
 * process (a semaphore in struct users_ctx); a burst of logins then cannot take every core and
 * all the memory. Session tokens are 32 random bytes (base64url); only their SHA-256 is stored.
 *
 * Thread safety: struct users_ctx is created in main before the workers start and is read-only
 * afterwards (apart from its semaphore). Store functions use the caller's struct ej_db (one
 * worker thread).
 */
#ifndef EJ_USERS_H
#define EJ_USERS_H

#include <semaphore.h>
#include <stdint.h>

#include <sodium.h>

#include "common.pb-c.h"
#include "users.pb-c.h"

#include "db.h"
#include "mem.h"
#include "service.h"
#include "status.h"

/* Published (core NATS, not durable) with the revoked token's hash as data, so every gateway
 * replica drops that session from its cache at once. */
#define USERS_BCAST_SESSION_REVOKED "ej.bcast.session.revoked"
#define USERS_EVT_REGISTERED        "ej.evt.users.registered"

#define USERS_NAME_MAX     200  /* characters, after trimming */
#define USERS_EMAIL_MAX    254  /* bytes (RFC 5321 path limit) */
#define USERS_PASSWORD_MIN 8    /* bytes */
#define USERS_PASSWORD_MAX 1024 /* bytes */
#define USERS_TOKEN_BYTES  32
#define USERS_TOKEN_MAX    256 /* longer tokens are not ours: refused without a query */

/* The service context handed to every handler as call->svc. */
struct users_ctx {
        long long session_ttl_ms;
        sem_t hash_slots;
        /* A hash of a random password, verified against on logins with an unknown e-mail so
         * they take as long as logins with a wrong password. */
        char dummy_hash[crypto_pwhash_STRBYTES];
};

/* Prepares `ctx`: session lifetime, at most `hash_slots` concurrent hashes, the dummy hash.
 * Call after ej_ids_init (libsodium ready). Release with users_ctx_free. */
enum ej_status users_ctx_init(struct users_ctx *ctx, long long session_ttl_ms, int hash_slots,
                              struct ej_err *err);
void users_ctx_free(struct users_ctx *ctx);

/* Operations (ej_op_fn, see service.h). Request and response types in proto/users.proto:
 *   register      RegisterRequest      -> RegisterResponse  (role author; emits user.registered)
 *   login         LoginRequest         -> LoginResponse     (a new session)
 *   logout        LogoutRequest        -> ej.common.Empty   (idempotent)
 *   authenticate  AuthenticateRequest  -> Principal
 *   me            MeRequest            -> MeResponse        (the caller from Ej-User-Id) */
enum ej_status users_register(struct ej_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, struct ej_err *err);
enum ej_status users_login(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err);
enum ej_status users_logout(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err);
enum ej_status users_authenticate(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err);
enum ej_status users_me(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                        struct ej_err *err);

/* Store. Strings returned live in `a`; statuses come from ej_db (EJ_ERR_UNAVAILABLE when the
 * database is down). */

/* In one transaction: inserts the user `id` (e-mail normalised by the database as
 * lower(btrim(email))), grants `role`, and appends `event` to the outbox as user.registered.
 * EJ_ERR_CONFLICT with field "email" when the e-mail is taken. On success *created_at_ms is the
 * creation time. */
enum ej_status store_user_create(struct ej_db *db, const char *id, const char *name,
                                 const char *email, const char *password_hash, const char *role,
                                 const Ej__Users__UserRegistered *event, int64_t *created_at_ms,
                                 struct ej_err *err);

/* The user whose normalised e-mail matches `email`, with roles, and its password hash.
 * EJ_ERR_NOT_FOUND when there is none. */
enum ej_status store_user_by_email(struct ej_db *db, struct ej_arena *a, const char *email,
                                   Ej__Users__User **user, char **password_hash,
                                   struct ej_err *err);

/* The user `id` with roles (one query). EJ_ERR_NOT_FOUND when there is none. */
enum ej_status store_user_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              Ej__Users__User **user, struct ej_err *err);

/* Records a session for `user_id` under `token_hash`, expiring `ttl_ms` from now (database
 * clock); *expires_at_ms receives the expiry. */
enum ej_status store_session_create(struct ej_db *db, const char *token_hash, const char *user_id,
                                    long long ttl_ms, int64_t *expires_at_ms, struct ej_err *err);

/* Marks the session revoked (no-op when it is unknown or already revoked). */
enum ej_status store_session_revoke(struct ej_db *db, const char *token_hash, struct ej_err *err);

/* Fills `out` (user id, roles, expiry) for a live session: known, not revoked, not expired.
 * EJ_ERR_NOT_FOUND otherwise. */
enum ej_status store_session_principal(struct ej_db *db, struct ej_arena *a, const char *token_hash,
                                       Ej__Users__Principal *out, struct ej_err *err);

#endif
