/* handlers_util.c: what the handler files share (handlers_internal.h): passwords and mailed
 * tokens, text checks, and checks of the caller. No SQL here. */
#include "handlers_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "log.h"

/* ---- passwords and tokens --------------------------------------------------------------- */

enum ej_status users_password_hash(struct users_ctx *ctx, const char *pw, char *out,
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

bool users_password_verify(struct users_ctx *ctx, const char *hash, const char *pw)
{
        bool usable = strncmp(hash, "$argon2", 7) == 0;
        int rc;

        rc = crypto_pwhash_str_verify(usable ? hash : ctx->dummy_hash, pw, strlen(pw));
        return usable && rc == 0;
}

enum ej_status users_check_password(const char *pw, const char *field, struct ej_err *err)
{
        size_t n = strlen(pw);

        if (n < USERS_PASSWORD_MIN || n > USERS_PASSWORD_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "the password must be %d to %d bytes long", USERS_PASSWORD_MIN,
                                  USERS_PASSWORD_MAX);
        return EJ_OK;
}

void users_token_new(struct users_fresh_token *t)
{
        ej_random_token(t->token, sizeof(t->token), USERS_TOKEN_BYTES);
        ej_sha256_hex(t->token, strlen(t->token), t->hash);
}

enum ej_status users_token_hash_of(const char *token, char out[EJ_SHA256_HEX_LEN],
                                   struct ej_err *err)
{
        size_t n = strlen(token);

        if (n == 0 || n > USERS_TOKEN_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "token", "this link is not valid");
        ej_sha256_hex(token, n, out);
        return EJ_OK;
}

char *users_expires_in(struct ej_arena *a, long ttl_s)
{
        if (ttl_s >= 2 * 86400 && ttl_s % 86400 == 0 && ttl_s / 86400 > 2)
                return ej_arena_printf(a, "in %ld days", ttl_s / 86400);
        if (ttl_s >= 3600 && ttl_s % 3600 == 0)
                return ej_arena_printf(a, "in %ld hour%s", ttl_s / 3600, ttl_s == 3600 ? "" : "s");
        if (ttl_s >= 60)
                return ej_arena_printf(a, "in %ld minutes", ttl_s / 60);
        return ej_arena_printf(a, "in %ld seconds", ttl_s);
}

char *users_link_to(struct ej_call *call, const char *path, const char *token)
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

struct ej_str users_trimmed(const char *s)
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

long users_text_chars_ml(struct ej_str v, bool multiline)
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

long users_text_chars(struct ej_str v)
{
        return users_text_chars_ml(v, false);
}

bool users_email_shape_ok(struct ej_str v)
{
        const char *at = memchr(v.p, '@', v.n);
        size_t local, label = 0, labels = 0;

        if (v.n < 3 || v.n > USERS_EMAIL_MAX || at == NULL || users_text_chars(v) < 0)
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

const char *const users_valid_roles[] = {"author", "reviewer", "editor", "admin", NULL};

bool users_in_list(const char *const *list, const char *s)
{
        for (size_t i = 0; list[i]; i++)
                if (strcmp(list[i], s) == 0)
                        return true;
        return false;
}

static enum ej_status check_name(struct ej_call *call, const char *raw, char **out,
                                 struct ej_err *err)
{
        struct ej_str name = users_trimmed(raw);
        long chars = users_text_chars(name);

        if (chars < 1 || chars > USERS_NAME_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "name",
                                  "the name must be 1 to %d characters of text", USERS_NAME_MAX);
        *out = ej_arena_strndup(call->arena, name.p, name.n);
        return EJ_OK;
}

enum ej_status users_check_email(struct ej_call *call, const char *raw, const char *field,
                                 char **out, struct ej_err *err)
{
        struct ej_str email = users_trimmed(raw);

        if (email.n > USERS_EMAIL_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "the e-mail address is longer than %d bytes", USERS_EMAIL_MAX);
        if (!users_email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, field,
                                  "that does not look like an e-mail address");
        *out = ej_arena_strndup(call->arena, email.p, email.n);
        return EJ_OK;
}

enum ej_status users_check_profile(struct ej_call *call, const char *name, const char *aff,
                                   const char *orcid, const char *bio, struct users_profile_in *out,
                                   struct ej_err *err)
{
        struct ej_str a = users_trimmed(aff);
        struct ej_str o = users_trimmed(orcid);
        struct ej_str b = users_trimmed(bio);
        long n;
        enum ej_status st = check_name(call, name, &out->name, err);

        if (st != EJ_OK)
                return st;
        n = users_text_chars(a);
        if (n < 0 || n > USERS_AFFILIATION_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "affiliation",
                                  "the affiliation must be at most %d characters of text",
                                  USERS_AFFILIATION_MAX);
        if (o.n > 0 && !orcid_ok(o))
                return ej_err_set(err, EJ_ERR_INVALID, "orcid",
                                  "an ORCID iD looks like 0000-0002-1825-0097 and ends in its "
                                  "check digit; this one is not valid");
        n = users_text_chars_ml(b, true);
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

enum ej_status users_need_user(const struct ej_call *call, struct ej_err *err)
{
        if (call->user_id[0] == '\0')
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "sign in first");
        if (!ej_uuid_valid(call->user_id))
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "the caller is not a user");
        return EJ_OK;
}

enum ej_status users_need_role(const struct ej_call *call, const char *role, struct ej_err *err)
{
        enum ej_status st = users_need_user(call, err);

        if (st == EJ_OK && !ej_call_has_role(call, role))
                st = ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the %s role", role);
        return st;
}

enum ej_status users_need_user_id(const char *id, struct ej_err *err)
{
        if (!ej_uuid_valid(id))
                return ej_err_set(err, EJ_ERR_INVALID, "user_id", "not a user id");
        return EJ_OK;
}

struct users_act users_act_of(const struct ej_call *call, const char *kind, const char *subject,
                              const char *details)
{
        struct users_act act = {kind, call->user_id, subject, call->client_addr, details};

        return act;
}

char *users_details1(struct ej_arena *a, const char *key, const char *value)
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

void users_announce_user(struct ej_call *call, const char *user_id)
{
        struct ej_err perr;

        if (call->bus == NULL)
                return;
        if (ej_bus_publish(call->bus, USERS_BCAST_USER_CHANGED, user_id, strlen(user_id), &perr) !=
            EJ_OK)
                ej_warn(call->request_id, "user %s changed but not announced: %s", user_id,
                        perr.msg);
}

const char *users_caller_name(struct ej_call *call)
{
        Ej__Users__User *me = NULL;

        if (call->user_id[0] &&
            store_user_get(call->db, call->arena, call->user_id, &me, NULL) == EJ_OK)
                return me->name;
        return "the editors";
}
