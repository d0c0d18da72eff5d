#include "users.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmark.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "ids.h"
#include "log.h"
#include "mail.h"
#include "str.h"

#define USERS_DEFAULT_ROLE "author"
#define USERS_QUERY_MAX    200 /* bytes of a users-list search */

/* One message for both an unknown e-mail and a wrong password: which one it was is not ours to
 * tell. */
static const char bad_credentials[] = "the e-mail address or the password is wrong";

static const char *const valid_roles[] = {"author", "reviewer", "editor", "admin", NULL};
static const char *const valid_themes[] = {"dark",    "light",         "journal", "modern",
                                           "elegant", "high-contrast", NULL};

/* Shown until an admin sets a privacy policy. */
static const char default_privacy[] =
    "# Privacy policy\n\n"
    "This journal keeps the account details you give it (name, e-mail address, affiliation, "
    "ORCID iD, biography), the record of your submissions and reviews, and a log of sign-ins "
    "and account changes with the network address they came from.\n\n"
    "You can download everything held about you from your profile, withdraw your consent, "
    "and ask for your account to be erased. Published articles keep their author list as "
    "published.\n";

/* ---- context ---------------------------------------------------------------------------- */

enum ej_status users_ctx_init(struct users_ctx *ctx, struct ej_err *err)
{
        char pw[64];
        long long_h = 0, short_h = 0;
        enum ej_status st;

        memset(ctx, 0, sizeof(*ctx));
        st = ej_env_long("EJ_SESSION_TTL_HOURS", 30 * 24, 1, 24 * 366, &long_h, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_SESSION_SHORT_TTL_HOURS", 12, 1, 24 * 366, &short_h, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_VERIFY_TTL_S", 48 * 3600, 1, 366 * 86400L, &ctx->verify_ttl_s,
                                 err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_RESET_TTL_S", 3600, 1, 366 * 86400L, &ctx->reset_ttl_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_INVITE_TTL_S", 14 * 86400L, 1, 366 * 86400L,
                                 &ctx->invite_ttl_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_EMAIL_CHANGE_TTL_S", 86400, 1, 366 * 86400L,
                                 &ctx->email_change_ttl_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_ERASURE_TTL_S", 86400, 1, 366 * 86400L, &ctx->erasure_ttl_s,
                                 err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_LOGIN_WINDOW_S", 900, 1, 86400, &ctx->login_window_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_LOGIN_MAX_PER_ACCOUNT", 5, 1, 1000000, &ctx->login_max_account,
                                 err);
        if (st == EJ_OK)
                st =
                    ej_env_long("EJ_LOGIN_MAX_PER_ADDR", 20, 1, 1000000, &ctx->login_max_addr, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_GDPR_TIMEOUT_MS", 5000, 100, 600000, &ctx->gdpr_timeout_ms,
                                 err);
        if (st != EJ_OK)
                return st;
        ctx->session_ttl_ms = (long long)long_h * 3600 * 1000;
        ctx->short_session_ttl_ms = (long long)short_h * 3600 * 1000;
        ctx->public_url = ej_env_str("EJ_PUBLIC_URL", "http://127.0.0.1:8080");
        ctx->gdpr_services = ej_env_str("EJ_GDPR_SERVICES", "");
        ej_random_token(pw, sizeof(pw), 32);
        if (crypto_pwhash_str(ctx->dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "argon2id needs more memory than the process may use");
        }
        return EJ_OK;
}

void users_ctx_free(struct users_ctx *ctx)
{
        if (ctx == NULL)
                return;
        sodium_memzero(ctx->dummy_hash, sizeof(ctx->dummy_hash));
}

/* ---- passwords and tokens --------------------------------------------------------------- */

/* argon2id of `pw` into `out` (libsodium's encoded string, salt and parameters included).
 * Only slow operations (main.c) and the command line may call it: the slow pool caps how many
 * run at once. */
static enum ej_status password_hash(struct users_ctx *ctx, const char *pw, char *out,
                                    struct ej_err *err)
{
        int rc;

        (void)ctx;
        rc = crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
        if (rc != 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "password hashing failed");
        return EJ_OK;
}

/* True when `pw` matches `hash`; an unusable hash ("!") never matches but costs the same.
 * Slow operations only, like password_hash. */
static bool password_verify(struct users_ctx *ctx, const char *hash, const char *pw)
{
        bool usable = strncmp(hash, "$argon2", 7) == 0;
        int rc;

        rc = crypto_pwhash_str_verify(usable ? hash : ctx->dummy_hash, pw, strlen(pw));
        return usable && rc == 0;
}

static enum ej_status check_password(const char *pw, const char *field, struct ej_err *err)
{
        size_t n = strlen(pw);

        if (n < USERS_PASSWORD_MIN || n > USERS_PASSWORD_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "the password must be %d to %d bytes long", USERS_PASSWORD_MIN,
                                  USERS_PASSWORD_MAX);
        return EJ_OK;
}

/* A fresh mailed token: `token` (to put in the link) and its hash (to store). */
struct fresh_token {
        char token[USERS_TOKEN_BYTES * 2];
        char hash[EJ_SHA256_HEX_LEN];
};

static void token_new(struct fresh_token *t)
{
        ej_random_token(t->token, sizeof(t->token), USERS_TOKEN_BYTES);
        ej_sha256_hex(t->token, strlen(t->token), t->hash);
}

/* Hashes a token from a link; EJ_ERR_INVALID field "token" when it cannot be ours. */
static enum ej_status token_hash_of(const char *token, char out[EJ_SHA256_HEX_LEN],
                                    struct ej_err *err)
{
        size_t n = strlen(token);

        if (n == 0 || n > USERS_TOKEN_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "token", "this link is not valid");
        ej_sha256_hex(token, n, out);
        return EJ_OK;
}

/* "in 48 hours", "in 1 hour", "in 14 days": how long a mailed link lasts, for the mail. */
static char *expires_in(struct ej_arena *a, long ttl_s)
{
        if (ttl_s >= 2 * 86400 && ttl_s % 86400 == 0 && ttl_s / 86400 > 2)
                return ej_arena_printf(a, "in %ld days", ttl_s / 86400);
        if (ttl_s >= 3600 && ttl_s % 3600 == 0)
                return ej_arena_printf(a, "in %ld hour%s", ttl_s / 3600, ttl_s == 3600 ? "" : "s");
        if (ttl_s >= 60)
                return ej_arena_printf(a, "in %ld minutes", ttl_s / 60);
        return ej_arena_printf(a, "in %ld seconds", ttl_s);
}

static char *link_to(struct ej_call *call, const char *path, const char *token)
{
        struct users_ctx *ctx = call->svc;
        const char *base = ctx->public_url;
        size_t n = strlen(base);

        while (n > 0 && base[n - 1] == '/')
                n--;
        return ej_arena_printf(call->arena, "%.*s%s?token=%s", (int)n, base, path, token);
}

/* ---- text checks ------------------------------------------------------------------------ */

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static struct ej_str trimmed(const char *s)
{
        struct ej_str v = ej_str_c(s);

        while (v.n > 0 && is_space(v.p[0])) {
                v.p++;
                v.n--;
        }
        while (v.n > 0 && is_space(v.p[v.n - 1]))
                v.n--;
        return v;
}

/* Counts the characters of `v` when it is valid UTF-8 free of control characters (line
 * breaks and tabs allowed when `multiline`); -1 if not. */
static long text_chars_ml(struct ej_str v, bool multiline)
{
        const unsigned char *p = (const unsigned char *)v.p;
        size_t i = 0;
        long chars = 0;

        while (i < v.n) {
                unsigned c = p[i];
                size_t len;
                unsigned cp;

                if (c < 0x80) {
                        bool ws = c == '\n' || c == '\r' || c == '\t';

                        if ((c < 0x20 && !(multiline && ws)) || c == 0x7f)
                                return -1;
                        i++;
                        chars++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        len = 2;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        len = 3;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return -1;
                }
                if (i + len > v.n)
                        return -1;
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return -1;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                /* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
                if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
                        return -1;
                i += len;
                chars++;
        }
        return chars;
}

static long text_chars(struct ej_str v)
{
        return text_chars_ml(v, false);
}

/* A plausible mailbox: local@domain, one '@', a dotted domain of letters, digits and hyphens
 * (non-ASCII allowed for internationalised names), no spaces or quoting. Deliverability is
 * proved later by a confirmation mail, not here. */
static bool email_shape_ok(struct ej_str v)
{
        const char *at = memchr(v.p, '@', v.n);
        size_t local, label = 0, labels = 0;

        if (v.n < 3 || v.n > USERS_EMAIL_MAX || at == NULL || text_chars(v) < 0)
                return false;
        local = (size_t)(at - v.p);
        if (local == 0 || local > 64)
                return false;
        for (size_t i = 0; i < local; i++)
                if (strchr(" \"(),:;<>[\\]@", v.p[i]) != NULL)
                        return false;
        for (size_t i = local + 1; i <= v.n; i++) {
                char c = i < v.n ? v.p[i] : '.';

                if (c == '.') {
                        /* A label is 1..63 bytes and neither starts nor ends with '-'. */
                        if (label == 0 || label > 63 || v.p[i - label] == '-' || v.p[i - 1] == '-')
                                return false;
                        labels++;
                        label = 0;
                } else if (((unsigned char)c >= 0x80) || (c >= 'a' && c <= 'z') ||
                           (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
                        label++;
                } else {
                        return false;
                }
        }
        return labels >= 2;
}

/* An ORCID iD: 0000-0000-0000-000X, the last character the ISO 7064 MOD 11-2 check digit of
 * the first fifteen digits. */
static bool orcid_ok(struct ej_str v)
{
        int total = 0, digits = 0, check;

        if (v.n != 19)
                return false;
        for (size_t i = 0; i < 19; i++) {
                char c = v.p[i];

                if (i == 4 || i == 9 || i == 14) {
                        if (c != '-')
                                return false;
                        continue;
                }
                if (i == 18)
                        break;
                if (c < '0' || c > '9')
                        return false;
                total = (total + (c - '0')) * 2;
                digits++;
        }
        check = (12 - total % 11) % 11;
        return digits == 15 && v.p[18] == (check == 10 ? 'X' : (char)('0' + check));
}

static bool in_list(const char *const *list, const char *s)
{
        for (size_t i = 0; list[i]; i++)
                if (strcmp(list[i], s) == 0)
                        return true;
        return false;
}

/* The profile fields a person or an admin sets, checked and trimmed into the arena. */
struct profile_in {
        char *name;
        char *affiliation;
        char *orcid;
        char *bio;
};

static enum ej_status check_name(struct ej_call *call, const char *raw, char **out,
                                 struct ej_err *err)
{
        struct ej_str name = trimmed(raw);
        long chars = text_chars(name);

        if (chars < 1 || chars > USERS_NAME_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "name",
                                  "the name must be 1 to %d characters of text", USERS_NAME_MAX);
        *out = ej_arena_strndup(call->arena, name.p, name.n);
        return EJ_OK;
}

static enum ej_status check_email(struct ej_call *call, const char *raw, const char *field,
                                  char **out, struct ej_err *err)
{
        struct ej_str email = trimmed(raw);

        if (email.n > USERS_EMAIL_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "the e-mail address is longer than %d bytes", USERS_EMAIL_MAX);
        if (!email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "that does not look like an e-mail address");
        *out = ej_arena_strndup(call->arena, email.p, email.n);
        return EJ_OK;
}

static enum ej_status check_profile(struct ej_call *call, const char *name, const char *aff,
                                    const char *orcid, const char *bio, struct profile_in *out,
                                    struct ej_err *err)
{
        struct ej_str a = trimmed(aff);
        struct ej_str o = trimmed(orcid);
        struct ej_str b = trimmed(bio);
        long n;
        enum ej_status st = check_name(call, name, &out->name, err);

        if (st != EJ_OK)
                return st;
        n = text_chars(a);
        if (n < 0 || n > USERS_AFFILIATION_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "affiliation",
                                  "the affiliation must be at most %d characters of text",
                                  USERS_AFFILIATION_MAX);
        if (o.n > 0 && !orcid_ok(o))
                return ej_err_set(err, EJ_ERR_INVALID, "orcid",
                                  "an ORCID iD looks like 0000-0002-1825-0097 and ends in its "
                                  "check digit; this one is not valid");
        n = text_chars_ml(b, true);
        if (n < 0 || n > USERS_BIO_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "bio",
                                  "the biography must be at most %d characters of text",
                                  USERS_BIO_MAX);
        out->affiliation = ej_arena_strndup(call->arena, a.p, a.n);
        out->orcid = ej_arena_strndup(call->arena, o.p, o.n);
        out->bio = ej_arena_strndup(call->arena, b.p, b.n);
        return EJ_OK;
}

/* ---- callers ---------------------------------------------------------------------------- */

static enum ej_status need_user(const struct ej_call *call, struct ej_err *err)
{
        if (call->user_id[0] == '\0')
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "sign in first");
        if (!ej_uuid_valid(call->user_id))
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "the caller is not a user");
        return EJ_OK;
}

static enum ej_status need_role(const struct ej_call *call, const char *role, struct ej_err *err)
{
        enum ej_status st = need_user(call, err);

        if (st == EJ_OK && !ej_call_has_role(call, role))
                st = ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the %s role", role);
        return st;
}

static enum ej_status need_user_id(const char *id, struct ej_err *err)
{
        if (!ej_uuid_valid(id))
                return ej_err_set(err, EJ_ERR_INVALID, "user_id", "not a user id");
        return EJ_OK;
}

/* An activity row for this call about `subject`, with optional JSON `details`. */
static struct users_act act_of(const struct ej_call *call, const char *kind, const char *subject,
                               const char *details)
{
        struct users_act act = {kind, call->user_id, subject, call->client_addr, details};

        return act;
}

/* {"key": "value"} in the arena. */
static char *details1(struct ej_arena *a, const char *key, const char *value)
{
        struct ej_buf b = EJ_BUF_INIT;
        char *out;

        ej_buf_append_char(&b, '{');
        ej_buf_append_json_str(&b, key, strlen(key));
        ej_buf_append_char(&b, ':');
        ej_buf_append_json_str(&b, value, strlen(value));
        ej_buf_append_char(&b, '}');
        out = ej_arena_strdup(a, b.p);
        ej_buf_free(&b);
        return out;
}

/* Tells every gateway to drop its cached sessions of `user_id` ("*": of everyone). The
 * database is the truth; the broadcast only shortens cache lifetimes. */
static void announce_user(struct ej_call *call, const char *user_id)
{
        struct ej_err perr;

        if (call->bus == NULL)
                return;
        if (ej_bus_publish(call->bus, USERS_BCAST_USER_CHANGED, user_id, strlen(user_id), &perr) !=
            EJ_OK)
                ej_warn(call->request_id, "user %s changed but not announced: %s", user_id,
                        perr.msg);
}

/* Lower-cased ASCII copy of the trimmed e-mail: the throttle's account key. */
static char *email_key(struct ej_arena *a, struct ej_str email)
{
        char *k = ej_arena_strndup(a, email.p, email.n);

        for (char *p = k; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        return k;
}

static char *markdown_html(struct ej_arena *a, const char *md)
{
        char *html = cmark_markdown_to_html(md, strlen(md), CMARK_OPT_SAFE);
        char *out = ej_arena_strdup(a, html ? html : "");

        free(html);
        return out;
}

static enum ej_status check_markdown(const char *md, struct ej_err *err)
{
        struct ej_str v = trimmed(md);

        if (v.n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "markdown", "write the text first");
        if (strlen(md) > USERS_MARKDOWN_MAX || text_chars_ml(ej_str_c(md), true) < 0)
                return ej_err_set(err, EJ_ERR_INVALID, "markdown",
                                  "the text must be at most %d bytes of UTF-8 text",
                                  USERS_MARKDOWN_MAX);
        return EJ_OK;
}

/* ---- registration and verification ------------------------------------------------------ */

/* A new account in one transaction: the user, roles, a mailed token, the consent record, the
 * event, the activity row and the mail. `password` NULL: no password, an invitation is mailed.
 * *user receives the account as created. */
struct account_plan {
        const struct profile_in *p;
        const char *email;
        const char *password; /* NULL: invited */
        const char *const *roles;
        size_t n_roles;
        bool verified;
        int consent_version;
        const char *act_kind;
        const char *inviter; /* name in the invitation mail */
        const char *role_label;
};

static enum ej_status account_create(struct ej_call *call, const struct account_plan *plan,
                                     Ej__Users__User **user_out, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        char hash[crypto_pwhash_STRBYTES];
        char id[EJ_UUID_LEN];
        struct fresh_token tok;
        struct users_new nu;
        struct users_token t;
        struct users_act act;
        struct users_mail mail;
        Ej__Users__UserRegistered event = EJ__USERS__USER_REGISTERED__INIT;
        Ej__Users__User *user;
        const char *vars[14];
        int64_t created_at_ms = 0;
        bool need_token = plan->password == NULL || !plan->verified;
        enum ej_status st;

        if (plan->password) {
                /* Hashing takes tens of milliseconds: never inside a transaction. */
                st = password_hash(ctx, plan->password, hash, err);
                if (st != EJ_OK)
                        return st;
        } else {
                snprintf(hash, sizeof(hash), "%s", USERS_NO_PASSWORD);
        }
        ej_uuid(id);
        token_new(&tok);
        memset(&nu, 0, sizeof(nu));
        nu.id = id;
        nu.name = plan->p->name;
        nu.email = plan->email;
        nu.password_hash = hash;
        nu.affiliation = plan->p->affiliation;
        nu.orcid = plan->p->orcid;
        nu.bio = plan->p->bio;
        nu.verified = plan->verified;
        nu.roles = plan->roles;
        nu.n_roles = plan->n_roles;
        nu.granted_by = call->user_id[0] ? call->user_id : NULL;
        nu.consent_version = plan->consent_version;
        nu.client_addr = call->client_addr;
        t.hash = tok.hash;
        t.purpose = plan->password ? "verify_email" : "invitation";
        t.ttl_s = plan->password ? ctx->verify_ttl_s : ctx->invite_ttl_s;
        t.data = NULL;
        vars[0] = "name";
        vars[1] = plan->p->name;
        vars[2] = "email";
        vars[3] = plan->email;
        vars[4] = "link";
        vars[5] = link_to(call, plan->password ? "/verify" : "/accept-invitation", tok.token);
        vars[6] = "inviter";
        vars[7] = plan->inviter ? plan->inviter : "the editors";
        vars[8] = "role";
        vars[9] = plan->role_label ? plan->role_label : "author";
        vars[10] = "expires";
        vars[11] = expires_in(call->arena, t.ttl_s);
        vars[12] = NULL;
        mail.tpl = plan->password ? "verify_email" : "invitation";
        mail.to = plan->email;
        mail.vars = vars;
        act = act_of(call, plan->act_kind, id, NULL);
        if (act.actor_id[0] == '\0')
                act.actor_id = id;
        event.user_id = id;
        event.email = (char *)(uintptr_t)plan->email;
        event.name = plan->p->name;
        st = store_user_insert(call->db, &nu, need_token ? &t : NULL, &event, &act,
                               need_token ? &mail : NULL, &created_at_ms, err);
        sodium_memzero(hash, sizeof(hash));
        sodium_memzero(&tok, sizeof(tok));
        if (st != EJ_OK)
                return st;
        st = store_user_get(call->db, call->arena, id, &user, err);
        if (st == EJ_OK)
                *user_out = user;
        return st;
}

enum ej_status users_register(struct ej_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__RegisterRequest *in = (const Ej__Users__RegisterRequest *)req;
        Ej__Users__RegisterResponse *out = (Ej__Users__RegisterResponse *)resp;
        Ej__Users__ConsentVersion cur = EJ__USERS__CONSENT_VERSION__INIT;
        static const char *const roles[] = {USERS_DEFAULT_ROLE};
        struct profile_in p;
        struct account_plan plan;
        char *email;
        enum ej_status st;

        st = check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p, err);
        if (st == EJ_OK)
                st = check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = check_password(in->password, "password", err);
        if (st == EJ_OK)
                st = store_consent_current(call->db, call->arena, &cur, err);
        if (st != EJ_OK)
                return st;
        if (cur.version > 0 && !in->consent)
                return ej_err_set(err, EJ_ERR_INVALID, "consent",
                                  "accept the privacy notice to create an account");
        if (cur.version > 0 && in->consent_version != 0 && in->consent_version != cur.version)
                return ej_err_set(err, EJ_ERR_CONFLICT, "consent",
                                  "the privacy notice has changed; read it again and accept it");

        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.password = in->password;
        plan.roles = roles;
        plan.n_roles = 1;
        plan.consent_version = (int)cur.version;
        plan.act_kind = "register";
        st = account_create(call, &plan, &out->user, err);
        if (st == EJ_OK)
                ej_info(call->request_id, "registered user %s", out->user->id);
        return st;
}

/* Applies a mailed token; *user receives the account afterwards. */
static enum ej_status apply_token(struct ej_call *call, const char *token, const char *purpose,
                                  const char *password_hash, Ej__Users__User **user,
                                  struct ej_err *err)
{
        char hash[EJ_SHA256_HEX_LEN];
        char *user_id = NULL;
        enum ej_status st = token_hash_of(token, hash, err);

        if (st == EJ_OK)
                st = store_token_apply(call->db, call->arena, hash, purpose, password_hash,
                                       call->client_addr, &user_id, err);
        if (st != EJ_OK)
                return st;
        announce_user(call, user_id);
        if (user)
                st = store_user_get(call->db, call->arena, user_id, user, err);
        return st;
}

enum ej_status users_verify_email(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct users_mail mail;
        const char *vars[7];
        struct ej_err merr;
        enum ej_status st = apply_token(call, in->token, "verify_email", NULL, &out->user, err);

        if (st != EJ_OK)
                return st;
        /* The welcome mail is a courtesy: the verification stands without it. */
        vars[0] = "name";
        vars[1] = out->user->name;
        vars[2] = "link";
        vars[3] = ej_arena_printf(call->arena, "%s/login", ctx->public_url);
        vars[4] = "email";
        vars[5] = out->user->email;
        vars[6] = NULL;
        mail.tpl = "welcome";
        mail.to = out->user->email;
        mail.vars = vars;
        if (store_mail_queue(call->db, &mail, &merr) != EJ_OK)
                ej_warn(call->request_id, "welcome mail not queued: %s", merr.msg);
        return EJ_OK;
}

/* Issues a single-use token of `purpose` for `user` that lives `ttl_s` seconds and, in the same
 * transaction, records `act` and queues the mail `tpl` whose link is `path`?token=... */
static enum ej_status issue_mailed_token(struct ej_call *call, const Ej__Users__User *user,
                                         const char *purpose, long ttl_s, const char *path,
                                         const char *tpl, const struct users_act *act,
                                         struct ej_err *err)
{
        struct fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        const char *vars[9];
        enum ej_status st;

        token_new(&tok);
        t.hash = tok.hash;
        t.purpose = purpose;
        t.ttl_s = ttl_s;
        t.data = NULL;
        vars[0] = "name";
        vars[1] = user->name;
        vars[2] = "link";
        vars[3] = link_to(call, path, tok.token);
        vars[4] = "email";
        vars[5] = user->email;
        vars[6] = "expires";
        vars[7] = expires_in(call->arena, ttl_s);
        vars[8] = NULL;
        mail.tpl = tpl;
        mail.to = user->email;
        mail.vars = vars;
        st = store_token_issue(call->db, user->id, &t, act, &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

/* Mails a new verification link to `user` (unverified, active). */
static enum ej_status send_verification(struct ej_call *call, const Ej__Users__User *user,
                                        struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct users_act act = act_of(call, "verification_sent", user->id, NULL);

        return issue_mailed_token(call, user, "verify_email", ctx->verify_ttl_s, "/verify",
                                  "verify_email", &act, err);
}

enum ej_status users_resend_verification(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ResendVerificationRequest *in =
            (const Ej__Users__ResendVerificationRequest *)req;
        struct ej_str email = trimmed(in->email);
        Ej__Users__User *user = NULL;
        enum ej_status st;

        (void)resp;
        if (email.n == 0) {
                st = need_user(call, err);
                if (st == EJ_OK)
                        st = store_user_get(call->db, call->arena, call->user_id, &user, err);
                if (st != EJ_OK)
                        return st;
                if (user->verified)
                        return ej_err_set(err, EJ_ERR_CONFLICT, NULL,
                                          "this e-mail address is already confirmed");
                return send_verification(call, user, err);
        }
        /* By address: the answer is the same whether or not an account exists. */
        if (!email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, "email",
                                  "that does not look like an e-mail address");
        st = store_user_by_email(call->db, call->arena,
                                 ej_arena_strndup(call->arena, email.p, email.n), &user, NULL, err);
        if (st == EJ_ERR_NOT_FOUND)
                return EJ_OK;
        if (st != EJ_OK)
                return st;
        if (user->verified || user->deactivated || user->erased || !user->has_password)
                return EJ_OK;
        return send_verification(call, user, err);
}

/* ---- sessions --------------------------------------------------------------------------- */

enum ej_status users_login(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__LoginRequest *in = (const Ej__Users__LoginRequest *)req;
        Ej__Users__LoginResponse *out = (Ej__Users__LoginResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct ej_str email = trimmed(in->email);
        size_t pw_len = strlen(in->password);
        char token[USERS_TOKEN_BYTES * 2];
        char token_hash[EJ_SHA256_HEX_LEN];
        Ej__Users__User *user = NULL;
        struct users_act act;
        char *hash = NULL;
        char *key;
        int retry = 0;
        int64_t expires_at_ms = 0;
        enum ej_status st;

        if (email.n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "email", "enter your e-mail address");
        if (pw_len == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "password", "enter your password");
        if (pw_len > USERS_PASSWORD_MAX || email.n > USERS_EMAIL_MAX)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);

        key = email_key(call->arena, email);
        st = store_login_throttle(call->db, key, call->client_addr, ctx->login_window_s,
                                  ctx->login_max_account, ctx->login_max_addr, &retry, err);
        if (st == EJ_ERR_TOO_MANY)
                call->retry_after_s = retry;
        if (st != EJ_OK)
                return st;

        st = store_user_by_email(call->db, call->arena, key, &user, &hash, err);
        if (st != EJ_OK && st != EJ_ERR_NOT_FOUND)
                return st;
        if (st == EJ_ERR_NOT_FOUND || user->erased) {
                /* Spend the same work as a real check, so response time does not tell which
                 * e-mail addresses have accounts. */
                (void)password_verify(ctx, ctx->dummy_hash, in->password);
                act = act_of(call, "login_failed", NULL, details1(call->arena, "email", key));
                act.actor_id = NULL;
                st = store_login_failed(call->db, key, call->client_addr, &act, err);
                if (st != EJ_OK)
                        return st;
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);
        }
        if (!password_verify(ctx, hash, in->password)) {
                act = act_of(call, "login_failed", user->id,
                             details1(call->arena, "reason", "wrong password"));
                act.actor_id = NULL;
                st = store_login_failed(call->db, key, call->client_addr, &act, err);
                if (st != EJ_OK)
                        return st;
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);
        }
        if (user->deactivated) {
                act = act_of(call, "login_failed", user->id,
                             details1(call->arena, "reason", "deactivated"));
                act.actor_id = NULL;
                (void)store_activity_add(call->db, &act, NULL);
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL,
                                  "this account is deactivated; ask the journal's administrators "
                                  "to reactivate it");
        }

        ej_random_token(token, sizeof(token), USERS_TOKEN_BYTES);
        ej_sha256_hex(token, strlen(token), token_hash);
        act = act_of(call, "login", user->id,
                     details1(call->arena, "remember_me", in->remember_me ? "yes" : "no"));
        act.actor_id = user->id;
        st = store_login_ok(call->db, token_hash, user->id,
                            in->remember_me ? ctx->session_ttl_ms : ctx->short_session_ttl_ms, key,
                            &act, &expires_at_ms, err);
        if (st == EJ_OK) {
                out->user = user;
                out->session_token = ej_arena_strdup(call->arena, token);
                out->expires_at_ms = expires_at_ms;
                out->persistent = in->remember_me;
        }
        sodium_memzero(token, sizeof(token));
        return st;
}

enum ej_status users_logout(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__LogoutRequest *in = (const Ej__Users__LogoutRequest *)req;
        size_t n = strlen(in->session_token);
        char token_hash[EJ_SHA256_HEX_LEN];
        struct users_act act = act_of(call, "logout", NULL, NULL);
        struct ej_err perr;
        enum ej_status st;

        (void)resp;
        /* Signing out without a (plausible) session is already done. */
        if (n == 0 || n > USERS_TOKEN_MAX)
                return EJ_OK;
        ej_sha256_hex(in->session_token, n, token_hash);
        st = store_session_revoke(call->db, token_hash, &act, err);
        if (st != EJ_OK)
                return st;
        /* The database is the truth; the broadcast only shortens gateways' cache lifetimes. */
        if (ej_bus_publish(call->bus, USERS_BCAST_SESSION_REVOKED, token_hash, strlen(token_hash),
                           &perr) != EJ_OK)
                ej_warn(call->request_id, "session revoked but not announced: %s", perr.msg);
        return EJ_OK;
}

enum ej_status users_authenticate(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AuthenticateRequest *in = (const Ej__Users__AuthenticateRequest *)req;
        Ej__Users__Principal *out = (Ej__Users__Principal *)resp;
        size_t n = strlen(in->session_token);
        char token_hash[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        if (n == 0 || n > USERS_TOKEN_MAX)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "no valid session");
        ej_sha256_hex(in->session_token, n, token_hash);
        st = store_session_principal(call->db, call->arena, token_hash, out, err);
        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL,
                                  "the session is unknown, expired or signed out");
        return st;
}

/* ---- the caller's own account ----------------------------------------------------------- */

static enum ej_status fill_me(struct ej_call *call, Ej__Users__MeResponse *out, struct ej_err *err)
{
        bool required = false;
        uint32_t current = 0;
        enum ej_status st = store_user_get(call->db, call->arena, call->user_id, &out->user, err);

        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL,
                                  "the signed-in account no longer exists");
        if (st == EJ_OK)
                st = store_user_consent_state(call->db, call->user_id, &required, &current, err);
        out->consent_required = required;
        out->current_consent_version = current;
        return st;
}

enum ej_status users_me(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                        struct ej_err *err)
{
        enum ej_status st = need_user(call, err);

        (void)req;
        if (st != EJ_OK)
                return st;
        return fill_me(call, (Ej__Users__MeResponse *)resp, err);
}

enum ej_status users_update_profile(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateProfileRequest *in = (const Ej__Users__UpdateProfileRequest *)req;
        struct profile_in p;
        struct users_act act = act_of(call, "profile_updated", call->user_id, NULL);
        enum ej_status st = need_user(call, err);

        if (st == EJ_OK)
                st = check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p, err);
        if (st == EJ_OK && in->theme[0] && !in_list(valid_themes, in->theme))
                st = ej_err_set(err, EJ_ERR_INVALID, "theme",
                                "the theme is one of dark, light, journal, modern, elegant, "
                                "high-contrast");
        if (st == EJ_OK)
                st = store_profile_update(call->db, call->user_id, p.name, p.affiliation, p.orcid,
                                          p.bio, in->theme, &act, err);
        if (st != EJ_OK)
                return st;
        announce_user(call, call->user_id);
        return fill_me(call, (Ej__Users__MeResponse *)resp, err);
}

enum ej_status users_change_password(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ChangePasswordRequest *in = (const Ej__Users__ChangePasswordRequest *)req;
        struct users_ctx *ctx = call->svc;
        char hash[crypto_pwhash_STRBYTES];
        char keep[EJ_SHA256_HEX_LEN];
        size_t tn = strlen(in->session_token);
        struct users_act act = act_of(call, "password_changed", call->user_id, NULL);
        char *current = NULL;
        enum ej_status st = need_user(call, err);

        (void)resp;
        if (st != EJ_OK)
                return st;
        if (in->current_password[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, "current_password",
                                  "enter your current password");
        st = check_password(in->new_password, "new_password", err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &current, err);
        if (st != EJ_OK)
                return st;
        if (strlen(in->current_password) > USERS_PASSWORD_MAX ||
            !password_verify(ctx, current, in->current_password))
                return ej_err_set(err, EJ_ERR_INVALID, "current_password",
                                  "the current password is wrong");
        st = password_hash(ctx, in->new_password, hash, err);
        if (st != EJ_OK)
                return st;
        if (tn > 0 && tn <= USERS_TOKEN_MAX)
                ej_sha256_hex(in->session_token, tn, keep);
        st = store_password_set(call->db, call->user_id, hash,
                                tn > 0 && tn <= USERS_TOKEN_MAX ? keep : NULL, &act, err);
        sodium_memzero(hash, sizeof(hash));
        if (st == EJ_OK)
                announce_user(call, call->user_id);
        return st;
}

enum ej_status users_request_password_reset(struct ej_call *call, const ProtobufCMessage *req,
                                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__PasswordResetRequest *in = (const Ej__Users__PasswordResetRequest *)req;
        struct users_ctx *ctx = call->svc;
        struct ej_str email = trimmed(in->email);
        Ej__Users__User *user = NULL;
        struct users_act act;
        enum ej_status st;

        (void)resp;
        if (!email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, "email",
                                  "that does not look like an e-mail address");
        st = store_user_by_email(call->db, call->arena,
                                 ej_arena_strndup(call->arena, email.p, email.n), &user, NULL, err);
        /* The same answer whether or not the account exists: no enumeration. */
        if (st == EJ_ERR_NOT_FOUND)
                return EJ_OK;
        if (st != EJ_OK)
                return st;
        if (user->deactivated || user->erased)
                return EJ_OK;
        act = act_of(call, "password_reset_requested", user->id, NULL);
        act.actor_id = NULL;
        return issue_mailed_token(call, user, "password_reset", ctx->reset_ttl_s, "/reset-password",
                                  "password_reset", &act, err);
}

enum ej_status users_reset_password(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ResetPasswordRequest *in = (const Ej__Users__ResetPasswordRequest *)req;
        char hash[crypto_pwhash_STRBYTES];
        char th[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        (void)resp;
        st = token_hash_of(in->token, th, err);
        if (st == EJ_OK)
                st = check_password(in->new_password, "new_password", err);
        if (st == EJ_OK)
                st = password_hash(call->svc, in->new_password, hash, err);
        if (st != EJ_OK)
                return st;
        st = apply_token(call, in->token, "password_reset", hash, NULL, err);
        sodium_memzero(hash, sizeof(hash));
        return st;
}

enum ej_status users_change_email(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ChangeEmailRequest *in = (const Ej__Users__ChangeEmailRequest *)req;
        struct users_ctx *ctx = call->svc;
        Ej__Users__User *me = NULL, *other = NULL;
        struct fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        struct users_act act;
        const char *vars[11];
        char *email = NULL, *hash = NULL;
        enum ej_status st = need_user(call, err);

        (void)resp;
        if (st == EJ_OK)
                st = check_email(call, in->new_email, "new_email", &email, err);
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, call->user_id, &me, err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &hash, err);
        if (st != EJ_OK)
                return st;
        if (strlen(in->password) > USERS_PASSWORD_MAX || !password_verify(ctx, hash, in->password))
                return ej_err_set(err, EJ_ERR_INVALID, "password", "the password is wrong");
        st = store_user_by_email(call->db, call->arena, email, &other, NULL, err);
        if (st == EJ_OK)
                return ej_err_set(err, EJ_ERR_CONFLICT, "new_email",
                                  other && strcmp(other->id, me->id) == 0
                                      ? "this is already your e-mail address"
                                      : "an account with this e-mail address already exists");
        if (st != EJ_ERR_NOT_FOUND)
                return st;
        token_new(&tok);
        t.hash = tok.hash;
        t.purpose = "email_change";
        t.ttl_s = ctx->email_change_ttl_s;
        t.data = email;
        vars[0] = "name";
        vars[1] = me->name;
        vars[2] = "link";
        vars[3] = link_to(call, "/confirm-email", tok.token);
        vars[4] = "email";
        vars[5] = email;
        vars[6] = "new_email";
        vars[7] = email;
        vars[8] = "expires";
        vars[9] = expires_in(call->arena, t.ttl_s);
        vars[10] = NULL;
        mail.tpl = "email_change";
        mail.to = email;
        mail.vars = vars;
        act = act_of(call, "email_change_requested", me->id, details1(call->arena, "to", email));
        st = store_token_issue(call->db, me->id, &t, &act, &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

enum ej_status users_confirm_email_change(struct ej_call *call, const ProtobufCMessage *req,
                                          ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;

        return apply_token(call, in->token, "email_change", NULL, &out->user, err);
}

/* ---- invitations ------------------------------------------------------------------------ */

enum ej_status users_accept_invitation(struct ej_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AcceptInvitationRequest *in =
            (const Ej__Users__AcceptInvitationRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        char hash[crypto_pwhash_STRBYTES];
        char th[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        st = token_hash_of(in->token, th, err);
        if (st == EJ_OK)
                st = check_password(in->password, "password", err);
        if (st == EJ_OK)
                st = password_hash(call->svc, in->password, hash, err);
        if (st != EJ_OK)
                return st;
        st = apply_token(call, in->token, "invitation", hash, &out->user, err);
        sodium_memzero(hash, sizeof(hash));
        return st;
}

/* Mails a fresh invitation link to `user` (an account without a password). */
static enum ej_status reinvite(struct ej_call *call, const Ej__Users__User *user,
                               const char *inviter, const char *role, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        struct users_act act =
            act_of(call, "invited", user->id, details1(call->arena, "role", role));
        const char *vars[13];
        enum ej_status st;

        token_new(&tok);
        t.hash = tok.hash;
        t.purpose = "invitation";
        t.ttl_s = ctx->invite_ttl_s;
        t.data = NULL;
        vars[0] = "name";
        vars[1] = user->name;
        vars[2] = "link";
        vars[3] = link_to(call, "/accept-invitation", tok.token);
        vars[4] = "email";
        vars[5] = user->email;
        vars[6] = "inviter";
        vars[7] = inviter;
        vars[8] = "role";
        vars[9] = role;
        vars[10] = "expires";
        vars[11] = expires_in(call->arena, t.ttl_s);
        vars[12] = NULL;
        mail.tpl = "invitation";
        mail.to = user->email;
        mail.vars = vars;
        st = store_token_issue(call->db, user->id, &t, &act, &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

/* The caller's name for mails ("the editors" when it cannot be read). */
static const char *caller_name(struct ej_call *call)
{
        Ej__Users__User *me = NULL;

        if (call->user_id[0] &&
            store_user_get(call->db, call->arena, call->user_id, &me, NULL) == EJ_OK)
                return me->name;
        return "the editors";
}

enum ej_status users_invite_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__InviteUserRequest *in = (const Ej__Users__InviteUserRequest *)req;
        Ej__Users__InviteUserResponse *out = (Ej__Users__InviteUserResponse *)resp;
        const char *role = in->role[0] ? in->role : "reviewer";
        const char *roles[1] = {role};
        struct profile_in p;
        struct account_plan plan;
        Ej__Users__User *user = NULL;
        struct users_act act;
        char *email = NULL;
        enum ej_status st = need_user(call, err);

        if (st != EJ_OK)
                return st;
        if (!ej_call_has_role(call, "editor") && !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the editor role");
        if (!in_list(valid_roles, role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        if ((strcmp(role, "editor") == 0 || strcmp(role, "admin") == 0) &&
            !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "role",
                                  "only an admin may grant the %s role", role);
        st = check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = check_profile(call, in->name, "", "", "", &p, err);
        if (st != EJ_OK)
                return st;
        st = store_user_by_email(call->db, call->arena, email, &user, NULL, err);
        if (st == EJ_OK) {
                if (user->deactivated)
                        return ej_err_set(err, EJ_ERR_CONFLICT, "email",
                                          "this account is deactivated");
                act = act_of(call, "role_granted", user->id, details1(call->arena, "role", role));
                st = store_role_grant(call->db, user->id, role, call->user_id, &act, err);
                if (st == EJ_OK && !user->has_password)
                        st = reinvite(call, user, caller_name(call), role, err);
                if (st != EJ_OK)
                        return st;
                announce_user(call, user->id);
                out->created = false;
                return store_user_get(call->db, call->arena, user->id, &out->user, err);
        }
        if (st != EJ_ERR_NOT_FOUND)
                return st;
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.roles = roles;
        plan.n_roles = 1;
        plan.act_kind = "invited";
        plan.inviter = caller_name(call);
        plan.role_label = role;
        st = account_create(call, &plan, &out->user, err);
        out->created = st == EJ_OK;
        return st;
}

/* ---- consent and privacy ---------------------------------------------------------------- */

enum ej_status users_get_consent(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ConsentVersion *out = (Ej__Users__ConsentVersion *)resp;
        enum ej_status st = store_consent_current(call->db, call->arena, out, err);

        (void)req;
        if (st == EJ_OK)
                out->html = markdown_html(call->arena, out->markdown);
        return st;
}

enum ej_status users_accept_consent(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AcceptConsentRequest *in = (const Ej__Users__AcceptConsentRequest *)req;
        char v[16];
        struct users_act act;
        enum ej_status st = need_user(call, err);

        (void)resp;
        if (st != EJ_OK)
                return st;
        if (in->version == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "version",
                                  "say which version of the text you accept");
        snprintf(v, sizeof(v), "%u", in->version);
        act = act_of(call, "consent", call->user_id, details1(call->arena, "version", v));
        st = store_consent_record(call->db, call->user_id, in->version, call->client_addr, &act,
                                  err);
        if (st == EJ_OK)
                announce_user(call, call->user_id);
        return st;
}

enum ej_status users_withdraw_consent(struct ej_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage *resp, struct ej_err *err)
{
        struct users_act act = act_of(call, "consent_withdrawn", call->user_id, NULL);
        enum ej_status st = need_user(call, err);

        (void)req;
        (void)resp;
        if (st == EJ_OK)
                st = store_consent_record(call->db, call->user_id, 0, call->client_addr, &act, err);
        if (st == EJ_OK)
                announce_user(call, call->user_id);
        return st;
}

enum ej_status users_get_privacy(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__PrivacyPolicy *out = (Ej__Users__PrivacyPolicy *)resp;
        char *md = NULL;
        enum ej_status st;

        (void)req;
        st = store_site_text_get(call->db, call->arena, "privacy_policy", &md, &out->updated_at_ms,
                                 err);
        if (st != EJ_OK)
                return st;
        out->markdown = md[0] ? md : (char *)(uintptr_t)default_privacy;
        out->html = markdown_html(call->arena, out->markdown);
        return EJ_OK;
}

/* ---- export and erasure ----------------------------------------------------------------- */

/* Asks service `svc` for its part of `user_id`'s export and adds it to `parts`. */
static enum ej_status export_part(struct ej_call *call, const char *svc, const char *user_id,
                                  json_t *parts, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        Ej__Common__GdprExportRequest rq = EJ__COMMON__GDPR_EXPORT_REQUEST__INIT;
        Ej__Common__GdprExportPart *part = NULL;
        char subject[96];
        json_error_t jerr;
        json_t *v;
        enum ej_status st;

        rq.user_id = (char *)(uintptr_t)user_id;
        snprintf(subject, sizeof(subject), "ej.%s.gdpr_export", svc);
        st = ej_bus_request(call->bus, subject, &rq.base, call->request_id,
                            &ej__common__gdpr_export_part__descriptor, call->arena,
                            (int)ctx->gdpr_timeout_ms, (ProtobufCMessage **)&part, err);
        if (st != EJ_OK) {
                ej_warn(call->request_id, "export: %s did not answer: %s", svc,
                        err ? err->msg : "");
                return ej_err_set(err, st == EJ_ERR_TIMEOUT ? EJ_ERR_TIMEOUT : EJ_ERR_UNAVAILABLE,
                                  NULL,
                                  "the %s service did not give its part of the export; nothing "
                                  "was exported, try again later",
                                  svc);
        }
        v = json_loads(part->json[0] ? part->json : "null", JSON_DECODE_ANY, &jerr);
        if (v == NULL)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "the %s service gave an export part that is not JSON", svc);
        json_object_set_new(parts, svc, v);
        return EJ_OK;
}

enum ej_status users_export_my_data(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ExportMyDataResponse *out = (Ej__Users__ExportMyDataResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct users_act act = act_of(call, "export", call->user_id, NULL);
        json_t *doc = NULL, *parts = NULL, *own = NULL;
        json_error_t jerr;
        char *own_json = NULL, *text;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        enum ej_status st = need_user(call, err);

        (void)req;
        if (st != EJ_OK)
                return st;
        st = store_export_json(call->db, call->arena, call->user_id, &own_json, err);
        if (st != EJ_OK)
                return st;
        own = json_loads(own_json, 0, &jerr);
        if (own == NULL)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the export could not be built");
        doc = json_object();
        parts = json_object();
        json_object_set_new(parts, "users", own);
        /* Every configured service must answer: a partial export is an error, not a file. */
        {
                char *list = ej_arena_strdup(call->arena, ctx->gdpr_services);
                char *save = NULL;

                for (char *s = strtok_r(list, ", ", &save); s && st == EJ_OK;
                     s = strtok_r(NULL, ", ", &save))
                        if (strcmp(s, "users") != 0)
                                st = export_part(call, s, call->user_id, parts, err);
        }
        if (st != EJ_OK)
                goto out;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(doc, "format", json_string("easyjournal-personal-data/1"));
        json_object_set_new(doc, "user_id", json_string(call->user_id));
        json_object_set_new(doc, "generated_at", json_string(stamp));
        json_object_set(doc, "services", parts);
        text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the export could not be written");
                goto out;
        }
        out->json = ej_arena_strdup(call->arena, text);
        free(text);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        out->filename =
            ej_arena_printf(call->arena, "easyjournal-export-%s-%s.json", call->user_id, stamp);
        st = store_activity_add(call->db, &act, err);
out:
        json_decref(parts);
        json_decref(doc);
        return st;
}

enum ej_status users_request_erasure(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__RequestErasureRequest *in = (const Ej__Users__RequestErasureRequest *)req;
        struct users_ctx *ctx = call->svc;
        Ej__Users__User *me = NULL;
        struct users_act act = act_of(call, "erasure_requested", call->user_id, NULL);
        char *hash = NULL;
        enum ej_status st = need_user(call, err);

        (void)resp;
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, call->user_id, &me, err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &hash, err);
        if (st != EJ_OK)
                return st;
        if (me->has_password && (strlen(in->password) > USERS_PASSWORD_MAX ||
                                 !password_verify(ctx, hash, in->password)))
                return ej_err_set(err, EJ_ERR_INVALID, "password", "the password is wrong");
        return issue_mailed_token(call, me, "erasure", ctx->erasure_ttl_s, "/confirm-erasure",
                                  "erasure_confirm", &act, err);
}

enum ej_status users_confirm_erasure(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;

        (void)resp;
        return apply_token(call, in->token, "erasure", NULL, NULL, err);
}

/* ---- admin ------------------------------------------------------------------------------ */

static unsigned page_limit(const Ej__Common__PageRequest *page)
{
        unsigned limit = page && page->limit ? page->limit : USERS_PAGE_DEFAULT;

        return limit > USERS_PAGE_MAX ? USERS_PAGE_MAX : limit;
}

enum ej_status users_list_users(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ListUsersRequest *in = (const Ej__Users__ListUsersRequest *)req;
        Ej__Users__ListUsersResponse *out = (Ej__Users__ListUsersResponse *)resp;
        struct users_list_query q;
        struct ej_str query = trimmed(in->query);
        Ej__Common__PageInfo *page;
        bool exact = true;
        enum ej_status st = need_role(call, "admin", err);

        if (st != EJ_OK)
                return st;
        if (query.n > USERS_QUERY_MAX || text_chars(query) < 0)
                return ej_err_set(err, EJ_ERR_INVALID, "query",
                                  "the search must be at most %d bytes of text", USERS_QUERY_MAX);
        if (in->role[0] && !in_list(valid_roles, in->role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        if (in->sort[0] && strcmp(in->sort, "name") != 0 && strcmp(in->sort, "email") != 0 &&
            strcmp(in->sort, "created") != 0)
                return ej_err_set(err, EJ_ERR_INVALID, "sort", "sort by name, email or created");
        if (in->status[0] && strcmp(in->status, "active") != 0 &&
            strcmp(in->status, "deactivated") != 0 && strcmp(in->status, "unverified") != 0)
                return ej_err_set(err, EJ_ERR_INVALID, "status",
                                  "the status is active, deactivated or unverified");
        q.query = ej_arena_strndup(call->arena, query.p, query.n);
        q.role = in->role;
        q.sort = in->sort[0] ? in->sort : "name";
        q.desc = in->desc;
        q.status = in->status;
        q.cursor = in->page && in->page->cursor ? in->page->cursor : "";
        q.limit = page_limit(in->page);
        page = ej_arena_alloc(call->arena, sizeof(*page));
        ej__common__page_info__init(page);
        st = store_users_list(call->db, call->arena, &q, &out->users, &out->n_users,
                              &page->next_cursor, &page->total, &exact, err);
        out->page = page;
        out->total_exact = exact;
        return st;
}

enum ej_status users_get_user(struct ej_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        enum ej_status st = need_user(call, err);

        if (st != EJ_OK)
                return st;
        if (strcmp(in->user_id, call->user_id) != 0 && !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the admin role");
        st = need_user_id(in->user_id, err);
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, in->user_id, &out->user, err);
        return st;
}

/* Checks `roles` (n names, each valid, no duplicates needed). */
static enum ej_status check_roles(char **roles, size_t n, struct ej_err *err)
{
        for (size_t i = 0; i < n; i++)
                if (!in_list(valid_roles, roles[i]))
                        return ej_err_set(err, EJ_ERR_INVALID, "roles",
                                          "each role is one of author, reviewer, editor, admin");
        return EJ_OK;
}

enum ej_status users_create_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__CreateUserRequest *in = (const Ej__Users__CreateUserRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        static const char *const default_roles[] = {USERS_DEFAULT_ROLE};
        struct profile_in p;
        struct account_plan plan;
        char *email = NULL;
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p, err);
        if (st == EJ_OK)
                st = check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = check_roles(in->roles, in->n_roles, err);
        if (st != EJ_OK)
                return st;
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.roles = in->n_roles ? (const char *const *)in->roles : default_roles;
        plan.n_roles = in->n_roles ? in->n_roles : 1;
        plan.act_kind = "user_created";
        plan.inviter = caller_name(call);
        plan.role_label = plan.roles[0];
        return account_create(call, &plan, &out->user, err);
}

enum ej_status users_update_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateUserRequest *in = (const Ej__Users__UpdateUserRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct profile_in p;
        struct users_act act = act_of(call, "user_updated", in->user_id, NULL);
        char *email = NULL;
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = need_user_id(in->user_id, err);
        if (st == EJ_OK)
                st = check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p, err);
        if (st == EJ_OK)
                st = check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = store_user_admin_update(call->db, in->user_id, p.name, email, p.affiliation,
                                             p.orcid, p.bio, &act, err);
        if (st != EJ_OK)
                return st;
        announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

static enum ej_status role_change(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, bool grant, struct ej_err *err)
{
        const Ej__Users__RoleRequest *in = (const Ej__Users__RoleRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_act act;
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (!in_list(valid_roles, in->role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        act = act_of(call, grant ? "role_granted" : "role_revoked", in->user_id,
                     details1(call->arena, "role", in->role));
        st = grant ? store_role_grant(call->db, in->user_id, in->role, call->user_id, &act, err)
                   : store_role_revoke(call->db, in->user_id, in->role, &act, err);
        if (st != EJ_OK)
                return st;
        announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

enum ej_status users_grant_role(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        return role_change(call, req, resp, true, err);
}

enum ej_status users_revoke_role(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        return role_change(call, req, resp, false, err);
}

static enum ej_status set_active(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, bool active, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_act act =
            act_of(call, active ? "reactivated" : "deactivated", in->user_id, NULL);
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (!active && strcmp(in->user_id, call->user_id) == 0)
                return ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                  "you cannot deactivate your own account");
        st = store_user_set_active(call->db, in->user_id, active, &act, err);
        if (st != EJ_OK)
                return st;
        announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

enum ej_status users_deactivate_user(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        return set_active(call, req, resp, false, err);
}

enum ej_status users_reactivate_user(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        return set_active(call, req, resp, true, err);
}

enum ej_status users_erase_user(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        struct users_act act = act_of(call, "erasure", in->user_id, NULL);
        enum ej_status st = need_role(call, "admin", err);

        (void)resp;
        if (st == EJ_OK)
                st = need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (strcmp(in->user_id, call->user_id) == 0)
                return ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                  "erase your own account from your profile, not as an admin");
        act.client_addr = NULL;
        st = store_user_erase(call->db, in->user_id, call->user_id, &act, err);
        if (st == EJ_OK)
                announce_user(call, in->user_id);
        return st;
}

enum ej_status users_list_activity(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ListActivityRequest *in = (const Ej__Users__ListActivityRequest *)req;
        Ej__Users__ListActivityResponse *out = (Ej__Users__ListActivityResponse *)resp;
        Ej__Common__PageInfo *page;
        enum ej_status st = need_role(call, "admin", err);

        if (st != EJ_OK)
                return st;
        if (strlen(in->kind) > 64)
                return ej_err_set(err, EJ_ERR_INVALID, "kind", "no such kind of activity");
        if (in->user_id[0] && !ej_uuid_valid(in->user_id))
                return ej_err_set(err, EJ_ERR_INVALID, "user_id", "not a user id");
        if (in->from_ms < 0 || in->to_ms < 0 || (in->to_ms > 0 && in->to_ms < in->from_ms))
                return ej_err_set(err, EJ_ERR_INVALID, "to_ms", "the time range is empty");
        page = ej_arena_alloc(call->arena, sizeof(*page));
        ej__common__page_info__init(page);
        st = store_activity_list(call->db, call->arena, in->kind, in->user_id, in->from_ms,
                                 in->to_ms, in->page && in->page->cursor ? in->page->cursor : "",
                                 page_limit(in->page), &out->entries, &out->n_entries,
                                 &page->next_cursor, err);
        out->page = page;
        return st;
}

enum ej_status users_publish_consent(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__PublishConsentRequest *in = (const Ej__Users__PublishConsentRequest *)req;
        Ej__Users__ConsentVersion *out = (Ej__Users__ConsentVersion *)resp;
        struct users_act act =
            act_of(call, "consent_published", NULL,
                   details1(call->arena, "required", in->required ? "yes" : "no"));
        uint32_t version = 0;
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = check_markdown(in->markdown, err);
        if (st == EJ_OK)
                st = store_consent_publish(call->db, in->markdown, in->required, call->user_id,
                                           &act, &version, err);
        if (st == EJ_OK)
                st = store_consent_current(call->db, call->arena, out, err);
        if (st != EJ_OK)
                return st;
        out->html = markdown_html(call->arena, out->markdown);
        /* Everyone's consent state may have changed. */
        if (in->required)
                announce_user(call, "*");
        return EJ_OK;
}

enum ej_status users_consent_stats(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err)
{
        enum ej_status st = need_role(call, "admin", err);

        (void)req;
        if (st != EJ_OK)
                return st;
        return store_consent_stats(call->db, (Ej__Users__ConsentStats *)resp, err);
}

enum ej_status users_set_privacy(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__SetPrivacyRequest *in = (const Ej__Users__SetPrivacyRequest *)req;
        struct users_act act = act_of(call, "privacy_updated", NULL, NULL);
        enum ej_status st = need_role(call, "admin", err);

        if (st == EJ_OK)
                st = check_markdown(in->markdown, err);
        if (st == EJ_OK)
                st = store_site_text_set(call->db, "privacy_policy", in->markdown, call->user_id,
                                         &act, err);
        if (st != EJ_OK)
                return st;
        return users_get_privacy(call, NULL, resp, err);
}

/* ---- mail templates (admin) ------------------------------------------------------------ */

static Ej__Users__MailTemplate *mail_template_pb(struct ej_arena *a,
                                                 const struct ej_mail_template *t)
{
        Ej__Users__MailTemplate *m = ej_arena_alloc(a, sizeof(*m));

        ej__users__mail_template__init(m);
        m->key = (char *)(uintptr_t)t->key;
        m->subject = (char *)(uintptr_t)t->subject;
        m->body_text = (char *)(uintptr_t)t->body_text;
        m->updated_at = (char *)(uintptr_t)t->updated_at;
        m->updated_by = (char *)(uintptr_t)t->updated_by;
        return m;
}

enum ej_status users_list_mail_templates(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ListMailTemplatesResponse *out = (Ej__Users__ListMailTemplatesResponse *)resp;
        struct ej_mail_template *list = NULL;
        size_t n = 0;
        enum ej_status st = need_role(call, "admin", err);

        (void)req;
        if (st == EJ_OK)
                st = ej_mail_template_list(call->db, call->arena, &list, &n, err);
        if (st != EJ_OK)
                return st;
        out->n_templates = n;
        out->templates = n ? ej_arena_alloc(call->arena, n * sizeof(*out->templates)) : NULL;
        for (size_t i = 0; i < n; i++)
                out->templates[i] = mail_template_pb(call->arena, &list[i]);
        return EJ_OK;
}

enum ej_status users_update_mail_template(struct ej_call *call, const ProtobufCMessage *req,
                                          ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateMailTemplateRequest *in =
            (const Ej__Users__UpdateMailTemplateRequest *)req;
        Ej__Users__MailTemplate *out = (Ej__Users__MailTemplate *)resp;
        struct users_act act =
            act_of(call, "mail_template_updated", NULL, details1(call->arena, "key", in->key));
        struct ej_mail_template t;
        enum ej_status st = need_role(call, "admin", err);

        /* The edit and its activity row commit together. */
        if (st == EJ_OK)
                st = ej_db_begin(call->db, err);
        if (st == EJ_OK)
                st = ej_mail_template_update(call->db, in->key, in->subject, in->body_text,
                                             call->user_id, err);
        if (st == EJ_OK)
                st = store_activity_add(call->db, &act, err);
        if (st == EJ_OK)
                st = ej_db_commit(call->db, err);
        if (st != EJ_OK) {
                ej_db_rollback(call->db);
                return st;
        }
        st = ej_mail_template_get(call->db, call->arena, in->key, &t, err);
        if (st != EJ_OK)
                return st;
        *out = *mail_template_pb(call->arena, &t);
        return EJ_OK;
}

/* ---- command line ----------------------------------------------------------------------- */

/* A call for the command line: no bus, no caller, no client address. */
static void cli_call(struct ej_call *call, struct users_ctx *ctx, struct ej_db *db,
                     struct ej_arena *a)
{
        memset(call, 0, sizeof(*call));
        call->arena = a;
        call->db = db;
        call->request_id = "cli";
        call->user_id = "";
        call->roles = "";
        call->client_addr = "";
        call->svc = ctx;
}

enum ej_status users_cli_create_user(struct users_ctx *ctx, struct ej_db *db, const char *email,
                                     const char *name, const char *roles, const char *password,
                                     bool update, char id_out[37], struct ej_err *err)
{
        struct ej_arena *a = ej_arena_create(0);
        struct ej_call call;
        struct profile_in p;
        struct account_plan plan;
        Ej__Users__User *user = NULL;
        char **role_list;
        size_t n_roles = 0;
        char *mail_addr = NULL;
        char *roles_copy;
        enum ej_status st;

        cli_call(&call, ctx, db, a);
        roles_copy = ej_arena_strdup(a, roles && roles[0] ? roles : USERS_DEFAULT_ROLE);
        /* Split on commas into the arena. */
        n_roles = 1;
        for (char *q = roles_copy; *q; q++)
                n_roles += *q == ',';
        role_list = ej_arena_alloc(a, n_roles * sizeof(*role_list));
        {
                char *save = NULL;
                size_t i = 0;

                for (char *r = strtok_r(roles_copy, ",", &save); r && i < n_roles;
                     r = strtok_r(NULL, ",", &save))
                        role_list[i++] = r;
                n_roles = i;
        }
        st = check_email(&call, email, "email", &mail_addr, err);
        if (st == EJ_OK)
                st = check_profile(&call, name, "", "", "", &p, err);
        if (st == EJ_OK)
                st = n_roles > 0 ? check_roles(role_list, n_roles, err)
                                 : ej_err_set(err, EJ_ERR_INVALID, "roles", "give a role");
        if (st == EJ_OK && password)
                st = check_password(password, "password", err);
        if (st != EJ_OK)
                goto out;
        st = store_user_by_email(db, a, mail_addr, &user, NULL, err);
        if (st == EJ_OK && !update) {
                st =
                    ej_err_set(err, EJ_ERR_CONFLICT, "email",
                               "an account with this e-mail address already exists (%s)", user->id);
                goto out;
        }
        if (st == EJ_OK) {
                struct users_act act = {"user_updated", NULL, user->id, NULL, NULL};

                for (size_t i = 0; i < n_roles && st == EJ_OK; i++)
                        st = store_role_grant(db, user->id, role_list[i], NULL, NULL, err);
                if (st == EJ_OK && password) {
                        char hash[crypto_pwhash_STRBYTES];
                        char *current = NULL;

                        /* The same password again (a demo restart) keeps the sessions. */
                        st = store_user_password_hash(db, a, user->id, &current, err);
                        if (st == EJ_OK && !password_verify(ctx, current, password)) {
                                st = password_hash(ctx, password, hash, err);
                                if (st == EJ_OK)
                                        st =
                                            store_password_set(db, user->id, hash, NULL, &act, err);
                                sodium_memzero(hash, sizeof(hash));
                        }
                        if (st == EJ_OK)
                                st = store_user_mark_verified(db, user->id, err);
                }
                if (st == EJ_OK && user->deactivated)
                        st = store_user_set_active(db, user->id, true, NULL, err);
                if (st == EJ_OK)
                        snprintf(id_out, 37, "%s", user->id);
                goto out;
        }
        if (st != EJ_ERR_NOT_FOUND)
                goto out;
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = mail_addr;
        plan.password = password;
        plan.roles = (const char *const *)role_list;
        plan.n_roles = n_roles;
        plan.verified = password != NULL;
        plan.act_kind = "user_created";
        plan.inviter = "the administrators";
        plan.role_label = role_list[0];
        st = account_create(&call, &plan, &user, err);
        if (st == EJ_OK)
                snprintf(id_out, 37, "%s", user->id);
out:
        ej_arena_destroy(a);
        return st;
}

enum ej_status users_cli_seed_bench(struct users_ctx *ctx, struct ej_db *db, long count,
                                    struct ej_err *err)
{
        char hash[crypto_pwhash_STRBYTES];
        enum ej_status st = password_hash(ctx, "bench-password", hash, err);

        if (st == EJ_OK)
                st = store_bench_seed(db, count, hash, err);
        return st;
}
