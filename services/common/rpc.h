/*
 * rpc.h: how an operation is named on the bus. The operations of a service are the methods of
 * the `service` block in its .proto (proto/<svc>.proto); protoc-c turns the block into a
 * ProtobufCServiceDescriptor holding each method's name and its request and response message
 * types. A method `m` of `service Users` is served on the subject "ej.users.m": the service's
 * part is the block's name lower-cased, and it is also the service's schema, queue group and
 * log name. The runtime (service.h) and the gateway's route table (gateway/routes.h) both derive
 * subjects and message types from the descriptor through these functions, so each is written
 * once, in the .proto.
 *
 * Everything here is pure: no allocation, no state; every function is reentrant. Descriptors
 * are the generated constants and are borrowed.
 */
#ifndef EJ_RPC_H
#define EJ_RPC_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "status.h"

/* The method every service answers at once with an empty ok, without counting it or touching
 * its database: "ej.<svc>._ping" tells a caller (the gateway's readiness) that some replica of
 * the service is subscribed and serving. No .proto method can be called so. */
#define EJ_RPC_PING "_ping"

/* Room for a service name and for a whole subject, with its NUL. */
#define EJ_RPC_NAME_MAX    32
#define EJ_RPC_SUBJECT_MAX 128

/* Writes the service's name as subjects spell it ("Users" -> "users") into out
 * (NUL-terminated). Fails with EJ_ERR_INVALID (err filled) when `svc` is NULL, the lower-cased
 * name is not made of a-z, 0-9 and '_', or it does not fit in `size`. */
enum ej_status ej_rpc_service_name(const ProtobufCServiceDescriptor *svc, char *out, size_t size,
                                   struct ej_err *err);

/* The method called `name` in `svc`, or NULL when there is none (or either is NULL). The
 * descriptor is borrowed from the generated code and lives as long as the program. */
const ProtobufCMethodDescriptor *ej_rpc_method(const ProtobufCServiceDescriptor *svc,
                                               const char *name);

/* Writes "ej.<service>.<method>" into out (NUL-terminated); EJ_ERR_INVALID when it does not
 * fit in `size`. */
enum ej_status ej_rpc_subject(const char *service, const char *method, char *out, size_t size,
                              struct ej_err *err);

#endif
