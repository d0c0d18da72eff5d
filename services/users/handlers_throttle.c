/* handlers_throttle.c: the limits on what a caller can make the service do, over the shared
 * throttle of store_throttle.c: the per-account and per-address count of wrong passwords (at
 * sign-in and wherever a signed-in person confirms their password), the mail quotas (per
 * recipient, per client address, per account), and the bounded form of a person's name that
 * goes into mail. No SQL here. */
#include "handlers_internal.h"

#include <stdbool.h>
#include <string.h>

#include "log.h"

char *users_email_key(struct ej_arena *a, struct ej_str email)
{
        char *k = ej_arena_strndup(a, email.p, email.n);

        for (char *p = k; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        return k;
}

/* ---- wrong passwords -------------------------------------------------------------------- */

enum ej_status users_login_gate(struct ej_call *call, const char *key, bool with_addr,
                                struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        const struct users_limit lim[] = {
            {USERS_TB_LOGIN_ACCOUNT, key, ctx->login_max_account, ctx->login_window_s},
            {USERS_TB_LOGIN_ADDR, with_addr ? call->client_addr : "", ctx->login_max_addr,
             ctx->login_window_s},
        };
        int retry = 0;
        enum ej_status st = store_throttle_check(call->db, lim, 2, &retry, err);

        if (st == EJ_ERR_TOO_MANY)
                call->retry_after_s = retry;
        return st;
}

enum ej_status users_login_failure(struct ej_call *call, const char *key, bool with_addr,
                                   const struct users_act *act, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        const struct users_limit lim[] = {
            {USERS_TB_LOGIN_ACCOUNT, key, ctx->login_max_account, ctx->login_window_s},
            {USERS_TB_LOGIN_ADDR, with_addr ? call->client_addr : "", ctx->login_max_addr,
             ctx->login_window_s},
        };

        return store_throttle_note(call->db, lim, 2, act, err);
}

enum ej_status users_check_own_password(struct ej_call *call, const Ej__Users__User *me,
                                        const char *hash, const char *pw, const char *field,
                                        const char *wrong, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        char *key = users_email_key(call->arena, ej_str_c(me->email));
        struct users_act act;
        enum ej_status st;

        /* Locked: answer as a throttled sign-in does, without spending a check on the guess. */
        st = users_login_gate(call, key, false, err);
        if (st != EJ_OK)
                return st;
        if (strlen(pw) <= USERS_PASSWORD_MAX && users_password_verify(ctx, hash, pw))
                return EJ_OK;
        act = users_act_of(call, "password_check_failed", me->id, NULL);
        st = users_login_failure(call, key, false, &act, err);
        if (st != EJ_OK)
                return st;
        return ej_err_set(err, EJ_ERR_INVALID, field, "%s", wrong);
}

/* ---- mail quotas ------------------------------------------------------------------------ */

enum ej_status users_mail_allowed(struct ej_call *call, const char *to, const char *account_id,
                                  const char *what, bool *allowed, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        const char *account = call->user_id[0] ? call->user_id : account_id;
        const struct users_limit lim[] = {
            {USERS_TB_MAIL_TO, users_email_key(call->arena, users_trimmed(to)),
             ctx->mail_max_recipient, ctx->mail_window_s},
            {USERS_TB_MAIL_ADDR, call->client_addr, ctx->mail_max_addr, ctx->mail_window_s},
            {USERS_TB_MAIL_ACCOUNT, account ? account : "", ctx->mail_max_account,
             ctx->mail_window_s},
        };
        enum ej_status st = store_throttle_take(call->db, lim, 3, allowed, err);

        if (st == EJ_OK && !*allowed)
                ej_info(call->request_id, "mail quota reached: %s not sent", what);
        return st;
}

/* ---- names in mail ---------------------------------------------------------------------- */

/* True for a code point kept in a name in mail: letters of any script as far as a range test
 * can tell (Latin-1 and beyond, without the punctuation, symbol, private-use and emoji blocks,
 * and without the full stops that internationalised domain names treat as dots). */
static bool mail_name_cp_ok(unsigned cp)
{
        if (cp < 0x80)
                return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '-' ||
                       cp == '\'';
        if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7)
                return false;
        if ((cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x2e00 && cp <= 0x2e7f) ||
            (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xe000 && cp <= 0xf8ff) ||
            (cp >= 0xfe00 && cp <= 0xfe6f) || (cp >= 0xff00 && cp <= 0xff20) ||
            (cp >= 0xff3b && cp <= 0xff40) || (cp >= 0xff5b && cp <= 0xff65) || cp >= 0xfff0)
                return false;
        return true;
}

/* Decodes the UTF-8 sequence at p[0..n) into *cp; its length, or 1 for a stray byte (which
 * then decodes as U+FFFD, not kept). */
static size_t utf8_next(const unsigned char *p, size_t n, unsigned *cp)
{
        size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
        unsigned v = len == 4 ? p[0] & 0x07u : len == 3 ? p[0] & 0x0fu : p[0] & 0x1fu;

        if (len == 1) {
                *cp = p[0];
                return 1;
        }
        if (len == 0 || len > n) {
                *cp = 0xfffd;
                return 1;
        }
        for (size_t k = 1; k < len; k++) {
                if ((p[k] & 0xc0) != 0x80) {
                        *cp = 0xfffd;
                        return 1;
                }
                v = (v << 6) | (p[k] & 0x3fu);
        }
        *cp = v;
        return len;
}

char *users_mail_name(struct ej_arena *a, const char *name)
{
        const unsigned char *p = (const unsigned char *)(name ? name : "");
        size_t n = strlen((const char *)p);
        char *out = ej_arena_alloc(a, n + 1);
        size_t o = 0, i = 0, kept_end = 0;
        long chars = 0;
        bool gap = false;

        while (i < n && chars < USERS_MAIL_NAME_MAX) {
                unsigned cp;
                size_t len = utf8_next(p + i, n - i, &cp);

                if (!mail_name_cp_ok(cp)) {
                        gap = o > 0;
                        i += len;
                        continue;
                }
                if (gap) {
                        out[o++] = ' ';
                        chars++;
                        gap = false;
                        if (chars >= USERS_MAIL_NAME_MAX)
                                break;
                }
                memcpy(out + o, p + i, len);
                o += len;
                kept_end = o;
                chars++;
                i += len;
        }
        out[kept_end] = '\0';
        return kept_end > 0 ? out : ej_arena_strdup(a, USERS_MAIL_NAME_NONE);
}
