#include "optable.h"

#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "mem.h"
#include "rpc.h"

/* The runtime's answer to ej.<svc>.gdpr_export for a service that holds no personal data. */
static enum ej_status gdpr_export_empty(struct ej_call *call, const ProtobufCMessage *req,
                                        ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Common__GdprExportPart *out = (Ej__Common__GdprExportPart *)resp;

        (void)req;
        (void)err;
        out->service = ej_arena_strdup(call->arena, call->service);
        out->json = ej_arena_strdup(call->arena, "{}");
        return EJ_OK;
}

/* The runtime's answer to ej.<svc>.gdpr_erase: nothing held, nothing to erase. */
static enum ej_status gdpr_erase_nothing(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        (void)call;
        (void)req;
        (void)resp;
        (void)err;
        return EJ_OK;
}

static const struct ej_handler gdpr_defaults[] = {
    {"gdpr_export", gdpr_export_empty, 0},
    {"gdpr_erase", gdpr_erase_nothing, 0},
};

static struct ej_optable_op *find(struct ej_optable_op *ops, size_t n, const char *method)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(ops[i].method, method) == 0)
                        return &ops[i];
        return NULL;
}

static ej_op_fn gdpr_default(const char *method)
{
        for (size_t i = 0; i < sizeof(gdpr_defaults) / sizeof(gdpr_defaults[0]); i++)
                if (strcmp(gdpr_defaults[i].method, method) == 0)
                        return gdpr_defaults[i].fn;
        return NULL;
}

enum ej_status ej_optable_build(const ProtobufCServiceDescriptor *api,
                                const struct ej_handler *handlers, size_t n_handlers,
                                struct ej_optable_op **ops, size_t *n, struct ej_err *err)
{
        const ProtobufCServiceDescriptor *gdpr = &ej__common__gdpr__descriptor;
        struct ej_optable_op *t = NULL;
        bool *bound = NULL;
        size_t n_api, total;
        char name[EJ_RPC_NAME_MAX];
        enum ej_status st;

        *ops = NULL;
        *n = 0;
        st = ej_rpc_service_name(api, name, sizeof(name), err);
        if (st != EJ_OK)
                return st;
        n_api = api->n_methods;
        total = n_api + gdpr->n_methods;
        t = xcalloc(total, sizeof(*t));
        bound = xcalloc(total, sizeof(*bound));
        for (size_t i = 0; i < n_api; i++) {
                const ProtobufCMethodDescriptor *m = &api->methods[i];

                if (ej_rpc_method(gdpr, m->name) != NULL) {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                        "service %s declares %s, which every service answers "
                                        "through service Gdpr (common.proto): give it a handler "
                                        "instead",
                                        api->name, m->name);
                        goto out;
                }
                t[i] = (struct ej_optable_op){m->name, m->input, m->output, NULL, false, false};
        }
        for (size_t i = 0; i < gdpr->n_methods; i++) {
                const ProtobufCMethodDescriptor *m = &gdpr->methods[i];

                t[n_api + i] = (struct ej_optable_op){
                    m->name, m->input, m->output, gdpr_default(m->name), false, true};
        }
        for (size_t i = 0; i < n_handlers; i++) {
                const struct ej_handler *h = &handlers[i];
                struct ej_optable_op *op = h->method ? find(t, total, h->method) : NULL;

                if (op == NULL || h->fn == NULL) {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                        op ? "the handler of %s.%s is NULL"
                                           : "a handler names %s.%s, which is no method of the "
                                             "service block or of service Gdpr",
                                        name, h->method ? h->method : "(null)");
                        goto out;
                }
                if (bound[op - t]) {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                        "two handlers name the method %s.%s", name, h->method);
                        goto out;
                }
                bound[op - t] = true;
                op->fn = h->fn;
                op->slow = (h->flags & EJ_OP_SLOW) != 0;
        }
        for (size_t i = 0; i < total; i++) {
                if (t[i].fn == NULL) {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                        "the method %s.%s of service %s has no handler", name,
                                        t[i].method, i < n_api ? api->name : gdpr->name);
                        goto out;
                }
        }
        *ops = t;
        *n = total;
        t = NULL;
out:
        free(t);
        free(bound);
        return st;
}
