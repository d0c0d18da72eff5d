/*
 * handlers_internal.h: what the handler files of the users service (handlers_<area>.c) share,
 * included by them only: input and caller checks, passwords and mailed tokens
 * (handlers_util.c), and the account and token flows that more than one area runs (defined in
 * handlers_accounts.c). No SQL and no NATS subscriptions here: the store (users.h) does the
 * former, the runtime the latter.
 *
 * Ownership: every string or message these functions return lives in the call's arena.
 * Thread safety: as users.h (one call, one worker thread).
 */
#ifndef EJ_USERS_HANDLERS_INTERNAL_H
#define EJ_USERS_HANDLERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ids.h"
#include "str.h"
#include "users.h"

#define USERS_DEFAULT_ROLE "author"

/* ---- passwords and tokens (handlers_util.c) --------------------------------------------- */

/* argon2id of `pw` into `out` (libsodium's encoded string, salt and parameters included).
 * Only slow operations (main.c) and the command line may call it: the slow pool caps how many
 * run at once. */
enum ej_status users_password_hash(struct users_ctx *ctx, const char *pw, char *out,
                                   struct ej_err *err);

/* True when `pw` matches `hash`; an unusable hash ("!") never matches but costs the same.
 * Slow operations only, like users_password_hash. */
bool users_password_verify(struct users_ctx *ctx, const char *hash, const char *pw);

/* EJ_ERR_INVALID on `field` unless `pw` is USERS_PASSWORD_MIN to USERS_PASSWORD_MAX bytes. */
enum ej_status users_check_password(const char *pw, const char *field, struct ej_err *err);

/* A fresh mailed token: `token` (to put in the link) and its hash (to store). */
struct users_fresh_token {
        char token[USERS_TOKEN_BYTES * 2];
        char hash[EJ_SHA256_HEX_LEN];
};

void users_token_new(struct users_fresh_token *t);

/* Hashes a token from a link; EJ_ERR_INVALID field "token" when it cannot be ours. */
enum ej_status users_token_hash_of(const char *token, char out[EJ_SHA256_HEX_LEN],
                                   struct ej_err *err);

/* "in 48 hours", "in 1 hour", "in 14 days": how long a mailed link lasts, for the mail. */
char *users_expires_in(struct ej_arena *a, long ttl_s);

/* The public URL of `path` carrying `token` (EJ_PUBLIC_URL<path>?token=...). */
char *users_link_to(struct ej_call *call, const char *path, const char *token);

/* ---- text checks (handlers_util.c) ------------------------------------------------------ */

/* `s` without leading and trailing white space (a view into `s`). */
struct ej_str users_trimmed(const char *s);

/* Counts the characters of `v` when it is valid UTF-8 free of control characters (line
 * breaks and tabs allowed when `multiline`); -1 if not. */
long users_text_chars_ml(struct ej_str v, bool multiline);
long users_text_chars(struct ej_str v);

/* A plausible mailbox: local@domain, one '@', a dotted domain of letters, digits and hyphens
 * (non-ASCII allowed for internationalised names), no spaces or quoting. Deliverability is
 * proved later by a confirmation mail, not here. */
bool users_email_shape_ok(struct ej_str v);

/* True when `s` is one of the NULL-terminated `list`. */
bool users_in_list(const char *const *list, const char *s);

/* The roles there are (NULL-terminated), as user_roles' CHECK lists them. */
extern const char *const users_valid_roles[];

/* The profile fields a person or an admin sets, checked and trimmed into the arena. */
struct users_profile_in {
        char *name;
        char *affiliation;
        char *orcid;
        char *bio;
};

/* The trimmed e-mail address `raw` into *out; EJ_ERR_INVALID on `field` when it does not look
 * like one. */
enum ej_status users_check_email(struct ej_call *call, const char *raw, const char *field,
                                 char **out, struct ej_err *err);

/* Checks and trims name, affiliation, ORCID iD and biography into *out; EJ_ERR_INVALID on the
 * first field that is wrong. */
enum ej_status users_check_profile(struct ej_call *call, const char *name, const char *aff,
                                   const char *orcid, const char *bio, struct users_profile_in *out,
                                   struct ej_err *err);

/* ---- callers (handlers_util.c) ---------------------------------------------------------- */

/* EJ_ERR_UNAUTHENTICATED unless the call comes from a signed-in user. */
enum ej_status users_need_user(const struct ej_call *call, struct ej_err *err);

/* As users_need_user, and EJ_ERR_FORBIDDEN unless the caller holds `role`. */
enum ej_status users_need_role(const struct ej_call *call, const char *role, struct ej_err *err);

/* EJ_ERR_INVALID field "user_id" unless `id` is a UUID. */
enum ej_status users_need_user_id(const char *id, struct ej_err *err);

/* An activity row for this call about `subject`, with optional JSON `details`. */
struct users_act users_act_of(const struct ej_call *call, const char *kind, const char *subject,
                              const char *details);

/* The caller's name for mails ("the editors" when it cannot be read); arena. */
const char *users_caller_name(struct ej_call *call);

/* {"key": "value"} in the arena. */
char *users_details1(struct ej_arena *a, const char *key, const char *value);

/* Tells every gateway to drop its cached sessions of `user_id` ("*": of everyone). The
 * database is the truth; the broadcast only shortens cache lifetimes. */
void users_announce_user(struct ej_call *call, const char *user_id);

/* ---- throttles and mail quotas (handlers_throttle.c) ------------------------------------ */

#define USERS_MAIL_NAME_MAX  40      /* characters of a name in a mail's greeting */
#define USERS_MAIL_NAME_NONE "there" /* the greeting's name when nothing of it is kept */

/* Lower-cased ASCII copy of the trimmed e-mail `email`: the key of an address in the throttle. */
char *users_email_key(struct ej_arena *a, struct ej_str email);

/* EJ_ERR_TOO_MANY (call->retry_after_s set) while the account `key` (an e-mail key) or, with
 * `with_addr`, the caller's client address has too many wrong passwords in the sign-in window
 * (EJ_LOGIN_*). */
enum ej_status users_login_gate(struct ej_call *call, const char *key, bool with_addr,
                                struct ej_err *err);

/* Counts a wrong password against the account `key` (and, with `with_addr`, the caller's
 * address), with the activity row `act` (may be NULL). */
enum ej_status users_login_failure(struct ej_call *call, const char *key, bool with_addr,
                                   const struct users_act *act, struct ej_err *err);

/* A signed-in person confirming their password `pw` (stored `hash`) for a change of their own
 * account `me`: under the same per-account throttle as sign-in. While it is locked,
 * EJ_ERR_TOO_MANY with call->retry_after_s, without checking; a wrong password counts as a
 * failed sign-in and is EJ_ERR_INVALID on `field` with the message `wrong`. */
enum ej_status users_check_own_password(struct ej_call *call, const Ej__Users__User *me,
                                        const char *hash, const char *pw, const char *field,
                                        const char *wrong, struct ej_err *err);

/* Takes one mail of the quotas (EJ_MAIL_*) for a mail to `to` caused by this call: per
 * recipient, per client address, and per account (the signed-in caller, else `account_id`,
 * the account the mail is about, may be NULL). *allowed is false when a quota is spent: the
 * caller then queues nothing and answers as if it had (the answer must not differ). `what`
 * names the mail in the log. */
enum ej_status users_mail_allowed(struct ej_call *call, const char *to, const char *account_id,
                                  const char *what, bool *allowed, struct ej_err *err);

/* The form of a person's name that goes into a mail's greeting, in the arena: at most
 * USERS_MAIL_NAME_MAX characters of letters, hyphens and apostrophes; every run of anything
 * else (digits, dots, slashes, "@", ":", symbols, controls) becomes one space, so a name
 * chosen by whoever registers cannot carry a link, an address or a message to someone else's
 * mailbox. USERS_MAIL_NAME_NONE when nothing is kept. */
char *users_mail_name(struct ej_arena *a, const char *name);

/* ---- flows shared by several areas (handlers_accounts.c) -------------------------------- */

/* A new account in one transaction: the user, roles, a mailed token, the consent record, the
 * event, the activity row and the mail. `password` NULL: no password, an invitation is mailed.
 * *user_out receives the account as created. */
struct users_account_plan {
        const struct users_profile_in *p;
        const char *email;
        const char *password; /* NULL: invited */
        const char *const *roles;
        size_t n_roles;
        bool verified;
        int consent_version;
        const char *act_kind;
        bool no_mail;        /* true: no token and no mail (a mail quota is spent) */
        const char *inviter; /* name in the invitation mail */
        const char *role_label;
};

enum ej_status users_account_create(struct ej_call *call, const struct users_account_plan *plan,
                                    Ej__Users__User **user_out, struct ej_err *err);

/* Applies a mailed token of `purpose` (see store_token_apply); *user, when wanted, receives
 * the account afterwards. */
enum ej_status users_apply_token(struct ej_call *call, const char *token, const char *purpose,
                                 const char *password_hash, Ej__Users__User **user,
                                 struct ej_err *err);

/* Issues a single-use token of `purpose` for `user` that lives `ttl_s` seconds and, in the same
 * transaction, records `act` and queues the mail `tpl` whose link is `path`?token=... */
enum ej_status users_issue_mailed_token(struct ej_call *call, const Ej__Users__User *user,
                                        const char *purpose, long ttl_s, const char *path,
                                        const char *tpl, const struct users_act *act,
                                        struct ej_err *err);

#endif
