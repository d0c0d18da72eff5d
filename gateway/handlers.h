/*
 * handlers.h: the hooks of the route table (declared in routes.h, answered here) and the
 * binding of query parameters to request fields.
 *
 * Ownership: what is bound is allocated in the caller's arena. Thread safety: stateless.
 */
#ifndef EJ_GW_HANDLERS_H
#define EJ_GW_HANDLERS_H

#include <protobuf-c/protobuf-c.h>

#include "mem.h"
#include "status.h"

/* Binds the query parameter `key` to the field of that name in `msg`, or to the field of that
 * name in one of msg's singular sub-messages (created on demand: "limit" and "cursor" fill
 * `page`). EJ_ERR_INVALID naming the parameter when no field takes it. */
enum ej_status gw_bind_query(ProtobufCMessage *msg, const char *key, const char *value,
                             struct ej_arena *arena, struct ej_err *err);

#endif
