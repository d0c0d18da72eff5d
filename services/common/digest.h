/*
 * digest.h: streaming SHA-256 for file contents, on OpenSSL's libcrypto.
 *
 * Content addressing hashes every byte of every upload, so the hash sits on the upload's critical
 * path: libcrypto uses the CPU's SHA extensions where they exist (about 3x libsodium's portable
 * code on x86-64). Short inputs (tokens, keys) keep using ej_sha256_hex from ids.h.
 *
 * A struct ej_sha256 belongs to one thread at a time. init allocates; final or free releases, so
 * every init is paired with exactly one of them.
 */
#ifndef EJ_DIGEST_H
#define EJ_DIGEST_H

#include <stddef.h>

#include "ids.h"
#include "status.h"

struct ej_sha256 {
        void *ctx; /* EVP_MD_CTX; NULL when not started or already finished */
};

/* Starts a hash. EJ_ERR_INTERNAL (with `err` set) when libcrypto cannot allocate one. */
enum ej_status ej_sha256_init(struct ej_sha256 *h, struct ej_err *err);

/* Adds `n` bytes of `p`. */
void ej_sha256_update(struct ej_sha256 *h, const void *p, size_t n);

/* Ends the hash, writes it as lower-case hex and releases `h`. */
void ej_sha256_final_hex(struct ej_sha256 *h, char out[EJ_SHA256_HEX_LEN]);

/* Releases a hash that will not be finished; harmless on a finished or zeroed one. */
void ej_sha256_free(struct ej_sha256 *h);

#endif
