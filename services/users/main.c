/* ej-users: accounts and sessions. Wiring only: the handler table, the service's start-up
 * hooks for the runtime (service.h), and the operator commands:
 *   ej-users                                   serve ej.users.* (EJ_DB_URL, EJ_NATS_URL, ...)
 *   ej-users create-user --email E --name N [--roles admin,editor] [--password-stdin] [--update]
 *   ej-users seed-bench --count N
 * The commands connect to EJ_DB_URL directly and apply the migrations first. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mail.h"
#include "service.h"
#include "users.h"

/* Generated from services/users/schema/ by tools/embed-sql.sh. */
extern const struct ej_migration ej_users_migrations[];
extern const unsigned long ej_users_migrations_n;

/* The handlers of `service Users` (proto/users.proto), one per method. EJ_OP_SLOW marks an
 * operation that hashes or verifies a password (argon2id, tens of milliseconds of CPU and
 * 64 MiB): the runtime runs it on its slow pool (service.h), so a burst of logins never holds
 * up the requests behind it, and at most EJ_SLOW_WORKERS hashes run at once. */
static const struct ej_handler users_handlers[] = {
    {"register_account", users_register_account, EJ_OP_SLOW},
    {"verify_email", users_verify_email, 0},
    {"resend_verification", users_resend_verification, 0},
    {"login", users_login, EJ_OP_SLOW},
    {"logout", users_logout, 0},
    {"authenticate", users_authenticate, 0},
    {"me", users_me, 0},
    {"update_profile", users_update_profile, 0},
    {"change_password", users_change_password, EJ_OP_SLOW},
    {"request_password_reset", users_request_password_reset, 0},
    {"reset_password", users_reset_password, EJ_OP_SLOW},
    {"change_email", users_change_email, EJ_OP_SLOW},
    {"confirm_email_change", users_confirm_email_change, 0},
    {"accept_invitation", users_accept_invitation, EJ_OP_SLOW},
    {"invite_user", users_invite_user, 0},
    {"list_my_invitations", users_list_my_invitations, 0},
    {"accept_role_invitation", users_accept_role_invitation, 0},
    {"decline_role_invitation", users_decline_role_invitation, 0},
    {"get_consent", users_get_consent, 0},
    {"accept_consent", users_accept_consent, 0},
    {"withdraw_consent", users_withdraw_consent, 0},
    {"get_privacy", users_get_privacy, 0},
    {"export_my_data", users_export_my_data, 0},
    {"request_erasure", users_request_erasure, EJ_OP_SLOW},
    {"confirm_erasure", users_confirm_erasure, 0},
    {"list_users", users_list_users, 0},
    {"get_user", users_get_user, 0},
    {"create_user", users_create_user, 0},
    {"update_user", users_update_user, 0},
    {"grant_role", users_grant_role, 0},
    {"revoke_role", users_revoke_role, 0},
    {"deactivate_user", users_deactivate_user, 0},
    {"reactivate_user", users_reactivate_user, 0},
    {"erase_user", users_erase_user, 0},
    {"list_activity", users_list_activity, 0},
    {"publish_consent", users_publish_consent, 0},
    {"consent_stats", users_consent_stats, 0},
    {"set_privacy", users_set_privacy, 0},
    {"list_mail_templates", users_list_mail_templates, 0},
    {"update_mail_template", users_update_mail_template, 0},
};

static void usage(void)
{
        fprintf(stderr,
                "usage: ej-users                      (serve; settings from the environment)\n"
                "       ej-users create-user --email E --name N [--roles author,editor,...]\n"
                "                            [--password-stdin] [--update]\n"
                "       ej-users seed-bench --count N\n");
}

/* The default mail templates, once the schema is there. */
static enum ej_status seed(void *svc, struct ej_db *db, struct ej_err *err)
{
        (void)svc;
        return ej_mail_seed_defaults(db, err);
}

/* For the commands: connects to EJ_DB_URL, applies the migrations and seeds as the service
 * would. */
static enum ej_status open_db(struct ej_db **db, struct ej_err *err)
{
        const char *url = ej_env_str("EJ_DB_URL", NULL);
        enum ej_status st;

        if (url == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, "EJ_DB_URL",
                                  "EJ_DB_URL is not set (a libpq connection string)");
        st = ej_db_connect(db, url, "users", 10000, err);
        if (st == EJ_OK)
                st = ej_service_migrate(*db, ej_users_migrations, ej_users_migrations_n, err);
        if (st == EJ_OK)
                st = seed(NULL, *db, err);
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

static int command(void *svc, int argc, char **argv)
{
        if (strcmp(argv[1], "create-user") == 0)
                return cmd_create_user(svc, argc, argv);
        if (strcmp(argv[1], "seed-bench") == 0)
                return cmd_seed_bench(svc, argc, argv);
        usage();
        return 2;
}

static enum ej_status init(void *svc, struct ej_err *err)
{
        return users_ctx_init(svc, err);
}

static void fini(void *svc)
{
        users_ctx_free(svc);
}

int main(int argc, char **argv)
{
        struct users_ctx ctx;
        const struct ej_service_def def = {
            .api = &ej__users__users__descriptor,
            .handlers = users_handlers,
            .n_handlers = sizeof(users_handlers) / sizeof(users_handlers[0]),
            .migrations = ej_users_migrations,
            .n_migrations = ej_users_migrations_n,
            .svc = &ctx,
            .init = init,
            .fini = fini,
            .migrated = seed,
            .command = command,
        };

        memset(&ctx, 0, sizeof(ctx));
        return ej_service_main(&def, argc, argv);
}
