/*
 * store_internal.h: what the store files of the users service (store_<area>.c) share, included
 * by them only. Each store file holds the SQL of its area as static strings; a statement that
 * another area needs inside its own transaction is reached through one of the functions below,
 * never copied. Values only through parameters; each static text is prepared once per
 * connection (ej_db caches by address). The two lists whose filters vary (users, activity) are
 * built per request and run unprepared, so each is planned for its actual filters. Times
 * travel as epoch milliseconds.
 *
 * Functions marked "in the caller's transaction" neither begin nor end one. Returned strings and
 * messages live in the arena passed in. Thread safety: the caller's struct ej_db (one worker).
 */
#ifndef EJ_USERS_STORE_INTERNAL_H
#define EJ_USERS_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "users.h"

/* The columns store_user_from_row reads, from `users u`. */
#define USER_COLS                                                                                  \
        "u.id, u.name, u.email, (extract(epoch FROM u.created_at) * 1000)::bigint, "               \
        "coalesce((SELECT string_agg(r.role, ',' ORDER BY r.role) FROM user_roles r "              \
        "          WHERE r.user_id = u.id), ''), "                                                 \
        "coalesce(u.affiliation, ''), coalesce(u.orcid, ''), coalesce(u.bio, ''), u.theme, "       \
        "u.email_verified_at IS NOT NULL, u.disabled_at IS NOT NULL, "                             \
        "coalesce(u.consent_version, 0), coalesce(u.pending_email, ''), "                          \
        "coalesce((extract(epoch FROM u.last_login_at) * 1000)::bigint, 0), "                      \
        "u.erased_at IS NOT NULL, u.password_hash <> '!' "
#define USER_NCOLS 16

/* ---- rows, transactions, activity (store_util.c) ---------------------------------------- */

/* Splits the comma-separated `csv` into an array of arena strings. */
char **store_split_csv(struct ej_arena *a, const char *csv, size_t *n_out);

/* True when the boolean column `col` of `row` is true. */
bool store_val_true(const PGresult *res, int row, int col);

/* Builds a User from the USER_COLS columns of `row`. */
Ej__Users__User *store_user_from_row(struct ej_arena *a, const PGresult *res, int row);

/* `s`, or "" for NULL. */
const char *store_or_empty(const char *s);

/* The activity row and the mail (each may be NULL) that go with a change, in the caller's
 * transaction. */
enum ej_status store_extras(struct ej_db *db, const struct users_act *act,
                            const struct users_mail *mail, struct ej_err *err);

/* Rolls the transaction back and returns `st`. */
enum ej_status store_fail(struct ej_db *db, enum ej_status st);

/* Runs an UPDATE or DELETE; *rows receives how many rows it changed. */
enum ej_status store_exec_count(struct ej_db *db, const char *sql, int n, const char *const *p,
                                long *rows, struct ej_err *err);

/* Runs `sql`, which takes a user id and returns one text value, into the arena.
 * EJ_ERR_NOT_FOUND field "user_id" when it returns no row. */
enum ej_status store_user_text(struct ej_db *db, struct ej_arena *a, const char *sql,
                               const char *id, char **out, struct ej_err *err);

/* Runs one UPDATE on a user with its activity row in a transaction; EJ_ERR_NOT_FOUND when no
 * row changed, EJ_ERR_CONFLICT field "email" when the e-mail is taken. */
enum ej_status store_update_with_activity(struct ej_db *db, const char *sql, int n,
                                          const char *const *params, const struct users_act *act,
                                          struct ej_err *err);

/* ---- in the caller's transaction, from store_accounts.c --------------------------------- */

/* Revokes every live session of `user_id` but `keep` (a token hash, or NULL: all). */
enum ej_status store_user_sessions_revoke(struct ej_db *db, const char *user_id, const char *keep,
                                          struct ej_err *err);

/* ---- in the caller's transaction, from store_throttle.c --------------------------------- */

/* Forgets every hit of (`bucket`, `key`). */
enum ej_status store_throttle_forget(struct ej_db *db, const char *bucket, const char *key,
                                     struct ej_err *err);

/* ---- in the caller's transaction, from store_admin.c ------------------------------------ */

/* Locks the user row (not erased); EJ_ERR_NOT_FOUND otherwise. *email_key, when wanted,
 * receives the normalised e-mail. */
enum ej_status store_user_lock(struct ej_db *db, struct ej_arena *a, const char *user_id,
                               char **email_key, struct ej_err *err);

/* Refuses (EJ_ERR_CONFLICT) to take away the last active admin: `user_id` holds the admin role
 * and no other active account does. Serialised by an advisory lock for the transaction. */
enum ej_status store_admin_guard(struct ej_db *db, const char *user_id, struct ej_err *err);

/* Gives `user_id` `role` (no-op when it has it); `granted_by` NULL or "" for nobody. */
enum ej_status store_role_insert(struct ej_db *db, const char *user_id, const char *role,
                                 const char *granted_by, struct ej_err *err);

/* ---- in the caller's transaction, from store_invitations.c ------------------------------ */

/* Accepts, for a mailed invitation link just used by `user_id`, the pending unexpired
 * invitation `invitation_id` (the token's data) or, when that is NULL or "", every pending one
 * (the account the invitation made): each role is granted. */
enum ej_status store_invitations_accept_link(struct ej_db *db, const char *user_id,
                                             const char *invitation_id, struct ej_err *err);

/* Deletes every invitation of `user_id` (erasure). */
enum ej_status store_invitations_forget(struct ej_db *db, const char *user_id, struct ej_err *err);

/* ---- in the caller's transaction, from store_consent.c ---------------------------------- */

/* Sets the accepted consent version of `user_id` (0: none) and appends `action` ("accept",
 * "withdraw") for `ledger_version` to the consent ledger. EJ_ERR_NOT_FOUND for an unknown or
 * erased user. */
enum ej_status store_consent_note(struct ej_db *db, const char *user_id, uint32_t version,
                                  uint32_t ledger_version, const char *action, const char *addr,
                                  struct ej_err *err);

/* The anonymisation of store_user_erase (see users.h) with its event user.erased. */
enum ej_status store_erase_in_tx(struct ej_db *db, struct ej_arena *a, const char *user_id,
                                 const char *actor_id, struct ej_err *err);

#endif
