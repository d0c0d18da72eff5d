/*
 * mail.h: outbound e-mail: templates, a transactional mail outbox, and the sender thread.
 *
 * A service queues a mail with ej_mail_enqueue inside the transaction of the change that causes
 * it (a registration, a reset request): the template is rendered from the service's own
 * <schema>.mail_templates and the message lands in <schema>.mail_outbox. If the transaction
 * rolls back, the mail never existed; if it commits, the mail is never lost. Sending is
 * asynchronous: a sender thread (ej_mailer_start, started by ej_service_run when EJ_SMTP_URL is
 * set) claims due rows with FOR UPDATE SKIP LOCKED (replicas share the outbox safely), builds an
 * RFC 5322 message and hands it to the SMTP server through ej_smtp_send. A failure is retried
 * with exponential backoff (30 s doubling to 1 h); a permanent rejection (5xx) stops after a
 * few attempts and is logged. A mail server that is down delays mail, never a request.
 *
 * Both tables live in every service schema; mail.c holds all their SQL, their DDL included
 * (ej_mail_migration), the way events.c does for the outbox.
 *
 * Templates: subject and plain-text body with {{name}} placeholders (names are [a-z0-9_]).
 * Rendering fails with EJ_ERR_INVALID when a placeholder has no value; {{site_name}} falls back
 * to EJ_SITE_NAME (default "EasyJournal") when the caller does not give it. Values substituted
 * into the subject, and the recipient, must not hold CR or LF (header injection is refused).
 *
 * Thread safety: ej_mail_* functions use the caller's struct ej_db (one thread). The mailer runs
 * its own thread with its own connection; start and stop it from main (or ej_service_run).
 */
#ifndef EJ_MAIL_H
#define EJ_MAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "http_client.h"
#include "mem.h"
#include "status.h"
#include "str.h"

#define EJ_MAIL_ADDR_MAX     254   /* longest recipient address */
#define EJ_MAIL_SUBJECT_MAX  300   /* longest template subject (bytes) */
#define EJ_MAIL_BODY_MAX     65536 /* longest template body (bytes) */
#define EJ_MAIL_DEFAULT_FROM "EasyJournal <no-reply@easyjournal.local>"

/* The DDL of <schema>.mail_templates and <schema>.mail_outbox. The runtime applies it before
 * the service's own migrations (ej_service_migrate in service.h); a program without the runtime
 * passes it to ej_db_migrate. */
extern const struct ej_migration ej_mail_migration;

/* The default template keys ej_mail_seed_defaults installs. */
#define EJ_MAIL_TPL_VERIFY_EMAIL    "verify_email"
#define EJ_MAIL_TPL_PASSWORD_RESET  "password_reset"
#define EJ_MAIL_TPL_INVITATION      "invitation"
#define EJ_MAIL_TPL_ROLE_INVITATION "role_invitation"
#define EJ_MAIL_TPL_WELCOME         "welcome"
#define EJ_MAIL_TPL_EMAIL_CHANGE    "email_change"
#define EJ_MAIL_TPL_ERASURE_CONFIRM "erasure_confirm"
#define EJ_MAIL_TPL_ACCOUNT_EXISTS  "account_exists" /* a registration with a taken address */

/* Renders the template `key` with `vars` (NULL-terminated name, value pairs, e.g.
 * {"name", "Ada", "link", "https://...", NULL}) and queues the mail to `to` in the caller's open
 * transaction on `db`, waking the senders (pg_notify, delivered at commit).
 * Errors: EJ_ERR_NOT_FOUND (no such template), EJ_ERR_INVALID (bad address, a placeholder with
 * no value, CR/LF in the recipient or in a value used in the subject; `err->field` names it). */
enum ej_status ej_mail_enqueue(struct ej_db *db, const char *template_key, const char *to,
                               const char *const *vars, struct ej_err *err);

/* Renders `tmpl` (NUL-terminated) with `vars` into `out` (appended). A placeholder without a
 * value, or malformed ("{{" without "}}", a name outside [a-z0-9_]), is EJ_ERR_INVALID with the
 * placeholder named in the message. When `for_header` is true a value holding CR or LF is
 * refused. {{site_name}} falls back to EJ_SITE_NAME. */
enum ej_status ej_mail_render(const char *tmpl, const char *const *vars, bool for_header,
                              struct ej_buf *out, struct ej_err *err);

/* Inserts the default templates that are missing (never overwrites an admin's edit).
 * Idempotent; call once at start-up by the service that sends mail. */
enum ej_status ej_mail_seed_defaults(struct ej_db *db, struct ej_err *err);

/* One template, for the admin pages. Strings live in the arena given to the call. */
struct ej_mail_template {
        const char *key;
        const char *subject;
        const char *body_text;
        const char *updated_at; /* ISO 8601 UTC */
        const char *updated_by; /* user id, "" for the defaults */
};

/* Reads template `key` into `out` (strings in `a`). EJ_ERR_NOT_FOUND when absent. */
enum ej_status ej_mail_template_get(struct ej_db *db, struct ej_arena *a, const char *key,
                                    struct ej_mail_template *out, struct ej_err *err);

/* Lists every template ordered by key: *out is an array of *n entries in `a`. */
enum ej_status ej_mail_template_list(struct ej_db *db, struct ej_arena *a,
                                     struct ej_mail_template **out, size_t *n, struct ej_err *err);

/* Replaces the subject and body of the existing template `key`, recording `updated_by`.
 * Checks them first: non-empty, within EJ_MAIL_SUBJECT_MAX / EJ_MAIL_BODY_MAX, no CR/LF in the
 * subject, every placeholder well-formed and, for the default templates, one that template's
 * default uses (field "subject" or "body_text" on EJ_ERR_INVALID).
 * EJ_ERR_NOT_FOUND when there is no such template. */
enum ej_status ej_mail_template_update(struct ej_db *db, const char *key, const char *subject,
                                       const char *body_text, const char *updated_by,
                                       struct ej_err *err);

struct ej_mailer_config {
        const char *conninfo;       /* the sender opens its own connection */
        const char *schema;         /* whose mail_outbox */
        struct ej_smtp_config smtp; /* smtp.url must be set */
        const char *from;           /* From header and envelope sender source */
        int poll_ms;       /* longest wait between scans (NOTIFY wakes it sooner); 0: 5000 */
        int backoff_min_s; /* first retry delay; 0: 30 */
        int backoff_max_s; /* longest retry delay; 0: 3600 */
        int max_permanent; /* attempts after which a permanent rejection stops; 0: 3 */
};

/* Fills the SMTP and From settings of `cfg` from the environment: EJ_SMTP_URL (NULL when unset:
 * mail is queued but not sent), EJ_SMTP_STARTTLS, EJ_SMTP_USER, EJ_SMTP_PASSWORD, EJ_MAIL_FROM
 * (EJ_MAIL_DEFAULT_FROM), EJ_SMTP_TIMEOUT_MS. Leaves conninfo and schema alone; zeroes the
 * rest. Call before threads start. EJ_ERR_INVALID on a bad value (CR/LF in From, bad numbers). */
enum ej_status ej_mailer_config_from_env(struct ej_mailer_config *cfg, struct ej_err *err);

struct ej_mailer;

/* Connects, LISTENs for new mail and starts the sender thread. *out is owned by the caller
 * (ej_mailer_stop). */
enum ej_status ej_mailer_start(struct ej_mailer **out, const struct ej_mailer_config *cfg,
                               struct ej_err *err);

/* Stops the thread after the mail in hand, closes the connection, frees. Accepts NULL. */
void ej_mailer_stop(struct ej_mailer *m);

#endif
