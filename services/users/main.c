/* ej-users: accounts and sessions. Wiring only: settings, the operation table, the runtime. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "ids.h"
#include "log.h"
#include "service.h"
#include "users.h"

/* Generated from services/users/schema/ by tools/embed-sql.sh. */
extern const struct ej_migration ej_users_migrations[];
extern const unsigned long ej_users_migrations_n;

static const struct ej_op users_ops[] = {
    {"register", &ej__users__register_request__descriptor,
     &ej__users__register_response__descriptor, users_register},
    {"login", &ej__users__login_request__descriptor, &ej__users__login_response__descriptor,
     users_login},
    {"logout", &ej__users__logout_request__descriptor, &ej__common__empty__descriptor,
     users_logout},
    {"authenticate", &ej__users__authenticate_request__descriptor,
     &ej__users__principal__descriptor, users_authenticate},
    {"me", &ej__users__me_request__descriptor, &ej__users__me_response__descriptor, users_me},
};

int main(void)
{
        struct ej_err err;
        struct users_ctx ctx;
        struct ej_service_def def;
        long ttl_hours = 0;
        long hash_slots = 0;
        enum ej_status st;

        ej_err_clear(&err);
        ej_log_init("users", ej_env_str("EJ_LOG_LEVEL", "info"));
        st = ej_ids_init(&err);
        /* EJ_SESSION_TTL_HOURS: session lifetime (14 days). EJ_HASH_CONCURRENCY: argon2id hashes
         * running at once (64 MiB each). */
        if (st == EJ_OK)
                st = ej_env_long("EJ_SESSION_TTL_HOURS", 14 * 24, 1, 24 * 366, &ttl_hours, &err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_HASH_CONCURRENCY", 2, 1, 64, &hash_slots, &err);
        if (st == EJ_OK)
                st =
                    users_ctx_init(&ctx, (long long)ttl_hours * 3600 * 1000, (int)hash_slots, &err);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-users: cannot start: %s\n", err.msg);
                return 1;
        }

        def.name = "users";
        def.ops = users_ops;
        def.n_ops = sizeof(users_ops) / sizeof(users_ops[0]);
        def.migrations = ej_users_migrations;
        def.n_migrations = ej_users_migrations_n;
        def.svc = &ctx;
        st = ej_service_run(&def, &err);
        users_ctx_free(&ctx);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-users: cannot start: %s\n", err.msg);
                return 1;
        }
        return 0;
}
