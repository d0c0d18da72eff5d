/* config.c: the users service's settings, read from the environment once at start-up (the only
 * place the service reads it, besides main.c), and the dummy password hash logins compare
 * against. See struct users_ctx in users.h for each setting and its default. */
#include "users.h"

#include <string.h>

#include "config.h"
#include "ids.h"

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
                st = ej_env_long("EJ_MAIL_WINDOW_S", 3600, 1, 86400, &ctx->mail_window_s, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_MAIL_MAX_PER_RECIPIENT", 3, 1, 1000000,
                                 &ctx->mail_max_recipient, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_MAIL_MAX_PER_ADDR", 20, 1, 1000000, &ctx->mail_max_addr, err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_MAIL_MAX_PER_ACCOUNT", 5, 1, 1000000, &ctx->mail_max_account,
                                 err);
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
