/*
 * log.h: JSON-lines logging to stderr, one object a line:
 *   {"ts":"2026-11-29T11:50:00.123Z","level":"info","svc":"users","rid":"...","msg":"..."}
 *
 * ej_log_init is called once from main before any thread starts; after that every function is
 * thread-safe (each line is written with one write(2)). `rid` is the request id, NULL when the
 * line is not about a request.
 */
#ifndef EJ_LOG_H
#define EJ_LOG_H

enum ej_log_level { EJ_LOG_DEBUG = 0, EJ_LOG_INFO, EJ_LOG_WARN, EJ_LOG_ERROR };

/* Names the process in every line and sets the lowest level written ("debug", "info", "warn",
 * "error"; anything else means info). */
void ej_log_init(const char *service, const char *level);

/* True when a line at `lvl` would be written (to skip building costly messages). */
int ej_log_enabled(enum ej_log_level lvl);

/* Writes one line. */
void ej_log(enum ej_log_level lvl, const char *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ej_debug(rid, ...) ej_log(EJ_LOG_DEBUG, rid, __VA_ARGS__)
#define ej_info(rid, ...)  ej_log(EJ_LOG_INFO, rid, __VA_ARGS__)
#define ej_warn(rid, ...)  ej_log(EJ_LOG_WARN, rid, __VA_ARGS__)
#define ej_error(rid, ...) ej_log(EJ_LOG_ERROR, rid, __VA_ARGS__)

#endif
