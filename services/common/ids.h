/*
 * ids.h: identifiers, secrets and hashes from libsodium.
 *
 * ej_ids_init must run once in main() before threads start (it initialises libsodium); after
 * that every function is thread-safe. Output buffers are the caller's.
 */
#ifndef EJ_IDS_H
#define EJ_IDS_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define EJ_UUID_LEN       37 /* 36 characters and the NUL */
#define EJ_SHA256_HEX_LEN 65 /* 64 hex digits and the NUL */

/* Initialises the random source; EJ_ERR_INTERNAL when libsodium cannot start. */
enum ej_status ej_ids_init(struct ej_err *err);

/* A random (version 4) UUID in lower-case text. */
void ej_uuid(char out[EJ_UUID_LEN]);

/* True when `s` is the canonical text of a UUID (8-4-4-4-12 hex digits, either case); false for
 * NULL. Services check ids with it before a query, so a malformed id is "not found" or "invalid",
 * never an SQL error. */
bool ej_uuid_valid(const char *s);

/* `nbytes` random bytes as unpadded base64url text into `out` (room for 4*nbytes/3 + 2 bytes);
 * used for session tokens, reset links, request ids. */
void ej_random_token(char *out, size_t out_size, size_t nbytes);

/* SHA-256 of `n` bytes of `p` as lower-case hex. */
void ej_sha256_hex(const void *p, size_t n, char out[EJ_SHA256_HEX_LEN]);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long ej_now_ms(void);

/* The last millisecond of the year 9999 (UTC): the largest time a request may name. Every bound
 * a client sends (epoch milliseconds) is checked against 0..EJ_TIME_MS_MAX before it reaches
 * SQL, where a larger one fails as "interval out of range". */
#define EJ_TIME_MS_MAX 253402300799999LL

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and durations. */
long long ej_mono_ms(void);

#endif
