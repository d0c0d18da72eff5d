/*
 * status.h: the one status enum of EasyJournal and the error detail that travels with it.
 *
 * Every fallible function returns an enum ej_status (EJ_OK = 0) and, when the caller passes a
 * struct ej_err, fills in a sentence and optionally the request field at fault. The caller owns
 * the struct ej_err (usually on its stack); it holds no pointers. Only the gateway maps a status
 * to an HTTP code. Thread safety: all functions are reentrant.
 */
#ifndef EJ_STATUS_H
#define EJ_STATUS_H

#include <stdbool.h>
#include <stddef.h>

enum ej_status {
        EJ_OK = 0,
        EJ_ERR_INVALID,         /* the request is malformed or a field is unacceptable */
        EJ_ERR_NOT_FOUND,       /* no such resource */
        EJ_ERR_CONFLICT,        /* it already exists, or the state forbids it */
        EJ_ERR_UNAUTHENTICATED, /* no valid session */
        EJ_ERR_FORBIDDEN,       /* authenticated, not allowed */
        EJ_ERR_TOO_LARGE,       /* a body or field is over its limit */
        EJ_ERR_UNAVAILABLE,     /* a dependency (database, bus, service) is not answering */
        EJ_ERR_TIMEOUT,         /* a dependency did not answer in time */
        EJ_ERR_INTERNAL,        /* a bug or an unexpected failure */
        EJ_ERR_TOO_MANY,        /* rate limited */
        EJ_ERR_UNSUPPORTED,     /* a media type or operation we do not take */
        EJ_ERR_OUTCOME_UNKNOWN, /* sent, but no answer came (deadline passed, bus lost after the
                                   send): it may or may not have happened */
        EJ_STATUS_COUNT
};

/* `log_only` marks a message that quotes a dependency (the database's text, a SQLSTATE, a
 * constraint name in `field`): it is detail for the service's log, never for the client. The
 * reply path (bus.c) sends ej_status_public_message instead and no field. ej_err_set clears the
 * mark, so a layer that writes its own sentence over such an error makes it presentable again. */
struct ej_err {
        enum ej_status status;
        char field[64]; /* request field at fault, "" when none */
        char msg[256];  /* one sentence for a person (unless log_only) */
        bool log_only;  /* msg and field are detail for the log only */
};

/* Returns the stable machine name of a status ("invalid_argument", "not_found", ...). */
const char *ej_status_name(enum ej_status st);

/* Returns the status whose name is `name`, or EJ_ERR_INTERNAL when the name is unknown. */
enum ej_status ej_status_from_name(const char *name);

/* Fills `err` (may be NULL) and returns `st`, so a caller can write `return ej_err_set(...)`.
 * `field` may be NULL. The message is printf-formatted and truncated to fit. */
enum ej_status ej_err_set(struct ej_err *err, enum ej_status st, const char *field, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

/* Marks the detail now in `err` (may be NULL) as for the log only (see struct ej_err). */
void ej_err_mark_log_only(struct ej_err *err);

/* The sentence a client gets for `st` when the detail is for the log only ("the database could
 * not store a value of this request", ...). Static storage; never NULL. */
const char *ej_status_public_message(enum ej_status st);

/* Prepends "context: " to the message already in `err` (may be NULL); keeps status, field and
 * the log-only mark. */
void ej_err_prefix(struct ej_err *err, const char *context);

/* Clears `err` (may be NULL) to EJ_OK with empty texts. */
void ej_err_clear(struct ej_err *err);

#endif
