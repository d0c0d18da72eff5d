/*
 * mail.c: templates, the transactional mail outbox and the sender thread (see mail.h).
 *
 * This file holds every query on the shared mail tables (<schema>.mail_templates and
 * <schema>.mail_outbox, created by the built-in migration in db.c), the way events.c holds those
 * of the event outbox: services call the functions here instead of writing their own SQL.
 */
#include "mail.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ids.h"
#include "log.h"

#define MAIL_SITE_NAME_DEFAULT "EasyJournal"
#define MAIL_VAR_NAME_MAX      64

/* ---- SQL of the shared mail tables ---- */

/* Their DDL, in every service schema. The name, older than this module's owning its DDL, is
 * what schema_migrations records; the DDL is idempotent. */
static const char mail_ddl[] =
    "CREATE TABLE IF NOT EXISTS mail_templates (\n"
    "    key text PRIMARY KEY,\n"
    "    subject text NOT NULL,\n"
    "    body_text text NOT NULL,\n"
    "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
    "    updated_by text NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS mail_outbox (\n"
    "    id uuid PRIMARY KEY,\n"
    "    to_addr text NOT NULL,\n"
    "    subject text NOT NULL,\n"
    "    body text NOT NULL,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    attempts integer NOT NULL DEFAULT 0,\n"
    "    next_attempt_at timestamptz NOT NULL DEFAULT now(),\n"
    "    sent_at timestamptz,\n"
    "    failed_at timestamptz,\n"
    "    last_error text NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at)\n"
    "    WHERE sent_at IS NULL AND failed_at IS NULL;\n";

const struct ej_migration ej_mail_migration = {"000_common_mail.sql", mail_ddl};

static const char sql_template_get[] =
    "SELECT key, subject, body_text,"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), updated_by"
    " FROM mail_templates WHERE key = $1";

static const char sql_template_list[] =
    "SELECT key, subject, body_text,"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), updated_by"
    " FROM mail_templates ORDER BY key";

static const char sql_template_update[] =
    "UPDATE mail_templates SET subject = $2, body_text = $3, updated_by = $4, updated_at = now()"
    " WHERE key = $1";

static const char sql_template_seed[] =
    "INSERT INTO mail_templates (key, subject, body_text) VALUES ($1, $2, $3)"
    " ON CONFLICT (key) DO NOTHING";

/* The mail and the wake-up of the senders in one statement: pg_notify is transactional, so the
 * senders hear of the mail when (and only if) the caller commits. */
static const char sql_outbox_add[] =
    "WITH m AS (INSERT INTO mail_outbox (id, to_addr, subject, body) VALUES ($1, $2, $3, $4)"
    " RETURNING id)"
    " SELECT pg_notify(current_schema() || '_mail', '') FROM m";

/* One due mail, locked until the sender's transaction ends: another sender skips it. */
static const char sql_outbox_claim[] =
    "SELECT id, to_addr, subject, body, attempts FROM mail_outbox"
    " WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED";

static const char sql_outbox_sent[] =
    "UPDATE mail_outbox SET sent_at = now(), attempts = attempts + 1, last_error = ''"
    " WHERE id = $1";

/* $2: seconds until the next attempt; $3: "t" when the mail is given up on. */
static const char sql_outbox_failed[] =
    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $4,"
    " next_attempt_at = now() + make_interval(secs => $2::double precision),"
    " failed_at = CASE WHEN $3::boolean THEN now() END"
    " WHERE id = $1";

/* ---- default templates ---- */

struct mail_default {
        const char *key;
        const char *subject;
        const char *body;
};

static const struct mail_default mail_defaults[] = {
    {EJ_MAIL_TPL_VERIFY_EMAIL, "Confirm your e-mail address for {{site_name}}",
     "Hello {{name}},\n"
     "\n"
     "Thank you for registering with {{site_name}}. Please confirm your e-mail address by\n"
     "opening this link:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The link can be used once and expires {{expires}}.\n"
     "\n"
     "If you did not create an account, you can ignore this message; nothing more will happen.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_PASSWORD_RESET, "Reset your {{site_name}} password",
     "Hello {{name}},\n"
     "\n"
     "Someone asked to reset the password of your {{site_name}} account. To choose a new\n"
     "password, open this link:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The link can be used once and expires {{expires}}.\n"
     "\n"
     "If it was not you, ignore this message: your password stays as it is.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_INVITATION, "You are invited to {{site_name}}",
     "Hello {{name}},\n"
     "\n"
     "{{inviter}} has invited you to take part in {{site_name}} as {{role}}.\n"
     "\n"
     "To accept, open this link and choose your own password:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The invitation expires {{expires}}. If you were not expecting it, you can ignore this\n"
     "message.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_ROLE_INVITATION, "An invitation to take part in {{site_name}}",
     "Hello {{name}},\n"
     "\n"
     "{{inviter}} has invited you to take part in {{site_name}} as {{role}}.\n"
     "\n"
     "Nothing changes on your account unless you accept. To accept or decline, sign in and\n"
     "open your invitations:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The invitation expires {{expires}}. If you were not expecting it, you can ignore this\n"
     "message.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_WELCOME, "Welcome to {{site_name}}",
     "Hello {{name}},\n"
     "\n"
     "Your {{site_name}} account is ready. You can sign in at any time here:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "From your profile you can update your details, your affiliation and your ORCID iD.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_EMAIL_CHANGE, "Confirm your new e-mail address for {{site_name}}",
     "Hello {{name}},\n"
     "\n"
     "You asked to use this address for your {{site_name}} account. Please confirm it by\n"
     "opening this link:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The link can be used once and expires {{expires}}. Until you confirm, your account keeps\n"
     "its current address.\n"
     "\n"
     "If you did not ask for this, you can ignore this message.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_ERASURE_CONFIRM, "Confirm the erasure of your {{site_name}} account",
     "Hello {{name}},\n"
     "\n"
     "You asked us to erase your {{site_name}} account and the personal data we hold about\n"
     "you. Published scholarly work keeps its author list as it was published.\n"
     "\n"
     "This cannot be undone. To confirm, open this link:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "The link can be used once and expires {{expires}}. If you did not ask for this, ignore\n"
     "this message and your account stays as it is.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
    {EJ_MAIL_TPL_ACCOUNT_EXISTS, "Someone tried to register at {{site_name}} with your address",
     "Hello {{name}},\n"
     "\n"
     "Someone, perhaps you, tried to create a new {{site_name}} account with this e-mail\n"
     "address ({{email}}). You already have an account with it, so no second one was made.\n"
     "\n"
     "If it was you, sign in here:\n"
     "\n"
     "{{link}}\n"
     "\n"
     "Forgot your password? Ask for a new one here:\n"
     "\n"
     "{{reset_link}}\n"
     "\n"
     "If it was not you, ignore this message: your account stays as it is.\n"
     "\n"
     "Best wishes,\n"
     "{{site_name}}\n"},
};

/* ---- rendering ---- */

static bool mail_has_crlf(const char *s)
{
        return strpbrk(s, "\r\n") != NULL;
}

static bool mail_var_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses the placeholder whose "{{" is at `p`: the name's view into *name, the length of the
 * whole placeholder into *len. False when it is malformed. */
static bool mail_placeholder(const char *p, struct ej_str *name, size_t *len)
{
        const char *q = p + 2;
        const char *start;

        while (*q == ' ')
                q++;
        start = q;
        while (mail_var_char(*q))
                q++;
        name->p = start;
        name->n = (size_t)(q - start);
        while (*q == ' ')
                q++;
        if (name->n == 0 || name->n > MAIL_VAR_NAME_MAX || q[0] != '}' || q[1] != '}')
                return false;
        *len = (size_t)(q + 2 - p);
        return true;
}

static const char *mail_var(const char *const *vars, struct ej_str name)
{
        for (size_t i = 0; vars != NULL && vars[i] != NULL && vars[i + 1] != NULL; i += 2)
                if (ej_str_eq_c(name, vars[i]))
                        return vars[i + 1];
        if (ej_str_eq_c(name, "site_name"))
                return ej_env_str("EJ_SITE_NAME", MAIL_SITE_NAME_DEFAULT);
        return NULL;
}

enum ej_status ej_mail_render(const char *tmpl, const char *const *vars, bool for_header,
                              struct ej_buf *out, struct ej_err *err)
{
        const char *p = tmpl;

        while (*p != '\0') {
                const char *open = strstr(p, "{{");
                struct ej_str name;
                const char *val;
                size_t len;

                if (open == NULL) {
                        ej_buf_append_c(out, p);
                        break;
                }
                ej_buf_append(out, p, (size_t)(open - p));
                if (!mail_placeholder(open, &name, &len))
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "template: malformed placeholder near \"%.20s\"", open);
                val = mail_var(vars, name);
                if (val == NULL)
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "template: placeholder {{%.*s}} has no value",
                                          (int)name.n, name.p);
                if (for_header && mail_has_crlf(val)) {
                        char field[MAIL_VAR_NAME_MAX + 1];

                        (void)snprintf(field, sizeof(field), "%.*s", (int)name.n, name.p);
                        return ej_err_set(err, EJ_ERR_INVALID, field,
                                          "%s must not contain line breaks", field);
                }
                ej_buf_append_c(out, val);
                p = open + len;
        }
        return EJ_OK;
}

/* True when text `t` holds the placeholder `name`. */
static bool mail_uses(const char *t, struct ej_str name)
{
        const char *p = t;

        while ((p = strstr(p, "{{")) != NULL) {
                struct ej_str n;
                size_t len;

                if (!mail_placeholder(p, &n, &len)) {
                        p += 2;
                        continue;
                }
                if (ej_str_eq(n, name))
                        return true;
                p += len;
        }
        return false;
}

/* The default of template `key`, or NULL for a template of the service's own. */
static const struct mail_default *mail_default_of(const char *key)
{
        for (size_t i = 0; i < sizeof(mail_defaults) / sizeof(mail_defaults[0]); i++)
                if (strcmp(mail_defaults[i].key, key) == 0)
                        return &mail_defaults[i];
        return NULL;
}

/* Checks a template text: every "{{" opens a well-formed placeholder and, for a default
 * template, one its default uses (the values its senders give), so that an edit cannot make
 * every later mail of that kind fail to render. */
static enum ej_status mail_check_template(const char *t, const char *field,
                                          const struct mail_default *def, struct ej_err *err)
{
        const char *p = t;

        while ((p = strstr(p, "{{")) != NULL) {
                struct ej_str name;
                size_t len;

                if (!mail_placeholder(p, &name, &len))
                        return ej_err_set(err, EJ_ERR_INVALID, field,
                                          "%s: malformed placeholder near \"%.20s\" (use "
                                          "{{name}} with a-z, 0-9, _)",
                                          field, p);
                if (def != NULL && !ej_str_eq_c(name, "site_name") &&
                    !mail_uses(def->subject, name) && !mail_uses(def->body, name))
                        return ej_err_set(err, EJ_ERR_INVALID, field,
                                          "%s: {{%.*s}} is not available in the %s template", field,
                                          (int)name.n, name.p, def->key);
                p += len;
        }
        return EJ_OK;
}

/* A plausible single mailbox: local@domain, printable ASCII, no spaces, brackets or commas. */
static bool mail_addr_ok(const char *a)
{
        const char *at = strchr(a, '@');
        size_t n = strlen(a);

        if (n == 0 || n > EJ_MAIL_ADDR_MAX || at == NULL || at == a || at[1] == '\0' ||
            strchr(at + 1, '@') != NULL)
                return false;
        for (const char *p = a; *p != '\0'; p++) {
                unsigned char c = (unsigned char)*p;

                if (c <= ' ' || c >= 0x7f || strchr("<>(),;:\"[]\\", c) != NULL)
                        return false;
        }
        return true;
}

enum ej_status ej_mail_enqueue(struct ej_db *db, const char *template_key, const char *to,
                               const char *const *vars, struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        struct ej_buf subject = EJ_BUF_INIT;
        struct ej_buf body = EJ_BUF_INIT;
        char id[EJ_UUID_LEN];
        const char *kp[1] = {template_key};

        if (to == NULL || mail_has_crlf(to) || !mail_addr_ok(to)) {
                st = ej_err_set(err, EJ_ERR_INVALID, "email", "not a valid e-mail address");
                goto out;
        }
        st = ej_db_exec(db, sql_template_get, 1, kp, &res, err);
        if (st != EJ_OK)
                goto out;
        if (PQntuples(res) == 0) {
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, NULL, "no mail template \"%s\"",
                                template_key);
                goto out;
        }
        st = ej_mail_render(ej_db_val(res, 0, 1), vars, true, &subject, err);
        if (st == EJ_OK)
                st = ej_mail_render(ej_db_val(res, 0, 2), vars, false, &body, err);
        if (st != EJ_OK) {
                ej_err_prefix(err, template_key);
                goto out;
        }
        if (mail_has_crlf(subject.p != NULL ? subject.p : "")) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "%s: the subject has a line break",
                                template_key);
                goto out;
        }
        ej_uuid(id);
        {
                const char *params[4] = {id, to, subject.p != NULL ? subject.p : "",
                                         body.p != NULL ? body.p : ""};

                PQclear(res);
                res = NULL;
                st = ej_db_exec(db, sql_outbox_add, 4, params, NULL, err);
        }
out:
        PQclear(res);
        ej_buf_free(&subject);
        ej_buf_free(&body);
        return st;
}

enum ej_status ej_mail_seed_defaults(struct ej_db *db, struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        for (size_t i = 0; i < sizeof(mail_defaults) / sizeof(mail_defaults[0]) && st == EJ_OK;
             i++) {
                const char *params[3] = {mail_defaults[i].key, mail_defaults[i].subject,
                                         mail_defaults[i].body};

                st = ej_db_exec(db, sql_template_seed, 3, params, NULL, err);
        }
        if (st != EJ_OK)
                ej_err_prefix(err, "mail templates");
        return st;
}

static void mail_template_row(struct ej_arena *a, const PGresult *res, int row,
                              struct ej_mail_template *t)
{
        t->key = ej_arena_strdup(a, ej_db_val(res, row, 0));
        t->subject = ej_arena_strdup(a, ej_db_val(res, row, 1));
        t->body_text = ej_arena_strdup(a, ej_db_val(res, row, 2));
        t->updated_at = ej_arena_strdup(a, ej_db_val(res, row, 3));
        t->updated_by = ej_arena_strdup(a, ej_db_val(res, row, 4));
}

enum ej_status ej_mail_template_get(struct ej_db *db, struct ej_arena *a, const char *key,
                                    struct ej_mail_template *out, struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        const char *params[1] = {key};

        memset(out, 0, sizeof(*out));
        st = ej_db_exec(db, sql_template_get, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "key", "no mail template \"%s\"", key);
        else
                mail_template_row(a, res, 0, out);
        PQclear(res);
        return st;
}

enum ej_status ej_mail_template_list(struct ej_db *db, struct ej_arena *a,
                                     struct ej_mail_template **out, size_t *n, struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        int rows;

        *out = NULL;
        *n = 0;
        st = ej_db_exec(db, sql_template_list, 0, NULL, &res, err);
        if (st != EJ_OK)
                return st;
        rows = PQntuples(res);
        *out = ej_arena_calloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**out));
        for (int i = 0; i < rows; i++)
                mail_template_row(a, res, i, &(*out)[i]);
        *n = (size_t)rows;
        PQclear(res);
        return EJ_OK;
}

enum ej_status ej_mail_template_update(struct ej_db *db, const char *key, const char *subject,
                                       const char *body_text, const char *updated_by,
                                       struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        const char *params[4] = {key, subject, body_text, updated_by != NULL ? updated_by : ""};

        if (subject == NULL || subject[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, "subject", "subject is required");
        if (strlen(subject) > EJ_MAIL_SUBJECT_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "subject", "subject is longer than %d bytes",
                                  EJ_MAIL_SUBJECT_MAX);
        if (mail_has_crlf(subject))
                return ej_err_set(err, EJ_ERR_INVALID, "subject",
                                  "subject must not contain line breaks");
        if (body_text == NULL || body_text[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, "body_text", "body_text is required");
        if (strlen(body_text) > EJ_MAIL_BODY_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "body_text",
                                  "body_text is longer than %d bytes", EJ_MAIL_BODY_MAX);
        st = mail_check_template(subject, "subject", mail_default_of(key), err);
        if (st == EJ_OK)
                st = mail_check_template(body_text, "body_text", mail_default_of(key), err);
        if (st != EJ_OK)
                return st;
        st = ej_db_exec(db, sql_template_update, 4, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (strcmp(PQcmdTuples(res), "0") == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "key", "no mail template \"%s\"", key);
        PQclear(res);
        return st;
}

/* ---- building the message ---- */

static bool mail_is_ascii(const char *s)
{
        for (; *s != '\0'; s++)
                if ((unsigned char)*s >= 0x80)
                        return false;
        return true;
}

static void mail_base64(struct ej_buf *out, const unsigned char *p, size_t n)
{
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned)p[i] << 16;
                size_t left = n - i;

                if (left > 1)
                        v |= (unsigned)p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                ej_buf_append_char(out, tab[(v >> 18) & 63]);
                ej_buf_append_char(out, tab[(v >> 12) & 63]);
                ej_buf_append_char(out, left > 1 ? tab[(v >> 6) & 63] : '=');
                ej_buf_append_char(out, left > 2 ? tab[v & 63] : '=');
        }
}

/* Appends `s` as RFC 2047 encoded words ("=?UTF-8?B?...?="), each at most 75 characters, split
 * between UTF-8 characters and folded onto continuation lines. */
static void mail_encode_words(struct ej_buf *out, const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s);
        size_t i = 0;
        bool first = true;

        while (i < n) {
                size_t take = n - i < 45 ? n - i : 45; /* 45 bytes -> 60 base64 characters */

                /* Do not cut a multi-byte character: back up to its first byte. */
                while (i + take < n && take > 0 && (p[i + take] & 0xC0) == 0x80)
                        take--;
                if (take == 0)
                        take = n - i < 45 ? n - i : 45;
                if (!first)
                        ej_buf_append_c(out, "\r\n ");
                ej_buf_append_c(out, "=?UTF-8?B?");
                mail_base64(out, p + i, take);
                ej_buf_append_c(out, "?=");
                first = false;
                i += take;
        }
}

/* Appends a header value: as is when ASCII and short, else as encoded words (which also fold a
 * long value within the 998-byte line limit). */
static void mail_header_text(struct ej_buf *out, const char *s)
{
        if (mail_is_ascii(s) && strlen(s) <= 900)
                ej_buf_append_c(out, s);
        else
                mail_encode_words(out, s);
}

/* Appends an address header value "Name <addr>" or "addr", encoding a non-ASCII name. */
static void mail_header_addr(struct ej_buf *out, const char *s)
{
        const char *lt = strrchr(s, '<');

        if (lt == NULL || mail_is_ascii(s)) {
                ej_buf_append_c(out, s);
                return;
        }
        {
                size_t n = (size_t)(lt - s);
                char *name;

                while (n > 0 && s[n - 1] == ' ')
                        n--;
                name = xstrndup(s, n);
                mail_encode_words(out, name);
                free(name);
                ej_buf_append_char(out, ' ');
                ej_buf_append_c(out, lt);
        }
}

/* True when the body can go as 7bit: ASCII, no NUL, no line over 998 bytes. */
static bool mail_body_plain(const char *b)
{
        size_t line = 0;

        for (; *b != '\0'; b++) {
                unsigned char c = (unsigned char)*b;

                if (c >= 0x80)
                        return false;
                line = c == '\n' ? 0 : line + 1;
                if (line > 998)
                        return false;
        }
        return true;
}

/* Appends the body with CRLF line ends, as is. */
static void mail_body_7bit(struct ej_buf *out, const char *b)
{
        for (; *b != '\0'; b++) {
                if (*b == '\r')
                        continue;
                if (*b == '\n')
                        ej_buf_append_c(out, "\r\n");
                else
                        ej_buf_append_char(out, *b);
        }
}

/* Appends the body quoted-printable (RFC 2045 6.7): lines of at most 76 characters with soft
 * breaks, CRLF hard breaks, '=' and non-ASCII as =XX, trailing white space encoded. */
static void mail_body_qp(struct ej_buf *out, const char *b)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t col = 0;

        for (const unsigned char *p = (const unsigned char *)b; *p != '\0'; p++) {
                unsigned char c = *p;
                bool at_eol = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
                char enc[4];
                size_t len;

                if (c == '\r' && p[1] == '\n')
                        continue;
                if (c == '\n') {
                        ej_buf_append_c(out, "\r\n");
                        col = 0;
                        continue;
                }
                if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol)) {
                        enc[0] = (char)c;
                        len = 1;
                } else {
                        enc[0] = '=';
                        enc[1] = hex[c >> 4];
                        enc[2] = hex[c & 15];
                        len = 3;
                }
                if (col + len > 75) {
                        ej_buf_append_c(out, "=\r\n");
                        col = 0;
                }
                ej_buf_append(out, enc, len);
                col += len;
        }
}

/* The domain of the From address, for Message-ID. */
static void mail_from_domain(const char *from, char *out, size_t out_size)
{
        const char *at = strrchr(from, '@');
        size_t n = 0;

        if (at != NULL)
                for (at++; at[n] != '\0' && at[n] != '>' && at[n] != ' ' && n + 1 < out_size; n++)
                        out[n] = at[n];
        if (n == 0) {
                (void)snprintf(out, out_size, "easyjournal.local");
                return;
        }
        out[n] = '\0';
}

/* RFC 5322 date-time in UTC; names are written out so the C locale does not matter. */
static void mail_date(struct ej_buf *out, time_t t)
{
        static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;

        gmtime_r(&t, &tm);
        ej_buf_appendf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Builds the RFC 5322 message of one outbox row into `out`. */
static void mail_build(struct ej_buf *out, const char *from, const char *id, const char *to,
                       const char *subject, const char *body)
{
        char domain[128];
        bool plain = mail_body_plain(body);

        mail_from_domain(from, domain, sizeof(domain));
        ej_buf_append_c(out, "From: ");
        mail_header_addr(out, from);
        ej_buf_appendf(out, "\r\nTo: %s\r\nSubject: ", to);
        mail_header_text(out, subject);
        ej_buf_append_c(out, "\r\nDate: ");
        mail_date(out, time(NULL));
        ej_buf_appendf(out, "\r\nMessage-ID: <%s@%s>\r\n", id, domain);
        ej_buf_append_c(out, "MIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n");
        ej_buf_appendf(out, "Content-Transfer-Encoding: %s\r\n\r\n",
                       plain ? "7bit" : "quoted-printable");
        if (plain)
                mail_body_7bit(out, body);
        else
                mail_body_qp(out, body);
        if (out->n < 2 || memcmp(out->p + out->n - 2, "\r\n", 2) != 0)
                ej_buf_append_c(out, "\r\n");
}

/* ---- the sender ---- */

struct ej_mailer {
        char *conninfo;
        char *schema;
        char *listen_sql;
        char *from;
        char *smtp_url;
        char *smtp_user;
        char *smtp_password;
        struct ej_smtp_config smtp; /* points at the copies above */
        int poll_ms;
        int backoff_min_s;
        int backoff_max_s;
        int max_permanent;
        struct ej_db *db;
        int listen_pid; /* backend that LISTENs; a reset connection must LISTEN again */
        atomic_bool stop;
        int wake[2]; /* written by ej_mailer_stop so the thread leaves its wait at once */
        pthread_t thread;
        bool started;
};

enum ej_status ej_mailer_config_from_env(struct ej_mailer_config *cfg, struct ej_err *err)
{
        enum ej_status st;
        bool starttls = false;
        long timeout_ms = 0, min_s = 0, max_s = 0;
        const char *url = ej_env_str("EJ_SMTP_URL", NULL);

        cfg->smtp.url = url;
        cfg->smtp.username = ej_env_str("EJ_SMTP_USER", NULL);
        cfg->smtp.password = ej_env_str("EJ_SMTP_PASSWORD", NULL);
        cfg->from = ej_env_str("EJ_MAIL_FROM", EJ_MAIL_DEFAULT_FROM);
        cfg->poll_ms = 0;
        cfg->max_permanent = 0;
        st = ej_env_bool("EJ_SMTP_STARTTLS", false, &starttls, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_SMTP_TIMEOUT_MS", 30000, 100, 600000, &timeout_ms, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_MAIL_RETRY_MIN_S", 30, 1, 86400, &min_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_MAIL_RETRY_MAX_S", 3600, 1, 7 * 86400, &max_s, err);
        if (st != EJ_OK)
                return st;
        cfg->smtp.starttls = starttls;
        cfg->smtp.timeout_ms = (int)timeout_ms;
        cfg->backoff_min_s = (int)min_s;
        cfg->backoff_max_s = (int)(max_s < min_s ? min_s : max_s);
        if (mail_has_crlf(cfg->from) || strchr(cfg->from, '@') == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, "EJ_MAIL_FROM",
                                  "EJ_MAIL_FROM must be one address, e.g. \"%s\"",
                                  EJ_MAIL_DEFAULT_FROM);
        if (url != NULL && strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0)
                return ej_err_set(err, EJ_ERR_INVALID, "EJ_SMTP_URL",
                                  "EJ_SMTP_URL must start with smtp:// or smtps://");
        return EJ_OK;
}

/* Connects (or reconnects) and LISTENs on the schema's mail channel. */
static enum ej_status mailer_ensure_db(struct ej_mailer *m, struct ej_err *err)
{
        enum ej_status st;
        PGconn *conn;

        if (m->db == NULL) {
                st = ej_db_connect(&m->db, m->conninfo, m->schema, 0, err);
                if (st != EJ_OK)
                        return st;
                m->listen_pid = 0;
        }
        conn = ej_db_conn(m->db);
        if (PQstatus(conn) == CONNECTION_OK && PQbackendPID(conn) == m->listen_pid)
                return EJ_OK;
        st = ej_db_exec_simple(m->db, m->listen_sql, err);
        if (st != EJ_OK)
                return st;
        m->listen_pid = PQbackendPID(ej_db_conn(m->db));
        return EJ_OK;
}

/* Seconds before attempt number `attempts + 1`: min doubling per attempt, capped at max. */
static long mailer_backoff_s(const struct ej_mailer *m, long attempts)
{
        long d = m->backoff_min_s;

        for (long i = 1; i < attempts && d < m->backoff_max_s; i++)
                d *= 2;
        return d < m->backoff_max_s ? d : m->backoff_max_s;
}

/*
 * Sends one due mail, if there is one, in one transaction that holds its row lock so no other
 * sender takes it meanwhile. *found says whether a row was found; *smtp_st gets the SMTP
 * outcome (EJ_OK when nothing was due). A database failure is the return value.
 */
static enum ej_status mailer_one(struct ej_mailer *m, bool *found, enum ej_status *smtp_st,
                                 struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        struct ej_buf msg = EJ_BUF_INIT;
        struct ej_err serr;
        const char *id, *to;
        long attempts;

        *found = false;
        *smtp_st = EJ_OK;
        st = ej_db_begin(m->db, err);
        if (st != EJ_OK)
                goto out;
        st = ej_db_exec(m->db, sql_outbox_claim, 0, NULL, &res, err);
        if (st != EJ_OK)
                goto out_rollback;
        if (PQntuples(res) == 0) {
                st = ej_db_commit(m->db, err);
                goto out;
        }
        *found = true;
        id = ej_db_val(res, 0, 0);
        to = ej_db_val(res, 0, 1);
        attempts = (long)ej_db_int64(res, 0, 4) + 1;
        mail_build(&msg, m->from, id, to, ej_db_val(res, 0, 2), ej_db_val(res, 0, 3));
        ej_err_clear(&serr);
        *smtp_st = ej_smtp_send(&m->smtp, m->from, to, msg.p, msg.n, &serr);
        if (*smtp_st == EJ_OK) {
                const char *params[1] = {id};

                st = ej_db_exec(m->db, sql_outbox_sent, 1, params, NULL, err);
                if (st == EJ_OK)
                        ej_info(NULL, "mail %s sent (%s)", id, m->schema);
        } else {
                bool give_up = *smtp_st == EJ_ERR_INVALID && attempts >= m->max_permanent;
                char delay[24];
                const char *params[4] = {id, delay, give_up ? "t" : "f", serr.msg};

                (void)snprintf(delay, sizeof(delay), "%ld", mailer_backoff_s(m, attempts));
                st = ej_db_exec(m->db, sql_outbox_failed, 4, params, NULL, err);
                if (give_up)
                        ej_error(NULL, "mail %s to %s given up after %ld attempts: %s", id, to,
                                 attempts, serr.msg);
                else
                        ej_warn(NULL, "mail %s: attempt %ld failed, retrying in %s s: %s", id,
                                attempts, delay, serr.msg);
        }
        if (st != EJ_OK)
                goto out_rollback;
        st = ej_db_commit(m->db, err);
        goto out;
out_rollback:
        ej_db_rollback(m->db);
out:
        PQclear(res);
        ej_buf_free(&msg);
        return st;
}

static void *mailer_main(void *arg)
{
        struct ej_mailer *m = arg;
        struct ej_err err;
        int db_backoff = 0;
        bool db_failing = false;

        while (!atomic_load(&m->stop)) {
                enum ej_status st, smtp_st = EJ_OK;
                bool found = false;

                ej_err_clear(&err);
                st = mailer_ensure_db(m, &err);
                if (st == EJ_OK)
                        st = mailer_one(m, &found, &smtp_st, &err);
                if (st != EJ_OK) {
                        if (!db_failing)
                                ej_warn(NULL, "mail sender (%s): %s; retrying", m->schema, err.msg);
                        db_failing = true;
                        if (m->db != NULL && PQstatus(ej_db_conn(m->db)) != CONNECTION_OK) {
                                ej_db_destroy(m->db);
                                m->db = NULL;
                        }
                        db_backoff = db_backoff ? db_backoff * 2 : 100;
                        if (db_backoff > m->poll_ms)
                                db_backoff = m->poll_ms;
                        ej_db_wait_notify(m->db, m->wake[0], db_backoff);
                        continue;
                }
                if (db_failing)
                        ej_info(NULL, "mail sender (%s): database back", m->schema);
                db_failing = false;
                db_backoff = 0;
                if (found && (smtp_st == EJ_ERR_UNAVAILABLE || smtp_st == EJ_ERR_TIMEOUT)) {
                        /* The server is down: the other due mails would fail the same way. Each
                         * waits for its own backoff; here just do not spin. */
                        ej_db_wait_notify(m->db, m->wake[0],
                                          m->backoff_min_s * 1000 < m->poll_ms
                                              ? m->backoff_min_s * 1000
                                              : m->poll_ms);
                        continue;
                }
                if (found || PQbackendPID(ej_db_conn(m->db)) != m->listen_pid)
                        continue;
                ej_db_wait_notify(m->db, m->wake[0], m->poll_ms);
        }
        return NULL;
}

enum ej_status ej_mailer_start(struct ej_mailer **out, const struct ej_mailer_config *cfg,
                               struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_mailer *m = NULL;
        char *quoted = NULL;
        struct ej_buf sql = EJ_BUF_INIT;
        struct ej_buf chan = EJ_BUF_INIT;

        *out = NULL;
        if (cfg == NULL || cfg->conninfo == NULL || cfg->schema == NULL || cfg->smtp.url == NULL ||
            cfg->smtp.url[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "mail sender: conninfo, schema and an SMTP URL are required");
        m = xcalloc(1, sizeof(*m));
        m->wake[0] = m->wake[1] = -1;
        m->conninfo = xstrdup(cfg->conninfo);
        m->schema = xstrdup(cfg->schema);
        m->from =
            xstrdup(cfg->from != NULL && cfg->from[0] != '\0' ? cfg->from : EJ_MAIL_DEFAULT_FROM);
        m->smtp_url = xstrdup(cfg->smtp.url);
        m->smtp_user = cfg->smtp.username != NULL ? xstrdup(cfg->smtp.username) : NULL;
        m->smtp_password = cfg->smtp.password != NULL ? xstrdup(cfg->smtp.password) : NULL;
        m->smtp.url = m->smtp_url;
        m->smtp.starttls = cfg->smtp.starttls;
        m->smtp.username = m->smtp_user;
        m->smtp.password = m->smtp_password;
        m->smtp.timeout_ms = cfg->smtp.timeout_ms;
        m->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 5000;
        m->backoff_min_s = cfg->backoff_min_s > 0 ? cfg->backoff_min_s : 30;
        m->backoff_max_s = cfg->backoff_max_s > 0 ? cfg->backoff_max_s : 3600;
        if (m->backoff_max_s < m->backoff_min_s)
                m->backoff_max_s = m->backoff_min_s;
        m->max_permanent = cfg->max_permanent > 0 ? cfg->max_permanent : 3;
        atomic_init(&m->stop, false);
        if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "mail sender: pipe: %s",
                                strerror(errno));
                goto out_free;
        }
        st = ej_db_connect(&m->db, m->conninfo, m->schema, 2000, err);
        if (st != EJ_OK) {
                ej_err_prefix(err, "mail sender");
                goto out_free;
        }
        /* The channel ej_mail_enqueue notifies: "<schema>_mail", quoted so its case is kept. */
        ej_buf_appendf(&chan, "%s_mail", m->schema);
        quoted = PQescapeIdentifier(ej_db_conn(m->db), chan.p, chan.n);
        if (quoted == NULL) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "mail sender: bad schema name");
                goto out_free;
        }
        ej_buf_appendf(&sql, "LISTEN %s", quoted);
        m->listen_sql = ej_buf_steal(&sql);
        if (pthread_create(&m->thread, NULL, mailer_main, m) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "mail sender: cannot start thread");
                goto out_free;
        }
        m->started = true;
        *out = m;
        m = NULL;
out_free:
        PQfreemem(quoted);
        ej_buf_free(&sql);
        ej_buf_free(&chan);
        ej_mailer_stop(m);
        return st;
}

void ej_mailer_stop(struct ej_mailer *m)
{
        if (m == NULL)
                return;
        if (m->started) {
                atomic_store(&m->stop, true);
                if (write(m->wake[1], "x", 1) < 0) {
                        /* The thread still sees the flag within its poll period. */
                }
                pthread_join(m->thread, NULL);
        }
        ej_db_destroy(m->db);
        if (m->wake[0] >= 0)
                close(m->wake[0]);
        if (m->wake[1] >= 0)
                close(m->wake[1]);
        free(m->conninfo);
        free(m->schema);
        free(m->listen_sql);
        free(m->from);
        free(m->smtp_url);
        free(m->smtp_user);
        free(m->smtp_password);
        free(m);
}
