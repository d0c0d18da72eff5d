#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[EJ_STATUS_COUNT] = {
    [EJ_OK] = "ok",
    [EJ_ERR_INVALID] = "invalid_argument",
    [EJ_ERR_NOT_FOUND] = "not_found",
    [EJ_ERR_CONFLICT] = "conflict",
    [EJ_ERR_UNAUTHENTICATED] = "unauthenticated",
    [EJ_ERR_FORBIDDEN] = "forbidden",
    [EJ_ERR_TOO_LARGE] = "too_large",
    [EJ_ERR_UNAVAILABLE] = "unavailable",
    [EJ_ERR_TIMEOUT] = "timeout",
    [EJ_ERR_INTERNAL] = "internal",
    [EJ_ERR_TOO_MANY] = "too_many_requests",
    [EJ_ERR_UNSUPPORTED] = "unsupported_media_type",
    [EJ_ERR_OUTCOME_UNKNOWN] = "outcome_unknown",
};

const char *ej_status_name(enum ej_status st)
{
        if ((unsigned)st >= EJ_STATUS_COUNT)
                return "internal";
        return status_names[st];
}

enum ej_status ej_status_from_name(const char *name)
{
        if (name == NULL)
                return EJ_ERR_INTERNAL;
        for (int i = 0; i < EJ_STATUS_COUNT; i++)
                if (strcmp(status_names[i], name) == 0)
                        return (enum ej_status)i;
        return EJ_ERR_INTERNAL;
}

enum ej_status ej_err_set(struct ej_err *err, enum ej_status st, const char *field, const char *fmt,
                          ...)
{
        va_list ap;

        if (err == NULL)
                return st;
        err->status = st;
        err->log_only = false;
        snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
        va_start(ap, fmt);
        /* Truncation of a human sentence is acceptable; it stays NUL-terminated. */
        (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return st;
}

void ej_err_prefix(struct ej_err *err, const char *context)
{
        char tmp[sizeof(err->msg)];
        size_t n, m;

        if (err == NULL || context == NULL)
                return;
        n = strnlen(context, sizeof(tmp) - 3);
        memcpy(tmp, context, n);
        memcpy(tmp + n, ": ", 2);
        n += 2;
        m = strnlen(err->msg, sizeof(tmp) - 1 - n);
        memcpy(tmp + n, err->msg, m);
        tmp[n + m] = '\0';
        memcpy(err->msg, tmp, sizeof(err->msg));
}

void ej_err_clear(struct ej_err *err)
{
        if (err == NULL)
                return;
        err->status = EJ_OK;
        err->field[0] = '\0';
        err->msg[0] = '\0';
        err->log_only = false;
}

void ej_err_mark_log_only(struct ej_err *err)
{
        if (err != NULL)
                err->log_only = true;
}

/* What a client reads when the detail stays in the log: written for people, stable per status. */
static const char *const public_messages[EJ_STATUS_COUNT] = {
    [EJ_OK] = "ok",
    [EJ_ERR_INVALID] = "a value in this request cannot be stored; check what was entered",
    [EJ_ERR_NOT_FOUND] = "this was not found",
    [EJ_ERR_CONFLICT] = "this conflicts with a change made meanwhile; reload and try again",
    [EJ_ERR_UNAUTHENTICATED] = "sign in to do this",
    [EJ_ERR_FORBIDDEN] = "this is not allowed",
    [EJ_ERR_TOO_LARGE] = "a value in this request is too large",
    [EJ_ERR_UNAVAILABLE] = "the service cannot do this just now; try again in a moment",
    [EJ_ERR_TIMEOUT] = "this took too long; try again in a moment",
    [EJ_ERR_INTERNAL] = "something went wrong on our side; the request id identifies it in our log",
    [EJ_ERR_TOO_MANY] = "too many requests; try again in a moment",
    [EJ_ERR_UNSUPPORTED] = "this is not supported",
    [EJ_ERR_OUTCOME_UNKNOWN] = "no answer came in time; the change may or may not have been made "
                               "(retry with the same Idempotency-Key)",
};

const char *ej_status_public_message(enum ej_status st)
{
        if ((unsigned)st >= EJ_STATUS_COUNT)
                st = EJ_ERR_INTERNAL;
        return public_messages[st];
}
