/*
 * service_main.c: the parts of the service runtime (service.h) around ej_service_run: the whole
 * main() of a service binary, the handler table check, the shared migrations, and the role
 * test handlers use. ej_service_run and the request path live in service.c.
 */
#include "service.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "events.h"
#include "idem.h"
#include "ids.h"
#include "log.h"
#include "mail.h"
#include "optable.h"
#include "rpc.h"

int ej_call_has_role(const struct ej_call *call, const char *role)
{
        const char *p = call->roles;
        size_t want = strlen(role);

        if (p == NULL || want == 0)
                return 0;
        while (*p) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                const char *q = p;

                /* Tolerate spaces around the names ("author, editor"). */
                while (n > 0 && *q == ' ') {
                        q++;
                        n--;
                }
                while (n > 0 && q[n - 1] == ' ')
                        n--;
                if (n == want && memcmp(q, role, n) == 0)
                        return 1;
                if (end == NULL)
                        break;
                p = end + 1;
        }
        return 0;
}

enum ej_status ej_service_check(const struct ej_service_def *def, struct ej_err *err)
{
        struct ej_optable_op *ops = NULL;
        size_t n = 0;
        enum ej_status st =
            ej_optable_build(def->api, def->handlers, def->n_handlers, &ops, &n, err);

        free(ops);
        return st;
}

enum ej_status ej_service_migrate(struct ej_db *db, const struct ej_migration *own, size_t n,
                                  struct ej_err *err)
{
        /* The shared tables first: the service's own migrations may refer to them. */
        const struct ej_migration *shared[] = {&ej_events_migration, &ej_mail_migration,
                                               &ej_idem_migration};
        size_t n_shared = sizeof(shared) / sizeof(shared[0]);
        struct ej_migration *all = xcalloc(n_shared + n, sizeof(*all));
        enum ej_status st;

        for (size_t i = 0; i < n_shared; i++)
                all[i] = *shared[i];
        for (size_t i = 0; i < n; i++)
                all[n_shared + i] = own[i];
        st = ej_db_migrate(db, all, n_shared + n, err);
        free(all);
        return st;
}

int ej_service_main(const struct ej_service_def *def, int argc, char **argv)
{
        char name[EJ_RPC_NAME_MAX];
        struct ej_err err;
        enum ej_status st;
        bool inited = false;
        int rc = 0;

        ej_err_clear(&err);
        st = ej_rpc_service_name(def->api, name, sizeof(name), &err);
        if (st != EJ_OK) {
                fprintf(stderr, "%s: cannot start: %s\n", argc > 0 ? argv[0] : "ej", err.msg);
                return 1;
        }
        ej_log_init(name, ej_env_str("EJ_LOG_LEVEL", "info"));
        /* A handler table that does not match the .proto is a build mistake: say so before
         * anything starts. */
        st = ej_service_check(def, &err);
        if (st == EJ_OK)
                st = ej_ids_init(&err);
        if (st == EJ_OK && argc <= 1) {
                /* Threads the service starts in init must not take the stop signals either:
                 * only ej_service_run's sigwait does. */
                sigset_t stop_set;

                sigemptyset(&stop_set);
                sigaddset(&stop_set, SIGTERM);
                sigaddset(&stop_set, SIGINT);
                pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
        }
        if (st == EJ_OK && def->init) {
                inited = true;
                st = def->init(def->svc, &err);
        }
        if (st == EJ_OK && argc > 1) {
                if (def->command) {
                        rc = def->command(def->svc, argc, argv);
                } else {
                        fprintf(stderr,
                                "ej-%s: takes no arguments (settings come from the "
                                "environment)\n",
                                name);
                        rc = 2;
                }
        } else if (st == EJ_OK) {
                st = ej_service_run(def, &err);
        }
        if (inited && def->fini)
                def->fini(def->svc);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-%s: cannot start: %s\n", name, err.msg);
                rc = 1;
        }
        return rc;
}
