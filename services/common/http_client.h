/*
 * http_client.h: outbound HTTP and SMTP through libcurl. The only module that touches CURL *.
 *
 * Every transfer has a connect timeout and a total timeout, a response body cap, and returns a
 * status: network failures and timeouts are EJ_ERR_UNAVAILABLE / EJ_ERR_TIMEOUT, a response over
 * the cap is EJ_ERR_TOO_LARGE. An HTTP error status is not a failure of the call: the caller
 * reads resp->status. ej_http_global_init runs once in main before threads start; a struct
 * ej_http_client (one reusable CURL handle, keeping connections alive) belongs to one thread.
 */
#ifndef EJ_HTTP_CLIENT_H
#define EJ_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "str.h"

/* Initialises libcurl (curl_global_init); call once before threads start. */
enum ej_status ej_http_global_init(struct ej_err *err);

struct ej_http_client;

struct ej_http_client *ej_http_client_create(void);
void ej_http_client_destroy(struct ej_http_client *c); /* accepts NULL */

/* Supplies a request body piece by piece: copy up to `cap` bytes into `buf`, return how many
 * (0 at the end), or -1 to abort the transfer. */
typedef long (*ej_http_read_fn)(void *ud, char *buf, size_t cap);

/* Receives the response body piece by piece instead of resp->body; return false to abort. */
typedef bool (*ej_http_write_fn)(void *ud, const char *p, size_t n);

struct ej_http_request {
        const char *method; /* "GET", "PUT", "POST", "DELETE", "HEAD" */
        const char *url;
        const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL */
        const void *body;           /* whole body in memory, or NULL */
        size_t body_len;
        ej_http_read_fn read_fn; /* or a streamed body (then body must be NULL) */
        void *read_ud;
        long long read_len;        /* the streamed body's length, -1 when unknown (chunked) */
        ej_http_write_fn write_fn; /* optional streamed response body */
        void *write_ud;
        int connect_timeout_ms; /* 0: 5000 */
        int timeout_ms;         /* 0: 30000; the whole transfer */
        size_t max_response;    /* 0: 8 MiB; bytes of body kept in resp->body */
};

struct ej_http_response {
        long status;           /* HTTP status code */
        struct ej_buf body;    /* unless write_fn was given; caller frees with ej_buf_free */
        struct ej_buf headers; /* raw response header lines of the final response */
};

/* Performs one request. `resp` is initialised by the call; the caller frees its buffers (also
 * after a failure) with ej_http_response_free. */
enum ej_status ej_http_do(struct ej_http_client *c, const struct ej_http_request *req,
                          struct ej_http_response *resp, struct ej_err *err);

void ej_http_response_free(struct ej_http_response *resp);

/* Finds header `name` (case-insensitive) in a response; copies its value (trimmed) into `out`.
 * Returns false when absent. */
bool ej_http_response_header(const struct ej_http_response *resp, const char *name, char *out,
                             size_t out_size);

struct ej_smtp_config {
        const char *url;      /* "smtp://127.0.0.1:2525" or "smtps://host:465" */
        bool starttls;        /* require STARTTLS on smtp:// */
        const char *username; /* NULL or "" for none */
        const char *password;
        int timeout_ms; /* 0: 30000 */
};

/* Sends one message (RFC 5322 text with headers, CRLF line ends) from `from` to `to`. */
enum ej_status ej_smtp_send(const struct ej_smtp_config *cfg, const char *from, const char *to,
                            const char *message, size_t n, struct ej_err *err);

#endif
