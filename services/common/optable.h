/*
 * optable.h: the op table of a service, built by the runtime (service.c) from the service's
 * proto `service` block and its handler table (handler.h), plus the runtime's own operations
 * (`service Gdpr`, proto/common.proto) with their empty default handlers.
 *
 * The table is a plain array owned by the caller; its strings and descriptors are borrowed from
 * the generated protobuf code and the handler table, which live as long as the program.
 * Building is pure apart from the allocation; it is reentrant.
 */
#ifndef EJ_OPTABLE_H
#define EJ_OPTABLE_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "handler.h"
#include "status.h"

/* One operation as the workers dispatch it: a request on ej.<service>.<method>. */
struct ej_optable_op {
        const char *method;
        const ProtobufCMessageDescriptor *req;
        const ProtobufCMessageDescriptor *resp;
        ej_op_fn fn;
        bool slow;         /* EJ_OP_SLOW: the slow pool runs it */
        bool service_only; /* refused when the request carries Ej-User-Id (gdpr_*) */
};

/* Builds the table of the service block `api` served by the `n_handlers` rows of `handlers`:
 * the methods of `api` in their .proto order, then those of `service Gdpr`. On EJ_OK *ops
 * (free() it) holds *n rows. Fails with EJ_ERR_INVALID, naming the culprit in `err`, when a
 * method of `api` has no handler, a handler names no method, two handlers name the same method,
 * or `api` declares a gdpr_* method itself. */
enum ej_status ej_optable_build(const ProtobufCServiceDescriptor *api,
                                const struct ej_handler *handlers, size_t n_handlers,
                                struct ej_optable_op **ops, size_t *n, struct ej_err *err);

#endif
