/*
 * The op table of the service runtime (optable.h): built from a service's proto block plus its
 * handler table, with the runtime's gdpr_* defaults; a method without a handler, a handler
 * without a method and two handlers for one method each stop the service before it starts.
 * Uses the real users and files blocks and handler-shaped stand-ins; no NATS, no database.
 */
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "files.pb-c.h"
#include "users.pb-c.h"

#include "check.h"
#include "optable.h"
#include "rpc.h"
#include "service.h"

static enum ej_status stub(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err)
{
        (void)call;
        (void)req;
        (void)resp;
        (void)err;
        return EJ_OK;
}

static enum ej_status other_stub(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        return stub(call, req, resp, err);
}

static const struct ej_handler files_handlers[] = {
    {"upload_begin", stub, 0}, {"download_open", stub, 0}, {"read", stub, 0},
    {"attach", stub, 0},       {"blind_copy", stub, 0},    {"info", stub, EJ_OP_SLOW},
};

static const struct ej_optable_op *find(const struct ej_optable_op *ops, size_t n,
                                        const char *method)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(ops[i].method, method) == 0)
                        return &ops[i];
        return NULL;
}

static void test_names(void)
{
        char name[EJ_RPC_NAME_MAX], subject[EJ_RPC_SUBJECT_MAX];
        char tiny[4];

        CHECK(ej_rpc_service_name(&ej__users__users__descriptor, name, sizeof(name), NULL) ==
              EJ_OK);
        CHECK(strcmp(name, "users") == 0);
        CHECK(ej_rpc_service_name(&ej__common__gdpr__descriptor, name, sizeof(name), NULL) ==
              EJ_OK);
        CHECK(strcmp(name, "gdpr") == 0);
        CHECK(ej_rpc_service_name(&ej__files__files__descriptor, tiny, sizeof(tiny), NULL) ==
              EJ_ERR_INVALID);
        CHECK(ej_rpc_service_name(NULL, name, sizeof(name), NULL) == EJ_ERR_INVALID);
        CHECK(ej_rpc_subject("files", "upload_begin", subject, sizeof(subject), NULL) == EJ_OK);
        CHECK(strcmp(subject, "ej.files.upload_begin") == 0);
        CHECK(ej_rpc_subject("files", "upload_begin", tiny, sizeof(tiny), NULL) == EJ_ERR_INVALID);
        CHECK(ej_rpc_method(&ej__users__users__descriptor, "register_account") != NULL);
        CHECK(ej_rpc_method(&ej__users__users__descriptor, "register") == NULL);
        CHECK(ej_rpc_method(NULL, "me") == NULL);
}

/* A complete table: the block's methods in .proto order, then gdpr_* with the defaults, the
 * types from the descriptor, the flags from the handler table. */
static void test_build(void)
{
        struct ej_service_def def = {
            .api = &ej__files__files__descriptor, .handlers = files_handlers, .n_handlers = 6};
        struct ej_optable_op *ops = NULL;
        const struct ej_optable_op *op;
        size_t n = 0;
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(ej_optable_build(def.api, def.handlers, def.n_handlers, &ops, &n, &err) == EJ_OK);
        CHECK(n == ej__files__files__descriptor.n_methods + ej__common__gdpr__descriptor.n_methods);
        CHECK(ops && strcmp(ops[0].method, "upload_begin") == 0);
        op = find(ops, n, "download_open");
        CHECK(op && op->req == &ej__files__download_open__descriptor &&
              op->resp == &ej__files__file_meta__descriptor && op->fn == stub && !op->slow &&
              !op->service_only);
        op = find(ops, n, "info");
        CHECK(op && op->slow);
        op = find(ops, n, "gdpr_export");
        CHECK(op && op->fn != NULL && op->fn != stub && op->service_only &&
              op->req == &ej__common__gdpr_export_request__descriptor &&
              op->resp == &ej__common__gdpr_export_part__descriptor);
        op = find(ops, n, "gdpr_erase");
        CHECK(op && op->fn != NULL && op->service_only &&
              op->req == &ej__common__gdpr_erase_request__descriptor);
        free(ops);
}

/* The runtime's defaults answer empty; a handler of the same name replaces one. */
static void test_gdpr(void)
{
        struct ej_handler with_export[7];
        struct ej_service_def def = {
            .api = &ej__files__files__descriptor, .handlers = files_handlers, .n_handlers = 6};
        struct ej_optable_op *ops = NULL;
        const struct ej_optable_op *op;
        struct ej_arena *a = ej_arena_create(0);
        struct ej_call call = {.arena = a, .service = "files", .user_id = "", .roles = ""};
        Ej__Common__GdprExportRequest in = EJ__COMMON__GDPR_EXPORT_REQUEST__INIT;
        Ej__Common__GdprExportPart part = EJ__COMMON__GDPR_EXPORT_PART__INIT;
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        size_t n = 0;

        CHECK(ej_optable_build(def.api, def.handlers, def.n_handlers, &ops, &n, NULL) == EJ_OK);
        op = find(ops, n, "gdpr_export");
        CHECK(op && op->fn(&call, &in.base, &part.base, NULL) == EJ_OK);
        CHECK(part.service && strcmp(part.service, "files") == 0);
        CHECK(part.json && strcmp(part.json, "{}") == 0);
        op = find(ops, n, "gdpr_erase");
        CHECK(op && op->fn(&call, &in.base, &empty.base, NULL) == EJ_OK);
        free(ops);

        memcpy(with_export, files_handlers, sizeof(files_handlers));
        with_export[6] = (struct ej_handler){"gdpr_export", other_stub, 0};
        def.handlers = with_export;
        def.n_handlers = 7;
        CHECK(ej_optable_build(def.api, def.handlers, def.n_handlers, &ops, &n, NULL) == EJ_OK);
        op = find(ops, n, "gdpr_export");
        CHECK(op && op->fn == other_stub && op->service_only);
        free(ops);
        ej_arena_destroy(a);
}

/* Each mistake stops the service with one line naming it. */
static void test_refusals(void)
{
        struct ej_handler h[8];
        struct ej_service_def def = {.api = &ej__files__files__descriptor, .handlers = h};
        struct ej_optable_op *ops = NULL;
        size_t n = 0;
        struct ej_err err;

        /* A method without a handler. */
        memcpy(h, files_handlers, sizeof(files_handlers));
        def.n_handlers = 5; /* info left out */
        ej_err_clear(&err);
        CHECK(ej_service_check(&def, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "files.info") && strstr(err.msg, "has no handler"));
        CHECK(ej_optable_build(def.api, def.handlers, def.n_handlers, &ops, &n, &err) ==
                  EJ_ERR_INVALID &&
              ops == NULL && n == 0);

        /* A handler naming no method (the old dotted name, say). */
        def.n_handlers = 6;
        h[5] = (struct ej_handler){"upload.begin", stub, 0};
        CHECK(ej_service_check(&def, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "files.upload.begin") && strstr(err.msg, "no method"));

        /* Two handlers for one method. */
        memcpy(h, files_handlers, sizeof(files_handlers));
        h[6] = (struct ej_handler){"read", other_stub, 0};
        def.n_handlers = 7;
        CHECK(ej_service_check(&def, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "two handlers") && strstr(err.msg, "files.read"));

        /* A handler with no function. */
        h[6] = (struct ej_handler){"gdpr_erase", NULL, 0};
        CHECK(ej_service_check(&def, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "files.gdpr_erase") != NULL);

        /* No service block at all. */
        def.api = NULL;
        def.n_handlers = 6;
        CHECK(ej_service_check(&def, &err) == EJ_ERR_INVALID);

        /* The complete table passes. */
        def.api = &ej__files__files__descriptor;
        memcpy(h, files_handlers, sizeof(files_handlers));
        CHECK(ej_service_check(&def, &err) == EJ_OK);
}

int main(void)
{
        test_names();
        test_build();
        test_gdpr();
        test_refusals();
        return check_report();
}
