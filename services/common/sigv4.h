/*
 * sigv4.h: AWS Signature Version 4 for requests to S3-compatible storage.
 *
 * Builds the canonical request (method, canonical URI, sorted canonical query, lower-cased,
 * trimmed and sorted headers, signed-header list, payload hash), the string to sign
 * ("AWS4-HMAC-SHA256", date, scope, hash of the canonical request), the derived signing key
 * (HMAC chain over date, region, service, "aws4_request") and the Authorization header. The
 * caller supplies every header to sign, including Host, X-Amz-Date and, for S3,
 * X-Amz-Content-Sha256 (the payload's hex SHA-256 or "UNSIGNED-PAYLOAD"); libcurl's own SigV4
 * does not add the last one, which is why we sign ourselves. Output goes into caller-owned
 * buffers; nothing is kept. Thread safety: reentrant.
 */
#ifndef EJ_SIGV4_H
#define EJ_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "status.h"
#include "str.h"

#define EJ_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define EJ_SIGV4_DATE_LEN         17 /* "20150830T123600Z" and its NUL */
#define EJ_SIGV4_HEX_LEN          65 /* a hex SHA-256 and its NUL */

struct ej_sigv4_header {
        const char *name; /* any case; lower-cased for signing */
        const char *value;
};

struct ej_sigv4_request {
        const char *method; /* "GET", "PUT", ... */
        const char *path;   /* the path as sent, not yet percent-encoded ("/bucket/key") */
        const char *query;  /* the query string without '?', may be NULL or "" */
        const struct ej_sigv4_header *headers; /* every header to sign (host, x-amz-date, ...) */
        size_t n_headers;
        const char *payload_hash; /* hex SHA-256 of the body, or EJ_SIGV4_UNSIGNED_PAYLOAD */
        bool s3;                  /* S3 keeps the path as given (no dot-segment normalisation) */
};

struct ej_sigv4_credentials {
        const char *access_key;
        const char *secret_key;
        const char *region;  /* "us-east-1" */
        const char *service; /* "s3" */
};

/* Writes the canonical request of `req` to `out` (reset first) and the semicolon-separated
 * signed-header names to `signed_headers`. EJ_ERR_INVALID when a header name is empty or the
 * list does not fit. */
enum ej_status ej_sigv4_canonical_request(const struct ej_sigv4_request *req, struct ej_buf *out,
                                          char *signed_headers, size_t signed_headers_size,
                                          struct ej_err *err);

/* Writes the string to sign for `canonical` (`n` bytes) at `amz_date` ("YYYYMMDDTHHMMSSZ") to
 * `out` (reset first). */
void ej_sigv4_string_to_sign(const struct ej_sigv4_credentials *cred, const char *amz_date,
                             const char *canonical, size_t n, struct ej_buf *out);

/* Derives the signing key for the date part of `amz_date`. */
void ej_sigv4_signing_key(const struct ej_sigv4_credentials *cred, const char *amz_date,
                          unsigned char key[32]);

/* Signs `req` at `amz_date` and writes the Authorization header's value to `out`; the
 * signature alone goes to `signature` (may be NULL). */
enum ej_status ej_sigv4_authorization(const struct ej_sigv4_credentials *cred, const char *amz_date,
                                      const struct ej_sigv4_request *req, char *out,
                                      size_t out_size, char signature[EJ_SIGV4_HEX_LEN],
                                      struct ej_err *err);

/* Formats `t` (UTC) as an X-Amz-Date value. */
void ej_sigv4_amz_date(time_t t, char out[EJ_SIGV4_DATE_LEN]);

/* Appends `n` bytes of `p` percent-encoded as SigV4 wants: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as they are, '/' as it is when `keep_slash`, the rest as %XX
 * (upper-case hex). */
void ej_sigv4_uri_encode(struct ej_buf *out, const char *p, size_t n, bool keep_slash);

#endif
