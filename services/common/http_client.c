#include "http_client.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#include <curl/curl.h>

#include "log.h"
#include "mem.h"

#define HTTP_CONNECT_TIMEOUT_MS 5000
#define HTTP_TIMEOUT_MS         30000
#define HTTP_MAX_RESPONSE       (8u * 1024 * 1024)
#define HTTP_MAX_HEADERS        (64u * 1024) /* header bytes kept of the final response */

struct ej_http_client {
        CURL *easy; /* reused: keeps connections alive between requests */
};

/* State of one transfer, shared by the callbacks. */
struct http_xfer {
        const struct ej_http_request *req;
        struct ej_http_response *resp;
        size_t body_off; /* bytes of req->body already sent */
        size_t max_response;
        bool too_large;      /* the body went over max_response */
        bool writer_aborted; /* write_fn returned false */
        bool reader_aborted; /* read_fn returned -1 */
};

enum ej_status ej_http_global_init(struct ej_err *err)
{
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

        if (rc != CURLE_OK)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "libcurl: %s",
                                  curl_easy_strerror(rc));
        return EJ_OK;
}

struct ej_http_client *ej_http_client_create(void)
{
        struct ej_http_client *c = xcalloc(1, sizeof(*c));

        c->easy = curl_easy_init();
        if (c->easy == NULL) {
                /* Only out-of-memory makes curl_easy_init fail; treat it as xmalloc does. */
                ej_error(NULL, "out of memory creating a libcurl handle");
                abort();
        }
        return c;
}

void ej_http_client_destroy(struct ej_http_client *c)
{
        if (c == NULL)
                return;
        curl_easy_cleanup(c->easy);
        free(c);
}

void ej_http_response_free(struct ej_http_response *resp)
{
        if (resp == NULL)
                return;
        ej_buf_free(&resp->body);
        ej_buf_free(&resp->headers);
}

static size_t http_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
        struct http_xfer *x = ud;
        size_t n = size * nmemb;

        if (x->req->write_fn != NULL) {
                if (!x->req->write_fn(x->req->write_ud, p, n)) {
                        x->writer_aborted = true;
                        return 0;
                }
                return n;
        }
        if (x->resp->body.n + n > x->max_response) {
                x->too_large = true;
                return 0; /* a short count makes curl stop with CURLE_WRITE_ERROR */
        }
        ej_buf_append(&x->resp->body, p, n);
        return n;
}

static size_t http_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
        struct http_xfer *x = ud;
        size_t n = size * nmemb;

        /* A status line starts a new response (after a 100 Continue, say): keep only the last. */
        if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
                ej_buf_reset(&x->resp->headers);
        if (x->resp->headers.n + n <= HTTP_MAX_HEADERS)
                ej_buf_append(&x->resp->headers, p, n);
        return n;
}

static size_t http_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
        struct http_xfer *x = ud;
        size_t cap = size * nitems;
        long got;

        if (x->req->read_fn == NULL) {
                size_t left = x->req->body_len - x->body_off;
                size_t n = left < cap ? left : cap;

                if (n > 0)
                        memcpy(buf, (const char *)x->req->body + x->body_off, n);
                x->body_off += n;
                return n;
        }
        got = x->req->read_fn(x->req->read_ud, buf, cap);
        if (got < 0 || (size_t)got > cap) {
                x->reader_aborted = true;
                return CURL_READFUNC_ABORT;
        }
        return (size_t)got;
}

/* Maps a failed transfer to a status with a sentence naming `what` (the URL or "SMTP"). */
/* The options every transfer gets: the URL, the protocols it may use, no signals, both
 * timeouts and the error buffer. */
static CURLcode curl_base_opts(CURL *e, const char *url, const char *protocols, long connect_ms,
                               long total_ms, char *errbuf)
{
        CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, url);

        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        return rc;
}

static enum ej_status http_curl_status(CURLcode rc, const char *what, const char *detail,
                                       struct ej_err *err)
{
        enum ej_status st;
        const char *msg = detail != NULL && detail[0] != '\0' ? detail : curl_easy_strerror(rc);

        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                st = EJ_ERR_TIMEOUT;
                break;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_FUNCTION_ARGUMENT:
                st = EJ_ERR_INVALID;
                break;
        case CURLE_OUT_OF_MEMORY:
                st = EJ_ERR_INTERNAL;
                break;
        default:
                /* Refused or reset connections, DNS, TLS, a server that hung up: try later. */
                st = EJ_ERR_UNAVAILABLE;
                break;
        }
        return ej_err_set(err, st, NULL, "%s: %s", what, msg);
}

/* Sets the method and, when there is a body, the read callback and its size. */
static CURLcode http_set_method(CURL *e, const struct ej_http_request *req, bool has_body,
                                curl_off_t len)
{
        const char *m = req->method != NULL ? req->method : "GET";
        CURLcode rc = CURLE_OK;

        if (strcmp(m, "HEAD") == 0)
                return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        if (!has_body) {
                if (strcmp(m, "GET") == 0)
                        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
                return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        }
        if (strcmp(m, "PUT") == 0) {
                rc = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
                if (rc == CURLE_OK)
                        rc = curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, len);
                return rc;
        }
        rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, len);
        if (rc == CURLE_OK && strcmp(m, "POST") != 0)
                rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        return rc;
}

static bool http_has_header(const char *const *headers, const char *name)
{
        size_t n = strlen(name);

        for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
                if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
                        return true;
        return false;
}

enum ej_status ej_http_do(struct ej_http_client *c, const struct ej_http_request *req,
                          struct ej_http_response *resp, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct curl_slist *hdrs = NULL;
        struct http_xfer x;
        CURLcode rc = CURLE_OK;
        CURL *e = c->easy;
        char errbuf[CURL_ERROR_SIZE];
        bool has_body = req->body != NULL || req->read_fn != NULL;
        curl_off_t len =
            req->read_fn != NULL ? (curl_off_t)req->read_len : (curl_off_t)req->body_len;
        long connect_ms =
            req->connect_timeout_ms > 0 ? req->connect_timeout_ms : HTTP_CONNECT_TIMEOUT_MS;
        long total_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTP_TIMEOUT_MS;

        memset(resp, 0, sizeof(*resp));
        memset(&x, 0, sizeof(x));
        x.req = req;
        x.resp = resp;
        x.max_response = req->max_response > 0 ? req->max_response : HTTP_MAX_RESPONSE;
        errbuf[0] = '\0';
        if (req->url == NULL || (req->body != NULL && req->read_fn != NULL)) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                "http: a URL and at most one kind of body are required");
                goto out;
        }
        for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
                hdrs = curl_slist_append(hdrs, req->headers[i]);
        /* No 100-continue round trip: our peers answer the request, not the expectation. */
        if (has_body && !http_has_header(req->headers, "Expect"))
                hdrs = curl_slist_append(hdrs, "Expect:");
        if (has_body && len < 0 && !http_has_header(req->headers, "Transfer-Encoding"))
                hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");

        curl_easy_reset(e);
        if (rc == CURLE_OK)
                rc = curl_base_opts(e, req->url, "http,https", connect_ms, total_ms, errbuf);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
        if (rc == CURLE_OK && has_body)
                rc = curl_easy_setopt(e, CURLOPT_READFUNCTION, http_on_read);
        if (rc == CURLE_OK && has_body)
                rc = curl_easy_setopt(e, CURLOPT_READDATA, &x);
        if (rc == CURLE_OK)
                rc = http_set_method(e, req, has_body, len);
        if (rc == CURLE_OK && hdrs != NULL)
                rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        if (rc != CURLE_OK) {
                st = http_curl_status(rc, "http: options", NULL, err);
                goto out;
        }

        rc = curl_easy_perform(e);
        (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
        if (x.too_large) {
                st = ej_err_set(err, EJ_ERR_TOO_LARGE, NULL,
                                "http: response from %s is over %zu bytes", req->url,
                                x.max_response);
        } else if (x.writer_aborted) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                "http: the receiver of the response from %s stopped it", req->url);
        } else if (x.reader_aborted) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                "http: the request body for %s could not be read", req->url);
        } else if (rc != CURLE_OK) {
                st = http_curl_status(rc, req->url, errbuf, err);
        }
out:
        /* The handle keeps pointers to our header list and error buffer until the next reset. */
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
        curl_slist_free_all(hdrs);
        return st;
}

bool ej_http_response_header(const struct ej_http_response *resp, const char *name, char *out,
                             size_t out_size)
{
        const char *p = resp->headers.p;
        const char *end = p + resp->headers.n;
        size_t nlen = strlen(name);

        if (p == NULL)
                return false;
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = eol != NULL ? eol : end;

                if ((size_t)(line_end - p) > nlen && strncasecmp(p, name, nlen) == 0 &&
                    p[nlen] == ':') {
                        const char *v = p + nlen + 1;
                        const char *ve = line_end;
                        size_t n;

                        while (v < ve && (*v == ' ' || *v == '\t'))
                                v++;
                        while (ve > v && isspace((unsigned char)ve[-1]))
                                ve--;
                        n = (size_t)(ve - v);
                        if (out_size > 0) {
                                if (n >= out_size)
                                        n = out_size - 1;
                                memcpy(out, v, n);
                                out[n] = '\0';
                        }
                        return true;
                }
                p = line_end + 1;
        }
        return false;
}

/* ---- SMTP ---- */

struct smtp_src {
        const char *p;
        size_t n;
        size_t off;
};

static size_t smtp_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
        struct smtp_src *s = ud;
        size_t cap = size * nitems;
        size_t n = s->n - s->off < cap ? s->n - s->off : cap;

        memcpy(buf, s->p + s->off, n);
        s->off += n;
        return n;
}

/* Writes the bare address of "Name <addr>" or "addr" into `out` as "<addr>". */
static bool smtp_envelope_addr(const char *in, char *out, size_t out_size)
{
        const char *lt = strrchr(in, '<');
        const char *a = in;
        size_t n;
        int w;

        if (strpbrk(in, "\r\n") != NULL)
                return false;
        if (lt != NULL) {
                const char *gt = strchr(lt, '>');

                if (gt == NULL)
                        return false;
                a = lt + 1;
                n = (size_t)(gt - a);
        } else {
                while (*a == ' ')
                        a++;
                n = strlen(a);
                while (n > 0 && a[n - 1] == ' ')
                        n--;
        }
        if (n == 0 || n > 254 || memchr(a, '\r', n) != NULL || memchr(a, '\n', n) != NULL)
                return false;
        w = snprintf(out, out_size, "<%.*s>", (int)n, a);
        return w > 0 && (size_t)w < out_size;
}

enum ej_status ej_smtp_send(const struct ej_smtp_config *cfg, const char *from, const char *to,
                            const char *message, size_t n, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        CURL *e = NULL;
        struct curl_slist *rcpt = NULL;
        struct smtp_src src = {message, n, 0};
        char env_from[300], env_to[300];
        char errbuf[CURL_ERROR_SIZE];
        CURLcode rc = CURLE_OK;
        long code = 0;
        long total_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : HTTP_TIMEOUT_MS;
        long connect_ms = total_ms < HTTP_CONNECT_TIMEOUT_MS ? total_ms : HTTP_CONNECT_TIMEOUT_MS;

        errbuf[0] = '\0';
        if (cfg->url == NULL || cfg->url[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "smtp: no server URL");
        if (!smtp_envelope_addr(from, env_from, sizeof(env_from)))
                return ej_err_set(err, EJ_ERR_INVALID, "from", "smtp: bad sender address");
        if (!smtp_envelope_addr(to, env_to, sizeof(env_to)))
                return ej_err_set(err, EJ_ERR_INVALID, "to", "smtp: bad recipient address");
        e = curl_easy_init();
        if (e == NULL)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "smtp: cannot create a handle");
        rcpt = curl_slist_append(rcpt, env_to);

        rc = curl_base_opts(e, cfg->url, "smtp,smtps", connect_ms, total_ms, errbuf);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_MAIL_FROM, env_from);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_READFUNCTION, smtp_on_read);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(e, CURLOPT_READDATA, &src);
        if (rc == CURLE_OK && cfg->starttls)
                rc = curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (rc == CURLE_OK && cfg->username != NULL && cfg->username[0] != '\0') {
                rc = curl_easy_setopt(e, CURLOPT_USERNAME, cfg->username);
                if (rc == CURLE_OK)
                        rc = curl_easy_setopt(e, CURLOPT_PASSWORD,
                                              cfg->password != NULL ? cfg->password : "");
        }
        if (rc != CURLE_OK) {
                st = http_curl_status(rc, "smtp: options", NULL, err);
                goto out;
        }
        rc = curl_easy_perform(e);
        if (rc == CURLE_OK)
                goto out;
        (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        switch (rc) {
        case CURLE_LOGIN_DENIED:
        case CURLE_USE_SSL_FAILED:
                /* Our configuration or the server's: the mail itself is fine, keep it. */
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "smtp: %s",
                                errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
                break;
        default:
                if (code >= 500 && code < 600)
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL, "smtp: rejected (%ld): %s", code,
                                        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
                else if (code >= 400 && code < 500)
                        st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "smtp: deferred (%ld): %s",
                                        code, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
                else
                        st = http_curl_status(rc, "smtp", errbuf, err);
                break;
        }
out:
        curl_slist_free_all(rcpt);
        curl_easy_cleanup(e);
        return st;
}
