/* ej-users: accounts and sessions. Wiring only: settings, the operation table, the runtime, and
 * the operator commands:
 *   ej-users                                   serve ej.users.* (EJ_DB_URL, EJ_NATS_URL, ...)
 *   ej-users create-user --email E --name N [--roles admin,editor] [--password-stdin] [--update]
 *   ej-users seed-bench --count N
 * The commands connect to EJ_DB_URL directly and apply the migrations first. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ids.h"
#include "log.h"
#include "mail.h"
#include "service.h"
#include "users.h"

/* Generated from services/users/schema/ by tools/embed-sql.sh. */
extern const struct ej_migration ej_users_migrations[];
extern const unsigned long ej_users_migrations_n;

/* SLOW_OP: an operation that hashes or verifies a password (argon2id, tens of milliseconds of
 * CPU and 64 MiB): the runtime runs it on its slow pool (service.h), so a burst of logins
 * never holds up the requests behind it, and at most EJ_SLOW_WORKERS hashes run at once. */
#define OP(verb, req, resp)                                                                        \
        {                                                                                          \
#verb, &ej__users__##req##__descriptor, &resp##__descriptor, users_##verb, false   \
        }
#define SLOW_OP(verb, req, resp)                                                                   \
        {                                                                                          \
#verb, &ej__users__##req##__descriptor, &resp##__descriptor, users_##verb, true    \
        }
static const struct ej_op users_ops[] = {
    /* Subject ej.users.register until the proto names the operation register_account. */
    {"register", &ej__users__register_request__descriptor,
     &ej__users__register_response__descriptor, users_register_account, true},
    OP(verify_email, token_request, ej__users__user_response),
    OP(resend_verification, resend_verification_request, ej__common__empty),
    SLOW_OP(login, login_request, ej__users__login_response),
    OP(logout, logout_request, ej__common__empty),
    OP(authenticate, authenticate_request, ej__users__principal),
    OP(me, me_request, ej__users__me_response),
    OP(update_profile, update_profile_request, ej__users__me_response),
    SLOW_OP(change_password, change_password_request, ej__common__empty),
    OP(request_password_reset, password_reset_request, ej__common__empty),
    SLOW_OP(reset_password, reset_password_request, ej__common__empty),
    SLOW_OP(change_email, change_email_request, ej__common__empty),
    OP(confirm_email_change, token_request, ej__users__user_response),
    SLOW_OP(accept_invitation, accept_invitation_request, ej__users__user_response),
    OP(invite_user, invite_user_request, ej__users__invite_user_response),
    OP(get_consent, get_consent_request, ej__users__consent_version),
    OP(accept_consent, accept_consent_request, ej__common__empty),
    OP(withdraw_consent, withdraw_consent_request, ej__common__empty),
    OP(get_privacy, get_privacy_request, ej__users__privacy_policy),
    OP(export_my_data, export_my_data_request, ej__users__export_my_data_response),
    SLOW_OP(request_erasure, request_erasure_request, ej__common__empty),
    OP(confirm_erasure, token_request, ej__common__empty),
    OP(list_users, list_users_request, ej__users__list_users_response),
    OP(get_user, user_id_request, ej__users__user_response),
    OP(create_user, create_user_request, ej__users__user_response),
    OP(update_user, update_user_request, ej__users__user_response),
    OP(grant_role, role_request, ej__users__user_response),
    OP(revoke_role, role_request, ej__users__user_response),
    OP(deactivate_user, user_id_request, ej__users__user_response),
    OP(reactivate_user, user_id_request, ej__users__user_response),
    OP(erase_user, user_id_request, ej__common__empty),
    OP(list_activity, list_activity_request, ej__users__list_activity_response),
    OP(publish_consent, publish_consent_request, ej__users__consent_version),
    OP(consent_stats, consent_stats_request, ej__users__consent_stats),
    OP(set_privacy, set_privacy_request, ej__users__privacy_policy),
    OP(list_mail_templates, list_mail_templates_request, ej__users__list_mail_templates_response),
    OP(update_mail_template, update_mail_template_request, ej__users__mail_template),
};
#undef OP
#undef SLOW_OP

static void usage(void)
{
        fprintf(stderr,
                "usage: ej-users                      (serve; settings from the environment)\n"
                "       ej-users create-user --email E --name N [--roles author,editor,...]\n"
                "                            [--password-stdin] [--update]\n"
                "       ej-users seed-bench --count N\n");
}

/* Connects to EJ_DB_URL, applies the migrations and installs the default mail templates. */
static enum ej_status open_db(struct ej_db **db, struct ej_err *err)
{
        const char *url = ej_env_str("EJ_DB_URL", NULL);
        enum ej_status st;

        if (url == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, "EJ_DB_URL",
                                  "EJ_DB_URL is not set (a libpq connection string)");
        st = ej_db_connect(db, url, "users", 10000, err);
        if (st == EJ_OK)
                st = ej_db_migrate(*db, ej_users_migrations, ej_users_migrations_n, err);
        if (st == EJ_OK)
                st = ej_mail_seed_defaults(*db, err);
        return st;
}

/* Reads one line (the password) from stdin, without its line break. */
static char *read_password(void)
{
        static char buf[USERS_PASSWORD_MAX + 4];
        size_t n;

        if (fgets(buf, sizeof(buf), stdin) == NULL)
                return NULL;
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        return buf;
}

static int cmd_create_user(struct users_ctx *ctx, int argc, char **argv)
{
        const char *email = NULL, *name = NULL, *roles = "author";
        char *password = NULL;
        bool from_stdin = false, update = false;
        char id[37];
        struct ej_db *db = NULL;
        struct ej_err err;
        enum ej_status st;

        ej_err_clear(&err);
        for (int i = 2; i < argc; i++) {
                bool has_val = i + 1 < argc;

                if (strcmp(argv[i], "--email") == 0 && has_val)
                        email = argv[++i];
                else if (strcmp(argv[i], "--name") == 0 && has_val)
                        name = argv[++i];
                else if (strcmp(argv[i], "--roles") == 0 && has_val)
                        roles = argv[++i];
                else if (strcmp(argv[i], "--password-stdin") == 0)
                        from_stdin = true;
                else if (strcmp(argv[i], "--update") == 0)
                        update = true;
                else {
                        fprintf(stderr, "ej-users create-user: unknown argument %s\n", argv[i]);
                        usage();
                        return 2;
                }
        }
        if (email == NULL || name == NULL) {
                fprintf(stderr, "ej-users create-user: --email and --name are required\n");
                usage();
                return 2;
        }
        if (from_stdin) {
                password = read_password();
                if (password == NULL) {
                        fprintf(stderr, "ej-users create-user: no password on standard input\n");
                        return 2;
                }
        }
        st = open_db(&db, &err);
        if (st == EJ_OK)
                st = users_cli_create_user(ctx, db, email, name, roles, password, update, id, &err);
        if (password)
                sodium_memzero(password, strlen(password));
        ej_db_destroy(db);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-users create-user: %s%s%s\n", err.field[0] ? err.field : "",
                        err.field[0] ? ": " : "", err.msg);
                return 1;
        }
        printf("%s\n", id);
        return 0;
}

static int cmd_seed_bench(struct users_ctx *ctx, int argc, char **argv)
{
        long count = 0;
        char *end = NULL;
        struct ej_db *db = NULL;
        struct ej_err err;
        enum ej_status st;

        ej_err_clear(&err);
        if (argc == 4 && strcmp(argv[2], "--count") == 0)
                count = strtol(argv[3], &end, 10);
        if (count < 1 || count > 10000000 || end == NULL || *end != '\0') {
                fprintf(stderr, "ej-users seed-bench: --count N (1 to 10000000) is required\n");
                return 2;
        }
        st = open_db(&db, &err);
        if (st == EJ_OK)
                st = users_cli_seed_bench(ctx, db, count, &err);
        ej_db_destroy(db);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-users seed-bench: %s\n", err.msg);
                return 1;
        }
        printf("%ld bench users present (password \"bench-password\")\n", count);
        return 0;
}

int main(int argc, char **argv)
{
        struct ej_err err;
        struct users_ctx ctx;
        struct ej_service_def def;
        struct ej_db *db = NULL;
        enum ej_status st;
        int rc;

        ej_err_clear(&err);
        ej_log_init("users", ej_env_str("EJ_LOG_LEVEL", "info"));
        st = ej_ids_init(&err);
        if (st == EJ_OK)
                st = users_ctx_init(&ctx, &err);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-users: cannot start: %s\n", err.msg);
                return 1;
        }
        if (argc > 1) {
                if (strcmp(argv[1], "create-user") == 0)
                        rc = cmd_create_user(&ctx, argc, argv);
                else if (strcmp(argv[1], "seed-bench") == 0)
                        rc = cmd_seed_bench(&ctx, argc, argv);
                else {
                        usage();
                        rc = 2;
                }
                users_ctx_free(&ctx);
                return rc;
        }

        /* The schema and the default mail templates before the workers take requests. */
        st = open_db(&db, &err);
        ej_db_destroy(db);
        if (st != EJ_OK) {
                users_ctx_free(&ctx);
                fprintf(stderr, "ej-users: cannot start: %s\n", err.msg);
                return 1;
        }
        /* EJ_HASH_CONCURRENCY, the older name of the hashing cap, still sizes the slow pool
         * when EJ_SLOW_WORKERS is not set. */
        if (getenv("EJ_SLOW_WORKERS") == NULL && getenv("EJ_HASH_CONCURRENCY") != NULL)
                setenv("EJ_SLOW_WORKERS", getenv("EJ_HASH_CONCURRENCY"), 1);
        memset(&def, 0, sizeof(def));
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
