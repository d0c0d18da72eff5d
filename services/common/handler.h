/*
 * handler.h: the contract between a service's handlers and the runtime that calls them.
 *
 * A handler serves one method of the service's proto `service` block: the runtime (service.h)
 * unpacks the request into the call's arena, hands it over with a zeroed response, and replies
 * with what the handler filled in, or with the status it returned. A service lists its handlers
 * in a table of struct ej_handler rows; the runtime checks that table against the block
 * (optable.h). Nothing here owns memory: a call and everything it points to belong to the
 * runtime and live until the handler returns.
 */
#ifndef EJ_HANDLER_H
#define EJ_HANDLER_H

#include <protobuf-c/protobuf-c.h>

#include "status.h"

struct ej_arena;
struct ej_bus;
struct ej_db;

/* One request in a handler's hands. Everything lives until the handler returns. */
struct ej_call {
        struct ej_arena *arena;  /* for anything the handler allocates */
        struct ej_db *db;        /* the worker's own connection */
        struct ej_bus *bus;      /* shared; for ej_bus_request to other services */
        const char *request_id;  /* never NULL */
        const char *user_id;     /* the signed-in caller, "" when anonymous */
        const char *roles;       /* comma-separated roles of the caller, "" when anonymous */
        void *svc;               /* the service's own context (ej_service_def.svc) */
        const char *service;     /* the service's name ("users"), as in its subjects */
        const char *client_addr; /* Ej-Client-Addr from the gateway, "" when absent */
        int retry_after_s;       /* set by a handler returning EJ_ERR_TOO_MANY: sent back as
                                    the Ej-Retry-After header when > 0 */
};

/* Fills `resp` (already initialised to its defaults, allocated in call->arena) from `req`.
 * Returns EJ_OK or a status with `err` filled (the reply then carries no body). */
typedef enum ej_status (*ej_op_fn)(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err);

/* Flags of a handler (struct ej_handler.flags). */
enum ej_op_flag {
        EJ_OP_SLOW = 1 << 0, /* run on the slow pool, never on a worker thread (service.h) */
};

/* One row of a service's handler table: which method of its service block `fn` serves. The
 * request and response types and the subject come from the block (rpc.h). */
struct ej_handler {
        const char *method; /* as in the .proto: "login" serves ej.<service>.login */
        ej_op_fn fn;
        unsigned flags; /* enum ej_op_flag bits, 0 for none */
};

#endif
