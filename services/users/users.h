/*
 * users.h: the users service's internals (accounts, roles, sessions, profile, admin user
 * management, activity log, consent, privacy policy, export and erasure). Subjects
 * ej.users.<verb>; the verbs and their messages are listed in proto/users.proto.
 *
 * Files by area: handlers_<area>.c hold one function per operation (validation, role checks,
 * password hashing, tokens, mail variables, broadcasts) and touch no SQL; store_<area>.c hold
 * every SQL statement of that area and turn rows into the protobuf messages of
 * proto/users.proto, allocated in the caller's arena. The areas: accounts (accounts and
 * sessions), admin (administration of users, the activity log), consent (consent, privacy
 * policy, GDPR export and erasure), mail (mail templates: handlers only, their SQL is
 * common/mail.c's), throttle (one shared throttle with named buckets for wrong passwords and
 * for the mail a caller can cause; it lives in PostgreSQL, so every replica sees one count). What
 * the handler files share is in handlers_internal.h (handlers_util.c), what the store files share
 * in store_internal.h (store_util.c). config.c reads the settings. A change and what it causes
 * (activity row, queued mail, outbox event) are written in one transaction by one store function:
 * nothing is half-written.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash_str, interactive limits: 2 passes,
 * 64 MiB). Hashing is CPU- and memory-heavy, so every operation that hashes or verifies a
 * password is marked slow in main.c's table: the runtime runs it on its slow pool
 * (EJ_SLOW_WORKERS threads, service.h), which caps the hashes running at once per process and
 * keeps a burst of logins from holding up other requests or taking all the memory. Session tokens
 * and mailed tokens are 32 random bytes (base64url); only their SHA-256 is stored. An account
 * without a usable password (invited, erased) stores "!".
 *
 * Thread safety: struct users_ctx is created in main before the workers start and is read-only
 * afterwards. Store functions use the caller's struct ej_db (one
 * worker thread).
 */
#ifndef EJ_USERS_H
#define EJ_USERS_H

#include <stdbool.h>
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
/* Published with a user id as data when that user's roles, password, state or sessions
 * changed: every gateway drops all cached sessions of the user. */
#define USERS_BCAST_USER_CHANGED "ej.bcast.session.user_changed"
#define USERS_EVT_REGISTERED     "ej.evt.users.registered"
#define USERS_EVT_ERASED         "ej.evt.users.erased"

#define USERS_NAME_MAX         200  /* characters, after trimming */
#define USERS_EMAIL_MAX        254  /* bytes (RFC 5321 path limit) */
#define USERS_AFFILIATION_MAX  300  /* characters */
#define USERS_BIO_MAX          5000 /* characters */
#define USERS_PASSWORD_MIN     8    /* bytes */
#define USERS_PASSWORD_MAX     1024 /* bytes */
#define USERS_MARKDOWN_MAX     100000
#define USERS_TOKEN_BYTES      32
#define USERS_TOKEN_MAX        256 /* longer tokens are not ours: refused without a query */
#define USERS_NO_PASSWORD      "!" /* stored instead of a hash: no password can match */
#define USERS_PAGE_DEFAULT     50
#define USERS_PAGE_MAX         200
#define USERS_COUNT_EXACT      2000 /* users-list totals above this are estimates */
#define USERS_SORT_MATCHES_MAX 5000 /* filtered lists up to this many matches sort them */

/* The service context handed to every handler as call->svc (and to the command line). */
struct users_ctx {
        long long session_ttl_ms;       /* remember me (EJ_SESSION_TTL_HOURS, 720) */
        long long short_session_ttl_ms; /* otherwise (EJ_SESSION_SHORT_TTL_HOURS, 12) */
        long verify_ttl_s;              /* EJ_VERIFY_TTL_S (48 h) */
        long reset_ttl_s;               /* EJ_RESET_TTL_S (1 h) */
        long invite_ttl_s;              /* EJ_INVITE_TTL_S (14 days) */
        long email_change_ttl_s;        /* EJ_EMAIL_CHANGE_TTL_S (24 h) */
        long erasure_ttl_s;             /* EJ_ERASURE_TTL_S (24 h) */
        long login_window_s;            /* EJ_LOGIN_WINDOW_S (900) */
        long login_max_account;         /* EJ_LOGIN_MAX_PER_ACCOUNT (5) */
        long login_max_addr;            /* EJ_LOGIN_MAX_PER_ADDR (20) */
        long mail_window_s;             /* EJ_MAIL_WINDOW_S (3600) */
        long mail_max_recipient;        /* EJ_MAIL_MAX_PER_RECIPIENT (3) */
        long mail_max_addr;             /* EJ_MAIL_MAX_PER_ADDR (20) */
        long mail_max_account;          /* EJ_MAIL_MAX_PER_ACCOUNT (5) */
        long gdpr_timeout_ms;           /* EJ_GDPR_TIMEOUT_MS (5000) */
        const char *public_url;         /* EJ_PUBLIC_URL (http://127.0.0.1:8080), links in mail */
        const char *gdpr_services;      /* EJ_GDPR_SERVICES: comma list, "" = none */
        /* A hash of a random password, verified against on logins with an unknown e-mail so
         * they take as long as logins with a wrong password. */
        char dummy_hash[crypto_pwhash_STRBYTES];
};

/* config.c: reads the settings above from the environment (the service's only reader besides
 * main.c) and prepares the dummy hash. Call after ej_ids_init, before threads start. Release
 * with users_ctx_free. */
enum ej_status users_ctx_init(struct users_ctx *ctx, struct ej_err *err);
void users_ctx_free(struct users_ctx *ctx);

/* Operations (ej_op_fn, see service.h); one per verb of proto/users.proto, same names. */
#define USERS_OP(name)                                                                             \
        enum ej_status users_##name(struct ej_call *call, const ProtobufCMessage *req,             \
                                    ProtobufCMessage *resp, struct ej_err *err)
/* handlers_accounts.c: accounts and sessions. */
USERS_OP(register_account);
USERS_OP(verify_email);
USERS_OP(resend_verification);
USERS_OP(login);
USERS_OP(logout);
USERS_OP(authenticate);
USERS_OP(me);
USERS_OP(update_profile);
USERS_OP(change_password);
USERS_OP(request_password_reset);
USERS_OP(reset_password);
USERS_OP(change_email);
USERS_OP(confirm_email_change);
USERS_OP(accept_invitation);
/* handlers_invitations.c: invitations to a role. */
USERS_OP(invite_user);
USERS_OP(list_my_invitations);
USERS_OP(accept_role_invitation);
USERS_OP(decline_role_invitation);
/* handlers_admin.c: administration. */
USERS_OP(list_users);
USERS_OP(get_user);
USERS_OP(create_user);
USERS_OP(update_user);
USERS_OP(grant_role);
USERS_OP(revoke_role);
USERS_OP(deactivate_user);
USERS_OP(reactivate_user);
USERS_OP(erase_user);
USERS_OP(list_activity);
/* handlers_consent.c: consent, privacy policy, GDPR export and erasure. */
USERS_OP(get_consent);
USERS_OP(accept_consent);
USERS_OP(withdraw_consent);
USERS_OP(get_privacy);
USERS_OP(export_my_data);
USERS_OP(request_erasure);
USERS_OP(confirm_erasure);
USERS_OP(publish_consent);
USERS_OP(consent_stats);
USERS_OP(set_privacy);
/* handlers_mail.c: mail templates. */
USERS_OP(list_mail_templates);
USERS_OP(update_mail_template);
#undef USERS_OP

/* ---- command line (handlers_admin.c) ---------------------------------------------------- */

/* Command line (ej-users create-user): creates, or with `update` brings up to date, the
 * account `email` with `roles` (comma list) and, when `password` is non-NULL, that password
 * (the account is then verified; without one an invitation is mailed). Prints nothing; the
 * user id goes to `id_out`. EJ_ERR_CONFLICT when it exists and `update` is false. */
enum ej_status users_cli_create_user(struct users_ctx *ctx, struct ej_db *db, const char *email,
                                     const char *name, const char *roles, const char *password,
                                     bool update, char id_out[37], struct ej_err *err);

/* Command line (ej-users seed-bench): `count` synthetic users for the benchmark, all with one
 * password ("bench-password"), e-mail bench-<n>@bench.easyjournal.org. Idempotent. */
enum ej_status users_cli_seed_bench(struct users_ctx *ctx, struct ej_db *db, long count,
                                    struct ej_err *err);

/* ---- Store ------------------------------------------------------------------------------ */

/* An activity row written with a change (kind, actor, subject, address, details as a JSON
 * object text or NULL). */
struct users_act {
        const char *kind;
        const char *actor_id;    /* NULL or "" for none */
        const char *user_id;     /* NULL or "" for none */
        const char *client_addr; /* NULL or "" for none */
        const char *details;     /* JSON object text, NULL for {} */
};

/* A mail queued with a change (template key, recipient, NULL-terminated name/value pairs). */
struct users_mail {
        const char *tpl;
        const char *to;
        const char *const *vars;
};

/* A single-use token issued with a change. */
struct users_token {
        const char *hash; /* SHA-256 hex */
        const char *purpose;
        long ttl_s;
        const char *data; /* NULL, the new address (email_change) or an invitation id */
};

/* A new account. */
struct users_new {
        const char *id;
        const char *name;
        const char *email;
        const char *password_hash; /* USERS_NO_PASSWORD for none */
        const char *affiliation;   /* NULL or "" for none */
        const char *orcid;
        const char *bio;
        bool verified;
        const char *const *roles; /* n_roles names */
        size_t n_roles;
        const char *granted_by;  /* NULL or the admin's id */
        int consent_version;     /* > 0: accepted at creation */
        const char *client_addr; /* for the consent ledger */
};

/* ---- accounts and sessions (store_accounts.c) ------------------------------------------- */

/* Inserts the account, its roles, the token (may be NULL), the consent record, the event
 * user.registered (`event` may be NULL), the activity and the mail (both may be NULL), in one
 * transaction. EJ_ERR_CONFLICT with field "email" when the e-mail is taken. */
enum ej_status store_user_insert(struct ej_db *db, const struct users_new *nu,
                                 const struct users_token *tok,
                                 const Ej__Users__UserRegistered *event,
                                 const struct users_act *act, const struct users_mail *mail,
                                 int64_t *created_at_ms, struct ej_err *err);

/* The account whose normalised e-mail is `email` (any state), with its password hash.
 * EJ_ERR_NOT_FOUND when there is none. */
enum ej_status store_user_by_email(struct ej_db *db, struct ej_arena *a, const char *email,
                                   Ej__Users__User **user, char **password_hash,
                                   struct ej_err *err);

/* The account `id` with roles. EJ_ERR_NOT_FOUND when there is none. */
enum ej_status store_user_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              Ej__Users__User **user, struct ej_err *err);

/* The password hash of `id`. EJ_ERR_NOT_FOUND when there is none. */
enum ej_status store_user_password_hash(struct ej_db *db, struct ej_arena *a, const char *id,
                                        char **hash, struct ej_err *err);

/* A successful login: the session, last_login_at, the account's failed sign-ins forgotten
 * (bucket USERS_TB_LOGIN_ACCOUNT of `email_key`), the activity row. */
enum ej_status store_login_ok(struct ej_db *db, const char *token_hash, const char *user_id,
                              long long ttl_ms, const char *email_key, const struct users_act *act,
                              int64_t *expires_at_ms, struct ej_err *err);

/* Marks the session revoked (no-op when it is unknown or already revoked); with `act`, writes
 * the activity row for the session's user. */
enum ej_status store_session_revoke(struct ej_db *db, const char *token_hash,
                                    const struct users_act *act, struct ej_err *err);

/* Fills `out` for a live session: known, not revoked, not expired, account active.
 * EJ_ERR_NOT_FOUND otherwise. */
enum ej_status store_session_principal(struct ej_db *db, struct ej_arena *a, const char *token_hash,
                                       Ej__Users__Principal *out, struct ej_err *err);

/* Issues a token for `user_id` (older unused ones of that purpose are dropped) with the
 * activity and the mail, in one transaction. */
enum ej_status store_token_issue(struct ej_db *db, const char *user_id,
                                 const struct users_token *tok, const struct users_act *act,
                                 const struct users_mail *mail, struct ej_err *err);

/* Consumes the token and applies its purpose in one transaction:
 *   verify_email   marks the account verified
 *   password_reset sets `password_hash`, revokes every session
 *   invitation     sets `password_hash`, marks verified, accepts the pending invitation the
 *                  token names in its data (every pending one when it names none)
 *   email_change   moves the pending address in (EJ_ERR_CONFLICT field "email" when taken)
 *   erasure        erases the account (see store_user_erase)
 * EJ_ERR_INVALID with field "token" when it is unknown, of another purpose, used ("this link
 * has already been used") or expired ("this link has expired"). *user_id receives the owner. */
enum ej_status store_token_apply(struct ej_db *db, struct ej_arena *a, const char *token_hash,
                                 const char *purpose, const char *password_hash,
                                 const char *client_addr, char **user_id, struct ej_err *err);

/* Replaces name, affiliation, orcid, bio and (when non-empty) theme. */
enum ej_status store_profile_update(struct ej_db *db, const char *user_id, const char *name,
                                    const char *affiliation, const char *orcid, const char *bio,
                                    const char *theme, const struct users_act *act,
                                    struct ej_err *err);

/* Sets the password; revokes every session of the user except `keep_token_hash` (NULL: all). */
enum ej_status store_password_set(struct ej_db *db, const char *user_id, const char *password_hash,
                                  const char *keep_token_hash, const struct users_act *act,
                                  struct ej_err *err);

/* Marks the account's e-mail address verified (no-op when it already is). */
enum ej_status store_user_mark_verified(struct ej_db *db, const char *user_id, struct ej_err *err);

/* Queues one mail on its own (when nothing else changes with it). */
enum ej_status store_mail_queue(struct ej_db *db, const struct users_mail *mail,
                                struct ej_err *err);

/* ---- the shared throttle (store_throttle.c) --------------------------------------------- */

/* Buckets of the throttle (table throttle_hits): what a hit counts, and its key. */
#define USERS_TB_LOGIN_ACCOUNT                                                                     \
        "login.account"                      /* a wrong password for an account: its e-mail key    \
                                              */
#define USERS_TB_LOGIN_ADDR   "login.addr"   /* a failed sign-in from a client address */
#define USERS_TB_MAIL_TO      "mail.to"      /* a mail a caller caused: the recipient's key */
#define USERS_TB_MAIL_ADDR    "mail.addr"    /* the same mail: the caller's client address */
#define USERS_TB_MAIL_ACCOUNT "mail.account" /* the same mail: the account (id) it is about */
#define USERS_LIMITS_MAX      4              /* limits one call checks or takes at most */

/* One limit: at most `max` hits of (`bucket`, `key`) within the last `window_s` seconds. A
 * limit whose key is NULL or "" does not apply (an anonymous caller has no account). */
struct users_limit {
        const char *bucket;
        const char *key;
        long max;
        long window_s;
};

/* EJ_ERR_TOO_MANY, with *retry_after_s the seconds until the oldest hit of a full limit leaves
 * its window (the longest such wait), when any of the `n` limits already holds `max` hits.
 * Records nothing. */
enum ej_status store_throttle_check(struct ej_db *db, const struct users_limit *lim, size_t n,
                                    int *retry_after_s, struct ej_err *err);

/* Records one hit on each applicable limit and, when non-NULL, the activity row, in one
 * transaction; purges hits older than a day now and then. */
enum ej_status store_throttle_note(struct ej_db *db, const struct users_limit *lim, size_t n,
                                   const struct users_act *act, struct ej_err *err);

/* Checks and records as one step, serialised per (bucket, key) across replicas by advisory
 * locks: when every applicable limit has room, records a hit on each and sets *granted;
 * otherwise records nothing and clears it. At most USERS_LIMITS_MAX limits. */
enum ej_status store_throttle_take(struct ej_db *db, const struct users_limit *lim, size_t n,
                                   bool *granted, struct ej_err *err);

/* ---- administration (store_admin.c) ----------------------------------------------------- */

/* Admin edit: name, e-mail (unverified when it changes), affiliation, orcid, bio.
 * EJ_ERR_NOT_FOUND, EJ_ERR_CONFLICT field "email". */
enum ej_status store_user_admin_update(struct ej_db *db, const char *user_id, const char *name,
                                       const char *email, const char *affiliation,
                                       const char *orcid, const char *bio,
                                       const struct users_act *act, struct ej_err *err);

/* Grants `role` (idempotent). EJ_ERR_NOT_FOUND for an unknown or erased user. */
enum ej_status store_role_grant(struct ej_db *db, const char *user_id, const char *role,
                                const char *granted_by, const struct users_act *act,
                                struct ej_err *err);

/* Revokes `role`; EJ_ERR_CONFLICT when that would leave no active admin. */
enum ej_status store_role_revoke(struct ej_db *db, const char *user_id, const char *role,
                                 const struct users_act *act, struct ej_err *err);

/* Deactivates (revoking every session; EJ_ERR_CONFLICT for the last active admin) or
 * reactivates the account. */
enum ej_status store_user_set_active(struct ej_db *db, const char *user_id, bool active,
                                     const struct users_act *act, struct ej_err *err);

struct users_list_query {
        const char *query; /* "" for all */
        const char *role;  /* "" for all */
        const char *sort;  /* "name", "email", "created" */
        bool desc;
        const char *status; /* "", "active", "deactivated", "unverified" */
        const char *cursor; /* "" for the first page */
        unsigned limit;
};

/* One page of the users list; *next_cursor is "" on the last page. *total is exact when at
 * most USERS_COUNT_EXACT accounts match (*total_exact), otherwise the planner's estimate.
 * EJ_ERR_INVALID field "page.cursor" for a cursor that is not ours (or of another sort). */
enum ej_status store_users_list(struct ej_db *db, struct ej_arena *a,
                                const struct users_list_query *q, Ej__Users__User ***users,
                                size_t *n, char **next_cursor, uint64_t *total, bool *total_exact,
                                struct ej_err *err);

/* One page of the activity log, newest first. */
enum ej_status store_activity_list(struct ej_db *db, struct ej_arena *a, const char *kind,
                                   const char *user_id, int64_t from_ms, int64_t to_ms,
                                   const char *cursor, unsigned limit,
                                   Ej__Users__ActivityEntry ***entries, size_t *n,
                                   char **next_cursor, struct ej_err *err);

/* Bulk insert of synthetic users for the benchmark (see users_cli_seed_bench). */
enum ej_status store_bench_seed(struct ej_db *db, long count, const char *password_hash,
                                struct ej_err *err);

/* ---- invitations to a role (store_invitations.c) ---------------------------------------- */

/* An invitation to open: `user_id` is asked to take `role` by `invited_by` (NULL or "" for
 * nobody), for `ttl_s` seconds. */
struct users_invitation_new {
        const char *user_id;
        const char *role;
        const char *invited_by;
        long ttl_s;
};

/* In one transaction: when the person (not erased: EJ_ERR_NOT_FOUND) holds the role already,
 * sets *already_member and writes nothing; otherwise opens the pending invitation (or renews
 * the pending one) with the activity and the mail (each may be NULL). *invitation_id receives
 * its id (arena), NULL when none was opened. Nothing is granted. */
enum ej_status store_invitation_open(struct ej_db *db, struct ej_arena *a,
                                     const struct users_invitation_new *in,
                                     const struct users_act *act, const struct users_mail *mail,
                                     char **invitation_id, bool *already_member,
                                     struct ej_err *err);

/* The pending, unexpired invitations of `user_id`, oldest first (arena). */
enum ej_status store_invitations_mine(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                      Ej__Users__Invitation ***out, size_t *n, struct ej_err *err);

/* Answers the pending invitation `id` of `user_id`: accepted (the role is granted, by the
 * inviter) or declined, with `act` (its details are set to the role) in one transaction.
 * EJ_ERR_NOT_FOUND field "invitation_id" when `user_id` has no such pending invitation;
 * EJ_ERR_CONFLICT when accepting one that has expired. *out receives it as it now stands. */
enum ej_status store_invitation_answer(struct ej_db *db, struct ej_arena *a, const char *id,
                                       const char *user_id, bool accept, struct users_act *act,
                                       Ej__Users__Invitation **out, struct ej_err *err);

/* ---- consent and GDPR (store_consent.c) ------------------------------------------------- */

/* Consent state of `id`: whether a required version newer than the accepted one exists, and
 * the current version (0: none published). */
enum ej_status store_user_consent_state(struct ej_db *db, const char *id, bool *required,
                                        uint32_t *current, struct ej_err *err);

/* Erasure: anonymises the account (name "Deleted user", e-mail deleted-<uuid>@invalid,
 * password unusable, profile cleared, roles removed, sessions revoked, tokens deleted, client
 * addresses cleared from its activity and consent rows), keeps the row, emits user.erased.
 * EJ_ERR_CONFLICT for the last active admin. */
enum ej_status store_user_erase(struct ej_db *db, const char *user_id, const char *actor_id,
                                const struct users_act *act, struct ej_err *err);

/* The current consent version (version 0 and empty texts when none; html left empty). */
enum ej_status store_consent_current(struct ej_db *db, struct ej_arena *a,
                                     Ej__Users__ConsentVersion *out, struct ej_err *err);

/* Publishes the next version; *version receives its number. */
enum ej_status store_consent_publish(struct ej_db *db, const char *markdown, bool required,
                                     const char *actor_id, const struct users_act *act,
                                     uint32_t *version, struct ej_err *err);

/* Records acceptance of `version` (must be the current one: EJ_ERR_CONFLICT field "version"
 * otherwise) or, with version 0, withdrawal of the current acceptance. */
enum ej_status store_consent_record(struct ej_db *db, const char *user_id, uint32_t version,
                                    const char *client_addr, const struct users_act *act,
                                    struct ej_err *err);

enum ej_status store_consent_stats(struct ej_db *db, Ej__Users__ConsentStats *out,
                                   struct ej_err *err);

/* A site text (privacy_policy); empty markdown and 0 when never set. */
enum ej_status store_site_text_get(struct ej_db *db, struct ej_arena *a, const char *key,
                                   char **markdown, int64_t *updated_at_ms, struct ej_err *err);
enum ej_status store_site_text_set(struct ej_db *db, const char *key, const char *markdown,
                                   const char *actor_id, const struct users_act *act,
                                   struct ej_err *err);

/* Everything this service holds about `user_id` as one JSON object (no secrets: no password
 * hash, no token hashes). */
enum ej_status store_export_json(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                 char **json, struct ej_err *err);

/* ---- shared (store_util.c) -------------------------------------------------------------- */

/* Appends an activity row on its own. */
enum ej_status store_activity_add(struct ej_db *db, const struct users_act *act,
                                  struct ej_err *err);

#endif
