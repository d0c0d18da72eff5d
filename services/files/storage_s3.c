/*
 * storage_s3.c: blobs in an S3-compatible bucket (path-style URLs <endpoint>/<bucket>/<key>),
 * every request signed with SigV4 (sigv4.h) including x-amz-content-sha256: the blob's own hash
 * for a single PUT (we know it before sending), UNSIGNED-PAYLOAD for the parts of a multipart
 * upload (streamed from the file), the hash of the body for CompleteMultipartUpload, the empty
 * hash for bodiless requests. HTTP goes through http_client.h; each call borrows a client from a
 * small pool, so the backend serves any number of threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "http_client.h"
#include "mem.h"
#include "sigv4.h"
#include "storage.h"
#include "storage_impl.h"
#include "str.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define POOL_MAX     16

struct s3 {
        char *endpoint; /* without a trailing slash */
        char *host;     /* host[:port] as in the endpoint: signed as Host */
        char *bucket;
        char *region;
        char *access_key;
        char *secret_key;
        int64_t multipart_threshold;
        int64_t part_size;
        int timeout_ms;
        pthread_mutex_t mu;
        struct ej_http_client *pool[POOL_MAX];
        size_t n_pool;
};

/* One signed request. */
struct s3_call {
        const char *method;
        const char *key;   /* "" for the bucket itself */
        const char *query; /* may be NULL */
        const char *payload_hash;
        const char *range; /* "bytes=a-b" or NULL */
        const void *body;
        size_t body_len;
        ej_http_read_fn read_fn;
        void *read_ud;
        long long read_len;
        ej_http_write_fn write_fn;
        void *write_ud;
        size_t max_response;
};

static struct ej_http_client *client_take(struct s3 *s)
{
        struct ej_http_client *c = NULL;

        pthread_mutex_lock(&s->mu);
        if (s->n_pool > 0)
                c = s->pool[--s->n_pool];
        pthread_mutex_unlock(&s->mu);
        return c ? c : ej_http_client_create();
}

static void client_give(struct s3 *s, struct ej_http_client *c)
{
        pthread_mutex_lock(&s->mu);
        if (s->n_pool < POOL_MAX) {
                s->pool[s->n_pool++] = c;
                c = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        ej_http_client_destroy(c);
}

/* Signs and performs `call`; `resp` is the caller's to free. */
static enum ej_status s3_do(struct s3 *s, const struct s3_call *call, struct ej_http_response *resp,
                            struct ej_err *err)
{
        struct ej_sigv4_credentials cred = {s->access_key, s->secret_key, s->region, "s3"};
        struct ej_sigv4_header sh[4];
        size_t n_sh = 0;
        char date[EJ_SIGV4_DATE_LEN];
        char auth[1024];
        char path[512];
        char url[1024];
        char h_host[300], h_date[64], h_sha[128], h_auth[1100], h_range[96];
        const char *headers[8];
        size_t n_h = 0;
        struct ej_sigv4_request sreq;
        struct ej_http_request req;
        struct ej_http_client *c;
        enum ej_status st;

        memset(resp, 0, sizeof(*resp));
        ej_sigv4_amz_date(time(NULL), date);
        snprintf(path, sizeof(path), "/%s%s%s", s->bucket, call->key[0] ? "/" : "", call->key);
        snprintf(url, sizeof(url), "%s%s%s%s", s->endpoint, path, call->query ? "?" : "",
                 call->query ? call->query : "");
        sh[n_sh++] = (struct ej_sigv4_header){"host", s->host};
        if (call->range)
                sh[n_sh++] = (struct ej_sigv4_header){"range", call->range};
        sh[n_sh++] = (struct ej_sigv4_header){"x-amz-content-sha256", call->payload_hash};
        sh[n_sh++] = (struct ej_sigv4_header){"x-amz-date", date};
        sreq = (struct ej_sigv4_request){call->method,       path, call->query, sh, n_sh,
                                         call->payload_hash, true};
        st = ej_sigv4_authorization(&cred, date, &sreq, auth, sizeof(auth), NULL, err);
        if (st != EJ_OK)
                return st;
        snprintf(h_host, sizeof(h_host), "Host: %s", s->host);
        snprintf(h_date, sizeof(h_date), "x-amz-date: %s", date);
        snprintf(h_sha, sizeof(h_sha), "x-amz-content-sha256: %s", call->payload_hash);
        snprintf(h_auth, sizeof(h_auth), "Authorization: %s", auth);
        headers[n_h++] = h_host;
        headers[n_h++] = h_date;
        headers[n_h++] = h_sha;
        headers[n_h++] = h_auth;
        if (call->range) {
                snprintf(h_range, sizeof(h_range), "Range: %s", call->range);
                headers[n_h++] = h_range;
        }
        if (call->body || call->read_fn)
                headers[n_h++] = "Content-Type: application/octet-stream";
        headers[n_h] = NULL;

        memset(&req, 0, sizeof(req));
        req.method = call->method;
        req.url = url;
        req.headers = headers;
        req.body = call->body;
        req.body_len = call->body_len;
        req.read_fn = call->read_fn;
        req.read_ud = call->read_ud;
        req.read_len = call->read_len;
        req.write_fn = call->write_fn;
        req.write_ud = call->write_ud;
        req.timeout_ms = s->timeout_ms;
        req.max_response = call->max_response;
        c = client_take(s);
        st = ej_http_do(c, &req, resp, err);
        client_give(s, c);
        if (st != EJ_OK)
                ej_err_prefix(err, "s3");
        return st;
}

/* Turns an unexpected HTTP status into an error sentence with S3's error code, if any. */
static enum ej_status s3_fail(const struct ej_http_response *resp, const char *what,
                              struct ej_err *err)
{
        const char *code = resp->body.p ? strstr(resp->body.p, "<Code>") : NULL;
        int n = 0;

        if (code) {
                code += 6;
                while (code[n] && code[n] != '<' && n < 64)
                        n++;
        }
        if (resp->status == 404)
                return ej_err_set(err, EJ_ERR_NOT_FOUND, NULL, "s3: %s: not found", what);
        return ej_err_set(err, resp->status >= 500 ? EJ_ERR_UNAVAILABLE : EJ_ERR_INTERNAL, NULL,
                          "s3: %s: HTTP %ld %.*s", what, resp->status, n, code ? code : "");
}

static enum ej_status s3_head(void *impl, const char *key, int64_t *size, struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        char len[32];
        enum ej_status st;

        call.method = "HEAD";
        call.key = key;
        call.payload_hash = EMPTY_SHA256;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status != 200)
                st = s3_fail(&resp, "head", err);
        if (st == EJ_OK && ej_http_response_header(&resp, "Content-Length", len, sizeof(len)))
                *size = strtoll(len, NULL, 10);
        ej_http_response_free(&resp);
        return st;
}

struct file_src {
        int fd;
        int64_t left; /* bytes still to send from the current position */
};

static long file_read(void *ud, char *buf, size_t cap)
{
        struct file_src *f = ud;
        size_t want = (int64_t)cap < f->left ? cap : (size_t)f->left;
        ssize_t n;

        if (want == 0)
                return 0;
        do
                n = read(f->fd, buf, want);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return -1; /* the file is shorter than it said */
        f->left -= n;
        return (long)n;
}

/* Finds <tag>value</tag> in `xml` and copies the value into `out`. */
static bool xml_value(const char *xml, const char *tag, char *out, size_t out_size)
{
        char open[64];
        char close_tag[64];
        const char *p;
        const char *e;

        snprintf(open, sizeof(open), "<%s>", tag);
        snprintf(close_tag, sizeof(close_tag), "</%s>", tag);
        p = xml ? strstr(xml, open) : NULL;
        if (p == NULL)
                return false;
        p += strlen(open);
        e = strstr(p, close_tag);
        if (e == NULL || (size_t)(e - p) >= out_size)
                return false;
        memcpy(out, p, (size_t)(e - p));
        out[e - p] = '\0';
        return true;
}

static void abort_multipart(struct s3 *s, const char *key, const char *upload_id)
{
        struct s3_call call = {0};
        struct ej_http_response resp;
        char query[600];

        snprintf(query, sizeof(query), "uploadId=%s", upload_id);
        call.method = "DELETE";
        call.key = key;
        call.query = query;
        call.payload_hash = EMPTY_SHA256;
        (void)s3_do(s, &call, &resp, NULL);
        ej_http_response_free(&resp);
}

/* CreateMultipartUpload, UploadPart for each part (streamed from `fd`), and
 * CompleteMultipartUpload; AbortMultipartUpload on any failure. */
static enum ej_status put_multipart(struct s3 *s, const char *key, int fd, int64_t size,
                                    struct ej_err *err)
{
        struct s3_call call = {0};
        struct ej_http_response resp;
        struct ej_buf done;
        char upload_id[512];
        char query[700];
        char etag[256];
        char hash[EJ_SIGV4_HEX_LEN];
        unsigned char digest[crypto_hash_sha256_BYTES];
        int64_t parts = (size + s->part_size - 1) / s->part_size;
        enum ej_status st;

        ej_buf_init(&done);
        call.method = "POST";
        call.key = key;
        call.query = "uploads";
        call.payload_hash = EMPTY_SHA256;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && (resp.status != 200 ||
                            !xml_value(resp.body.p, "UploadId", upload_id, sizeof(upload_id))))
                st = s3_fail(&resp, "create multipart upload", err);
        ej_http_response_free(&resp);
        if (st != EJ_OK)
                return st;

        ej_buf_append_c(&done, "<CompleteMultipartUpload>");
        for (int64_t i = 0; i < parts && st == EJ_OK; i++) {
                int64_t off = i * s->part_size;
                struct file_src src = {fd, size - off < s->part_size ? size - off : s->part_size};

                if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
                        st =
                            ej_err_set(err, EJ_ERR_INTERNAL, NULL, "s3: seek: %s", strerror(errno));
                        break;
                }
                snprintf(query, sizeof(query), "partNumber=%" PRId64 "&uploadId=%s", i + 1,
                         upload_id);
                memset(&call, 0, sizeof(call));
                call.method = "PUT";
                call.key = key;
                call.query = query;
                call.payload_hash = EJ_SIGV4_UNSIGNED_PAYLOAD;
                call.read_fn = file_read;
                call.read_ud = &src;
                call.read_len = src.left;
                st = s3_do(s, &call, &resp, err);
                if (st == EJ_OK && (resp.status != 200 ||
                                    !ej_http_response_header(&resp, "ETag", etag, sizeof(etag))))
                        st = s3_fail(&resp, "upload part", err);
                ej_http_response_free(&resp);
                if (st == EJ_OK)
                        ej_buf_appendf(&done,
                                       "<Part><PartNumber>%" PRId64
                                       "</PartNumber><ETag>%s</ETag></Part>",
                                       i + 1, etag);
        }
        ej_buf_append_c(&done, "</CompleteMultipartUpload>");
        if (st == EJ_OK) {
                crypto_hash_sha256(digest, (const unsigned char *)done.p, done.n);
                sodium_bin2hex(hash, sizeof(hash), digest, sizeof(digest));
                snprintf(query, sizeof(query), "uploadId=%s", upload_id);
                memset(&call, 0, sizeof(call));
                call.method = "POST";
                call.key = key;
                call.query = query;
                call.payload_hash = hash;
                call.body = done.p;
                call.body_len = done.n;
                st = s3_do(s, &call, &resp, err);
                /* S3 may answer 200 with an <Error> body when completion fails late. */
                if (st == EJ_OK &&
                    (resp.status != 200 || (resp.body.p && strstr(resp.body.p, "<Error>") != NULL)))
                        st = s3_fail(&resp, "complete multipart upload", err);
                ej_http_response_free(&resp);
        }
        if (st != EJ_OK)
                abort_multipart(s, key, upload_id);
        ej_buf_free(&done);
        return st;
}

static enum ej_status s3_put_file(void *impl, const char *key, const char *path, int64_t size,
                                  bool *stored, struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        struct file_src src;
        struct stat sb;
        int64_t existing = 0;
        enum ej_status st;
        int fd;

        st = s3_head(s, key, &existing, err);
        if (st == EJ_OK) {
                unlink(path);
                return EJ_OK;
        }
        if (st != EJ_ERR_NOT_FOUND)
                return st;
        ej_err_clear(err);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "s3: open %s: %s", path,
                                  strerror(errno));
        if (fstat(fd, &sb) != 0 || (size >= 0 && sb.st_size != size)) {
                close(fd);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "s3: %s is not %" PRId64 " bytes",
                                  path, size);
        }
        size = (int64_t)sb.st_size;
        if (size > s->multipart_threshold) {
                st = put_multipart(s, key, fd, size, err);
        } else {
                src.fd = fd;
                src.left = size;
                call.method = "PUT";
                call.key = key;
                call.payload_hash = key; /* the key is the content's SHA-256 */
                call.read_fn = file_read;
                call.read_ud = &src;
                call.read_len = size;
                st = s3_do(s, &call, &resp, err);
                if (st == EJ_OK && resp.status != 200)
                        st = s3_fail(&resp, "put", err);
                ej_http_response_free(&resp);
        }
        close(fd);
        if (st == EJ_OK) {
                unlink(path);
                if (stored)
                        *stored = true;
        }
        return st;
}

struct stream_src {
        storage_read_fn fn;
        void *ud;
};

static long stream_read(void *ud, char *buf, size_t cap)
{
        struct stream_src *src = ud;

        return src->fn(src->ud, buf, cap);
}

static enum ej_status s3_put_stream(void *impl, const char *key, int64_t size,
                                    storage_read_fn read_fn, void *ud, struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        struct stream_src src = {read_fn, ud};
        enum ej_status st;

        call.method = "PUT";
        call.key = key;
        call.payload_hash = EJ_SIGV4_UNSIGNED_PAYLOAD;
        call.read_fn = stream_read;
        call.read_ud = &src;
        call.read_len = size;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status != 200)
                st = s3_fail(&resp, "put", err);
        ej_http_response_free(&resp);
        return st;
}

struct mem_sink {
        char *buf;
        size_t cap;
        size_t n;
};

static bool mem_write(void *ud, const char *p, size_t n)
{
        struct mem_sink *m = ud;

        if (n > m->cap - m->n)
                return false;
        memcpy(m->buf + m->n, p, n);
        m->n += n;
        return true;
}

static enum ej_status s3_read(void *impl, const char *key, int64_t offset, size_t len, void *buf,
                              size_t *got, struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        struct mem_sink sink = {buf, len, 0};
        char range[96];
        enum ej_status st;

        snprintf(range, sizeof(range), "bytes=%" PRId64 "-%" PRId64, offset,
                 offset + (int64_t)len - 1);
        call.method = "GET";
        call.key = key;
        call.payload_hash = EMPTY_SHA256;
        call.range = range;
        call.write_fn = mem_write;
        call.write_ud = &sink;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status == 416) {
                /* Past the end: nothing to read. */
                sink.n = 0;
        } else if (st == EJ_OK && resp.status != 206 && !(resp.status == 200 && offset == 0)) {
                st = s3_fail(&resp, "get", err);
        }
        ej_http_response_free(&resp);
        *got = st == EJ_OK ? sink.n : 0;
        return st;
}

struct fd_sink {
        int fd;
};

static bool fd_write(void *ud, const char *p, size_t n)
{
        struct fd_sink *f = ud;

        return write(f->fd, p, n) == (ssize_t)n;
}

static enum ej_status s3_fetch_file(void *impl, const char *key, const char *path,
                                    struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        struct fd_sink sink;
        enum ej_status st;

        sink.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (sink.fd < 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "s3: create %s: %s", path,
                                  strerror(errno));
        call.method = "GET";
        call.key = key;
        call.payload_hash = EMPTY_SHA256;
        call.write_fn = fd_write;
        call.write_ud = &sink;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status != 200)
                st = s3_fail(&resp, "get", err);
        ej_http_response_free(&resp);
        if (close(sink.fd) != 0 && st == EJ_OK)
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "s3: write %s", path);
        if (st != EJ_OK)
                unlink(path);
        return st;
}

static enum ej_status s3_del(void *impl, const char *key, struct ej_err *err)
{
        struct s3 *s = impl;
        struct s3_call call = {0};
        struct ej_http_response resp;
        enum ej_status st;

        call.method = "DELETE";
        call.key = key;
        call.payload_hash = EMPTY_SHA256;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status != 204 && resp.status != 200 && resp.status != 404)
                st = s3_fail(&resp, "delete", err);
        ej_http_response_free(&resp);
        return st;
}

static void s3_destroy(void *impl)
{
        struct s3 *s = impl;

        if (s == NULL)
                return;
        for (size_t i = 0; i < s->n_pool; i++)
                ej_http_client_destroy(s->pool[i]);
        pthread_mutex_destroy(&s->mu);
        free(s->endpoint);
        free(s->host);
        free(s->bucket);
        free(s->region);
        free(s->access_key);
        free(s->secret_key);
        free(s);
}

static const struct storage_ops s3_ops = {s3_put_file, s3_put_stream, s3_read,   s3_fetch_file,
                                          s3_head,     s3_del,        s3_destroy};

/* HEAD the bucket; create it when missing and asked to. */
static enum ej_status check_bucket(struct s3 *s, bool create, struct ej_err *err)
{
        struct s3_call call = {0};
        struct ej_http_response resp;
        enum ej_status st;

        call.method = "HEAD";
        call.key = "";
        call.payload_hash = EMPTY_SHA256;
        st = s3_do(s, &call, &resp, err);
        if (st == EJ_OK && resp.status == 404 && create) {
                ej_http_response_free(&resp);
                call.method = "PUT";
                st = s3_do(s, &call, &resp, err);
                if (st == EJ_OK && resp.status != 200)
                        st = s3_fail(&resp, "create bucket", err);
        } else if (st == EJ_OK && resp.status != 200) {
                st = s3_fail(&resp, "bucket", err);
        }
        ej_http_response_free(&resp);
        return st;
}

enum ej_status storage_s3_open(struct storage **out, const struct storage_s3_config *cfg,
                               struct ej_err *err)
{
        struct s3 *s;
        const char *h;
        size_t hlen;
        enum ej_status st;

        *out = NULL;
        if (cfg->endpoint == NULL || cfg->bucket == NULL || cfg->bucket[0] == '\0' ||
            cfg->access_key == NULL || cfg->secret_key == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "s3: endpoint, bucket and credentials are required");
        h = strstr(cfg->endpoint, "://");
        if (h == NULL || (strncmp(cfg->endpoint, "http://", 7) != 0 &&
                          strncmp(cfg->endpoint, "https://", 8) != 0))
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "s3: the endpoint is http://host[:port] or https://...");
        h += 3;
        hlen = strcspn(h, "/");
        if (hlen == 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "s3: the endpoint has no host");
        if (cfg->part_size < 5 * 1024 * 1024)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "s3: parts are at least 5 MiB");
        s = xcalloc(1, sizeof(*s));
        s->endpoint = xstrndup(cfg->endpoint, (size_t)(h - cfg->endpoint) + hlen);
        s->host = xstrndup(h, hlen);
        s->bucket = xstrdup(cfg->bucket);
        s->region = xstrdup(cfg->region && cfg->region[0] ? cfg->region : "us-east-1");
        s->access_key = xstrdup(cfg->access_key);
        s->secret_key = xstrdup(cfg->secret_key);
        s->multipart_threshold = cfg->multipart_threshold;
        s->part_size = cfg->part_size;
        s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 300000;
        pthread_mutex_init(&s->mu, NULL);
        st = check_bucket(s, cfg->create_bucket, err);
        if (st != EJ_OK) {
                s3_destroy(s);
                return st;
        }
        *out = storage_wrap("s3", &s3_ops, s);
        return EJ_OK;
}
