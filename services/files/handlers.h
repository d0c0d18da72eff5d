/*
 * handlers.h: one function per operation of proto/files.proto (handlers.c), each an ej_op_fn
 * run by the service runtime (service.h) on a worker thread with the worker's own connection,
 * plus the consumer of the durable event user.erased. No SQL and no NATS in handlers.c: it
 * calls down into upload.h, content.h, blind.h, store.h and storage.h.
 *
 * struct files_ctx is the service's context, handed to every handler as call->svc. main.c owns
 * it and its parts; they are set before the first request and only read afterwards (each part
 * is thread-safe on its own).
 */
#ifndef EJ_FILES_HANDLERS_H
#define EJ_FILES_HANDLERS_H

#include "common.pb-c.h"

#include "files.h"
#include "service.h"

struct files_magic;
struct files_sweeper;
struct files_uploads;
struct storage;

struct files_ctx {
        struct files_config cfg;
        struct storage *storage;
        struct files_magic *magic;
        struct files_uploads *uploads; /* made by the runtime's start hook (main.c) */
        struct files_sweeper *sweeper; /* main.c's alone: started and stopped with the uploads */
};

enum ej_status files_begin(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_open(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
enum ej_status files_read(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
enum ej_status files_attach(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_blind(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_info(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
enum ej_status files_gdpr_export(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err);

/* Consumer of the durable event user.erased (ej.evt.users.erased, payload ej.users.UserErased;
 * an ej_event_fn run by the service runtime): forgets the person's unattached uploads. Attached
 * files stay with the scholarly record; their owner_id is the erased account's id, which no
 * longer names anybody. Redelivery is harmless. */
enum ej_status files_on_user_erased(struct ej_db *db, const Ej__Common__Event *ev,
                                    const char *subject, void *ud, struct ej_err *err);

#endif
