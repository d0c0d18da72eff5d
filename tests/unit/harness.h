/*
 * harness.h: the shared plumbing of the tests that drive a real service binary over NATS
 * (test_users_service, test_files_service, and those of every new service): start the binary
 * with a clean environment, wait until it answers, send it requests as the gateway or another
 * service would, and stop it, checking that it exits cleanly.
 *
 * The test's own settings come from tests/run-all.sh: EJ_TEST_NATS_URL and EJ_TEST_DB_URL (a
 * private nats-server and PostgreSQL); EJ_TEST_LOG sets the started service's log level
 * ("error" by default). A started service sees none of the test's own EJ_* variables, only the
 * ones given here.
 *
 * Ownership: strings passed in are borrowed for the call; unpacked replies live in the caller's
 * arena. Not thread-safe: call from the test's main thread. Linked into every unit test binary
 * (Makefile).
 */
#ifndef EJ_TEST_HARNESS_H
#define EJ_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "bus.h"
#include "mem.h"
#include "status.h"

/* Who a request comes from; every member may be NULL (not sent). A request without user_id
 * is one from a service (or an anonymous one from the gateway). */
struct th_caller {
        const char *user_id;     /* Ej-User-Id */
        const char *roles;       /* Ej-Roles */
        const char *client_addr; /* Ej-Client-Addr */
};

/* Connects to EJ_TEST_NATS_URL under connection name `name`. On failure prints why (the
 * variable unset, or the error) on stderr and returns NULL. Release with ej_bus_destroy. */
struct ej_bus *th_bus_connect(const char *name);

/* Sends `req` (NULL: empty) to `subject` with request id "test" and the headers of `from` (may
 * be NULL), waits up to `timeout_ms`, and on EJ_OK unpacks the reply as `resp_desc` into
 * `arena` (*resp). A missing responder is EJ_ERR_UNAVAILABLE, no reply in time EJ_ERR_TIMEOUT;
 * otherwise the status the service replied with (err filled). `retry_after` (may be NULL)
 * receives the reply's Ej-Retry-After, 0 without one. */
enum ej_status th_call(struct ej_bus *bus, struct ej_arena *arena, const char *subject,
                       const ProtobufCMessage *req, const struct th_caller *from,
                       const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                       ProtobufCMessage **resp, int *retry_after, struct ej_err *err);

/* Starts the service binary ej-<name>: $EJ_<NAME>_BIN when set, else ../bin/ej-<name> next
 * to the test binary `argv0`. Its environment: the test's own without EJ_* variables, then
 * EJ_NATS_URL and EJ_DB_URL (from EJ_TEST_*), EJ_LOG_LEVEL, EJ_WORKERS=2, then `env` (a
 * NULL-terminated list of "K=V", may be NULL; later entries win). Waits up to 20 s until
 * `answers()` returns true. Returns the pid, or -1 (with the reason on stderr) when the binary
 * could not start, exited, or never answered; nothing is left running then. */
pid_t th_service_start(const char *argv0, const char *name, const char *const *env,
                       bool (*answers)(void));

/* Asks `pid` to stop with SIGTERM and waits up to `wait_ms`. Returns true when it exited with
 * status 0 in time (*took_ms, may be NULL, says how long it took); otherwise kills it with
 * SIGKILL, reaps it and returns false. pid <= 0 is ignored (true). */
bool th_service_stop(pid_t pid, long wait_ms, long long *took_ms);

/* A tag unique to this run ("<pid><random>", letters and digits only), for e-mail addresses
 * and ids that must not collide with an earlier run's. */
void th_run_tag(char *out, size_t size);

/* A free TCP port on 127.0.0.1 (bound and released at once), or -1. */
int th_free_port(void);

/* Sleeps `ms` milliseconds. */
void th_sleep_ms(long ms);

#endif
