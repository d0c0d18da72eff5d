#include "users.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "bus.h"
#include "ids.h"
#include "log.h"
#include "str.h"

#define USERS_DEFAULT_ROLE "author"

/* One message for both an unknown e-mail and a wrong password: which one it was is not ours to
 * tell. */
static const char bad_credentials[] = "the e-mail address or the password is wrong";

enum ej_status users_ctx_init(struct users_ctx *ctx, long long session_ttl_ms, int hash_slots,
                              struct ej_err *err)
{
        char pw[64];

        memset(ctx, 0, sizeof(*ctx));
        ctx->session_ttl_ms = session_ttl_ms;
        if (sem_init(&ctx->hash_slots, 0, (unsigned)(hash_slots > 0 ? hash_slots : 1)) != 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "cannot create the hashing "
                                  "semaphore");
        ej_random_token(pw, sizeof(pw), 32);
        if (crypto_pwhash_str(ctx->dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
                sem_destroy(&ctx->hash_slots);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "argon2id needs more memory than the process may use");
        }
        return EJ_OK;
}

void users_ctx_free(struct users_ctx *ctx)
{
        if (ctx == NULL)
                return;
        sem_destroy(&ctx->hash_slots);
        sodium_memzero(ctx->dummy_hash, sizeof(ctx->dummy_hash));
}

static void slot_take(struct users_ctx *ctx)
{
        while (sem_wait(&ctx->hash_slots) != 0 && errno == EINTR)
                ;
}

static void slot_give(struct users_ctx *ctx)
{
        sem_post(&ctx->hash_slots);
}

/* argon2id of `pw` into `out` (libsodium's encoded string, salt and parameters included). */
static enum ej_status password_hash(struct users_ctx *ctx, const char *pw, char *out,
                                    struct ej_err *err)
{
        int rc;

        slot_take(ctx);
        rc = crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
        slot_give(ctx);
        if (rc != 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "password hashing failed");
        return EJ_OK;
}

static bool password_verify(struct users_ctx *ctx, const char *hash, const char *pw)
{
        int rc;

        slot_take(ctx);
        rc = crypto_pwhash_str_verify(hash, pw, strlen(pw));
        slot_give(ctx);
        return rc == 0;
}

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

/* Counts the characters of `v` when it is valid UTF-8 free of control characters; -1 if not. */
static long text_chars(struct ej_str v)
{
        const unsigned char *p = (const unsigned char *)v.p;
        size_t i = 0;
        long chars = 0;

        while (i < v.n) {
                unsigned c = p[i];
                size_t len;
                unsigned cp;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
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

/* True for the canonical text form of a UUID. */
static bool uuid_shape_ok(const char *s)
{
        size_t i = 0;

        for (; s[i]; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;

                if (i >= 36)
                        return false;
                if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL)
                        return false;
        }
        return i == 36;
}

enum ej_status users_register(struct ej_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__RegisterRequest *in = (const Ej__Users__RegisterRequest *)req;
        Ej__Users__RegisterResponse *out = (Ej__Users__RegisterResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct ej_str name = trimmed(in->name);
        struct ej_str email = trimmed(in->email);
        size_t pw_len = strlen(in->password);
        long name_chars = text_chars(name);
        char hash[crypto_pwhash_STRBYTES];
        char id[EJ_UUID_LEN];
        Ej__Users__UserRegistered event = EJ__USERS__USER_REGISTERED__INIT;
        Ej__Users__User *user;
        int64_t created_at_ms = 0;
        enum ej_status st;

        if (name_chars < 1 || name_chars > USERS_NAME_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "name",
                                  "the name must be 1 to %d characters of text", USERS_NAME_MAX);
        if (!email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, "email",
                                  "that does not look like an e-mail address");
        if (pw_len < USERS_PASSWORD_MIN || pw_len > USERS_PASSWORD_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "password",
                                  "the password must be %d to %d bytes long", USERS_PASSWORD_MIN,
                                  USERS_PASSWORD_MAX);

        /* Hashing takes tens of milliseconds: never inside a transaction. */
        st = password_hash(ctx, in->password, hash, err);
        if (st != EJ_OK)
                return st;

        user = ej_arena_alloc(call->arena, sizeof(*user));
        ej__users__user__init(user);
        ej_uuid(id);
        user->id = ej_arena_strdup(call->arena, id);
        user->name = ej_arena_strndup(call->arena, name.p, name.n);
        user->email = ej_arena_strndup(call->arena, email.p, email.n);
        user->n_roles = 1;
        user->roles = ej_arena_alloc(call->arena, sizeof(*user->roles));
        user->roles[0] = ej_arena_strdup(call->arena, USERS_DEFAULT_ROLE);
        event.user_id = user->id;
        event.email = user->email;
        event.name = user->name;

        st = store_user_create(call->db, user->id, user->name, user->email, hash,
                               USERS_DEFAULT_ROLE, &event, &created_at_ms, err);
        sodium_memzero(hash, sizeof(hash));
        if (st != EJ_OK)
                return st;
        user->created_at_ms = created_at_ms;
        out->user = user;
        ej_info(call->request_id, "registered user %s", user->id);
        return EJ_OK;
}

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
        char *hash = NULL;
        char *email_c;
        int64_t expires_at_ms = 0;
        enum ej_status st;

        if (email.n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "email", "enter your e-mail address");
        if (pw_len == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "password", "enter your password");
        if (pw_len > USERS_PASSWORD_MAX || email.n > USERS_EMAIL_MAX)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);

        email_c = ej_arena_strndup(call->arena, email.p, email.n);
        st = store_user_by_email(call->db, call->arena, email_c, &user, &hash, err);
        if (st == EJ_ERR_NOT_FOUND) {
                /* Spend the same work as a real check, so response time does not tell which
                 * e-mail addresses have accounts. */
                (void)password_verify(ctx, ctx->dummy_hash, in->password);
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);
        }
        if (st != EJ_OK)
                return st;
        if (!password_verify(ctx, hash, in->password))
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);

        ej_random_token(token, sizeof(token), USERS_TOKEN_BYTES);
        ej_sha256_hex(token, strlen(token), token_hash);
        st = store_session_create(call->db, token_hash, user->id, ctx->session_ttl_ms,
                                  &expires_at_ms, err);
        if (st != EJ_OK)
                goto out;
        out->user = user;
        out->session_token = ej_arena_strdup(call->arena, token);
        out->expires_at_ms = expires_at_ms;
out:
        sodium_memzero(token, sizeof(token));
        return st;
}

enum ej_status users_logout(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__LogoutRequest *in = (const Ej__Users__LogoutRequest *)req;
        size_t n = strlen(in->session_token);
        char token_hash[EJ_SHA256_HEX_LEN];
        struct ej_err perr;
        enum ej_status st;

        (void)resp;
        /* Signing out without a (plausible) session is already done. */
        if (n == 0 || n > USERS_TOKEN_MAX)
                return EJ_OK;
        ej_sha256_hex(in->session_token, n, token_hash);
        st = store_session_revoke(call->db, token_hash, err);
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

enum ej_status users_me(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                        struct ej_err *err)
{
        Ej__Users__MeResponse *out = (Ej__Users__MeResponse *)resp;
        enum ej_status st;

        (void)req;
        if (call->user_id[0] == '\0')
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "sign in first");
        if (!uuid_shape_ok(call->user_id))
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "the caller is not a user");
        st = store_user_get(call->db, call->arena, call->user_id, &out->user, err);
        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL,
                                  "the signed-in account no longer exists");
        return st;
}
