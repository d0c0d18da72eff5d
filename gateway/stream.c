/*
 * stream.c: uploads and downloads of files between HTTP and the files service; see stream.h
 * for the flow. Locking: ss->mu guards the stream table only; st->mu guards one stream's state.
 * Order: ss->mu before st->mu, never the reverse. The connection is suspended only with st->mu
 * held and st->suspended set, and resumed only by whoever clears st->suspended under st->mu.
 */
#include "stream.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "files.pb-c.h"
#include "gateway.h"
#include "ids.h"
#include "log.h"
#include "pbjson.h"
#include "users.pb-c.h"

#define TABLE_BUCKETS         256u /* power of two */
#define SWEEP_EVERY_MS        20
#define FRAME_HDR             32           /* room before a chunk's data for its protobuf header */
#define PP_BUFFER             16384        /* MHD post processor's buffer */
#define PP_SLACK              (64u << 10)  /* room kept free for what the post processor releases */
#define DEFAULT_CHUNK         (256u << 10) /* until the service says otherwise */
#define MAX_CHUNK             (4u << 20)   /* larger chunk_size values are refused */
#define MAX_WINDOW            64u
#define DEFAULT_UPLOAD_CHUNK  (64u << 10) /* measured: see stream.h */
#define DEFAULT_UPLOAD_WINDOW 8u
#define FIELD_MAX             256 /* small multipart fields (kind) */
#define READER_BLOCK          (64u << 10)
#define MULTIPART_OVERHEAD    (64u << 10) /* boundaries and part headers beyond the file itself */

enum dir { DIR_UPLOAD, DIR_DOWNLOAD };

/* Tags of reply subjects "<inbox>.<sid>.<tag><n>". */
#define TAG_AUTH   'a'
#define TAG_BEGIN  'b'
#define TAG_CHUNK  'c'
#define TAG_COMMIT 'm'
#define TAG_ABORT  'x'
#define TAG_OPEN   'o'
#define TAG_READ   'r'

struct gw_stream {
        struct gw_streams *ss;
        struct MHD_Connection *conn;
        struct gw_req *req; /* NULL once the request completed */
        uint64_t sid;
        struct gw_stream *next; /* table chain */
        atomic_int refs;
        pthread_mutex_t mu;
        enum dir dir;
        char rid[68];
        char *user_id; /* NULL: anonymous */
        char *roles;
        char *token;

        bool suspended;
        bool responded;        /* a response was queued (maybe by a NATS thread, while suspended) */
        bool first_hold;       /* suspended by the first call: a response may still be queued */
        bool first_again;      /* MHD repeats the first call (no body yet) after that suspension */
        long long deadline_ms; /* 0: nothing outstanding */
        bool failed;
        struct ej_err fail;

        bool authing;          /* ej.users.authenticate in flight */
        bool authed;           /* principal known (or anonymous for a download) */
        bool consent_required; /* the principal owes consent to the current notice */
        bool consent_denied;   /* the failure is 403 consent_required */

        /* Upload. */
        char *kind, *filename, *ctype_hint;
        long long declared; /* Content-Length, -1 unknown */
        bool multipart;
        struct MHD_PostProcessor *pp;
        bool file_seen, file_done, multi_file;
        uint64_t file_bytes; /* of the "file" part so far */
        char field[FIELD_MAX];
        size_t field_n;
        bool begin_sent, begun;
        char *chunk_subject;
        char *upload_id;
        uint32_t chunk_size, window;
        long long max_size;
        uint8_t *buf; /* FRAME_HDR bytes of room, then buf_n bytes of data */
        size_t buf_n, buf_cap;
        uint64_t next_seq, acked;
        long long sent_bytes;
        bool commit_sent;
        natsMsg *commit_reply;
        bool aborted;      /* the service dropped the upload (or we told it to) */
        bool echo_pending; /* a later chunk found the upload gone: see settle_echo */
        uint64_t echo_seq;
        struct ej_err echo;

        /* Download. */
        char *file_id, *grant;
        bool head, has_range;
        long long range_start, range_end, range_suffix;
        char *inm; /* If-None-Match */
        bool open_sent;
        natsMsg *open_reply;
        long long first, last; /* bytes to send, inclusive (last = first - 1: none) */
        uint32_t read_size;
        uint64_t nchunks, next_read;
        unsigned reads_out; /* FileRead requests without a reply */
        natsMsg *ring[GW_STREAM_READ_WINDOW];
        uint64_t ring_k[GW_STREAM_READ_WINDOW];
        const uint8_t *ring_p[GW_STREAM_READ_WINDOW];
        size_t ring_n[GW_STREAM_READ_WINDOW];
};

struct gw_streams {
        struct gw *gw;
        natsConnection *nc;
        natsSubscription *sub;
        char prefix[96];
        size_t prefix_n;
        pthread_mutex_t mu;
        struct gw_stream *buckets[TABLE_BUCKETS];
        atomic_uint_fast64_t next_sid;
        pthread_t sweeper;
        bool sweeper_started;
        atomic_bool stop;
        uint32_t upload_chunk;  /* EJ_FILES_UPLOAD_CHUNK: cap on the service's chunk_size, 0 none */
        uint32_t upload_window; /* EJ_FILES_UPLOAD_WINDOW: cap on the service's window, 0 none */
        struct ej_counter *bytes_up;
        struct ej_counter *bytes_down;
        struct ej_counter *aborted;
};

/* --- small helpers --- */

static char *dup_or_null(const char *s)
{
        return s ? xstrdup(s) : NULL;
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
        return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
        return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
        size_t n = 0;

        while (v >= 0x80) {
                p[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t)v;
        return n;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;

                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *out = v;
                        return true;
                }
        }
        return false;
}

/* The bytes of FileData.data inside a packed FileData, without copying. */
static bool file_data_view(const uint8_t *p, size_t n, const uint8_t **data, size_t *len)
{
        const uint8_t *end = p + n;

        *data = p;
        *len = 0;
        while (p < end) {
                uint64_t key, v;

                if (!get_varint(&p, end, &key))
                        return false;
                switch (key & 7) {
                case 0:
                        if (!get_varint(&p, end, &v))
                                return false;
                        break;
                case 2:
                        if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
                                return false;
                        if (key >> 3 == 1) {
                                *data = p;
                                *len = (size_t)v;
                        }
                        p += v;
                        break;
                case 1:
                        if (end - p < 8)
                                return false;
                        p += 8;
                        break;
                case 5:
                        if (end - p < 4)
                                return false;
                        p += 4;
                        break;
                default:
                        return false;
                }
        }
        return true;
}

/* --- life of a stream --- */

static void stream_unref(struct gw_stream *st)
{
        if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
                return;
        for (size_t i = 0; i < GW_STREAM_READ_WINDOW; i++)
                natsMsg_Destroy(st->ring[i]);
        natsMsg_Destroy(st->commit_reply);
        natsMsg_Destroy(st->open_reply);
        if (st->pp)
                MHD_destroy_post_processor(st->pp);
        free(st->buf);
        free(st->user_id);
        free(st->roles);
        free(st->token);
        free(st->kind);
        free(st->filename);
        free(st->ctype_hint);
        free(st->chunk_subject);
        free(st->upload_id);
        free(st->file_id);
        free(st->grant);
        free(st->inm);
        pthread_mutex_destroy(&st->mu);
        free(st);
}

/* The stream numbered `sid` with a reference taken, or NULL. */
static struct gw_stream *lookup(struct gw_streams *ss, uint64_t sid)
{
        struct gw_stream *st;

        pthread_mutex_lock(&ss->mu);
        for (st = ss->buckets[sid & (TABLE_BUCKETS - 1)]; st; st = st->next)
                if (st->sid == sid)
                        break;
        if (st)
                atomic_fetch_add(&st->refs, 1);
        pthread_mutex_unlock(&ss->mu);
        return st;
}

static void table_remove(struct gw_streams *ss, struct gw_stream *st)
{
        pthread_mutex_lock(&ss->mu);
        for (struct gw_stream **l = &ss->buckets[st->sid & (TABLE_BUCKETS - 1)]; *l;
             l = &(*l)->next) {
                if (*l == st) {
                        *l = st->next;
                        break;
                }
        }
        pthread_mutex_unlock(&ss->mu);
}

/* Caller holds st->mu. */
static void hold(struct gw_stream *st)
{
        if (!st->suspended) {
                st->suspended = true;
                MHD_suspend_connection(st->conn);
        }
}

/* Caller holds st->mu. */
static void wake(struct gw_stream *st)
{
        if (st->suspended && st->req) {
                st->suspended = false;
                st->first_hold = false;
                MHD_resume_connection(st->conn);
        }
}

static void arm(struct gw_stream *st)
{
        st->deadline_ms = ej_mono_ms() + st->ss->gw->cfg->request_timeout_ms;
}

/* --- responses --- */

static enum MHD_Result queue_resp(struct gw_stream *st, unsigned status, struct MHD_Response *r)
{
        struct gw_req *req = st->req;
        enum MHD_Result ret;

        /* Downloads say their own Cache-Control; everything else is no-store. */
        gw_common_headers(r, req->rid, st->dir == DIR_UPLOAD || status >= 400);
        ret = MHD_queue_response(st->conn, status, r);
        MHD_destroy_response(r);
        if (ret == MHD_YES) {
                req->status = status;
                req->phase = GW_PHASE_SENT;
                st->responded = true;
        }
        return ret;
}

static enum MHD_Result queue_json(struct gw_stream *st, unsigned status, struct ej_buf *body,
                                  const char *location)
{
        size_t n = body->n;
        char *p = ej_buf_steal(body);
        struct MHD_Response *r = MHD_create_response_from_buffer(
            n, p ? p : (void *)(uintptr_t) "", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);

        if (r == NULL) {
                free(p);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
        if (location)
                MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
        return queue_resp(st, status, r);
}

static enum MHD_Result queue_error(struct gw_stream *st, enum ej_status code, const char *msg,
                                   const char *field)
{
        struct gw_out out = {0};

        if (st->consent_denied)
                gw_out_denied(&out, st->req, GW_ACCESS_CONSENT);
        else
                gw_out_error(&out, st->req, code, msg, field);
        return queue_json(st, out.status, &out.body, NULL);
}

/* Records the first failure; the connection answers it when it runs next. Caller holds mu. */
static void fail(struct gw_stream *st, enum ej_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void send_abort(struct gw_stream *st, const char *reason);

static void fail(struct gw_stream *st, enum ej_status code, const char *fmt, ...)
{
        va_list ap;

        if (st->failed)
                return;
        st->failed = true;
        st->deadline_ms = 0;
        st->fail.status = code;
        va_start(ap, fmt);
        vsnprintf(st->fail.msg, sizeof(st->fail.msg), fmt, ap);
        va_end(ap);
        if (code == EJ_ERR_INTERNAL || code == EJ_ERR_UNAVAILABLE || code == EJ_ERR_TIMEOUT)
                ej_warn(st->rid, "file %s: %s: %s", st->dir == DIR_UPLOAD ? "upload" : "download",
                        ej_status_name(code), st->fail.msg);
        if (st->dir == DIR_UPLOAD && st->begun && !st->aborted)
                send_abort(st, st->fail.msg);
        /* Still in the first call's suspension: the answer can go out before the body is read
         * (MHD then closes the connection instead of reading what the client still sends). */
        if (st->first_hold && st->suspended && st->req && !st->responded)
                queue_error(st, code, st->fail.msg, NULL);
        wake(st);
}

static void fail_reply(struct gw_stream *st, natsMsg *m, const char *what)
{
        struct ej_err e = {0};
        enum ej_status code;

        if (natsMsg_IsNoResponders(m)) {
                fail(st, EJ_ERR_UNAVAILABLE, "the %s service is not available", what);
                return;
        }
        code = ej_bus_reply_status(m, &e);
        fail(st, code, "%s", e.msg[0] ? e.msg : ej_status_name(code));
}

/* --- sending --- */

/* Publishes a request with the caller's headers; reply to "<inbox>.<sid>.<tag><n>". Caller
 * holds mu. False (and the stream failed) when it cannot go out. */
static bool send_req(struct gw_stream *st, const char *subject, char tag, uint64_t n,
                     const ProtobufCMessage *msg)
{
        struct gw_streams *ss = st->ss;
        natsMsg *m = NULL;
        natsStatus s;
        char reply[160];
        size_t len = protobuf_c_message_get_packed_size(msg);
        uint8_t small[512];
        uint8_t *data = len <= sizeof(small) ? small : xmalloc(len);

        protobuf_c_message_pack(msg, data);
        snprintf(reply, sizeof(reply), "%s.%" PRIu64 ".%c%" PRIu64, ss->prefix, st->sid, tag, n);
        s = natsMsg_Create(&m, subject, reply, (const char *)data, (int)len);
        if (data != small)
                free(data);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, EJ_HDR_REQUEST_ID, st->rid);
        if (s == NATS_OK && st->user_id)
                s = natsMsgHeader_Set(m, EJ_HDR_USER_ID, st->user_id);
        if (s == NATS_OK && st->user_id && st->roles && st->roles[0])
                s = natsMsgHeader_Set(m, EJ_HDR_ROLES, st->roles);
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(ss->nc, m);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
                fail(st, EJ_ERR_UNAVAILABLE, "the message bus is not available");
                return false;
        }
        arm(st);
        return true;
}

static void send_abort(struct gw_stream *st, const char *reason)
{
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadAbort a = EJ__FILES__UPLOAD_ABORT__INIT;
        long long keep = st->deadline_ms;
        bool was_failed = st->failed;

        if (st->chunk_subject == NULL || st->aborted)
                return;
        st->aborted = true;
        a.reason = (char *)(uintptr_t)(reason ? reason : "");
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_ABORT;
        f.abort = &a;
        st->failed = true; /* a failed publish must not recurse into fail() */
        send_req(st, st->chunk_subject, TAG_ABORT, 0, &f.base);
        st->failed = was_failed;
        st->deadline_ms = keep; /* nobody waits for the abort's answer */
        ej_counter_add(st->ss->aborted, 1);
}

static void send_auth(struct gw_stream *st)
{
        Ej__Users__AuthenticateRequest ar = EJ__USERS__AUTHENTICATE_REQUEST__INIT;

        ar.session_token = st->token;
        st->authing = true;
        send_req(st, "ej.users.authenticate", TAG_AUTH, 0, &ar.base);
}

static void send_begin(struct gw_stream *st)
{
        Ej__Files__UploadBegin b = EJ__FILES__UPLOAD_BEGIN__INIT;

        b.kind = st->kind ? st->kind : (char *)(uintptr_t) "";
        b.filename = st->filename ? st->filename : (char *)(uintptr_t) "";
        b.declared_size = st->multipart ? -1 : st->declared;
        b.content_type_hint = st->ctype_hint ? st->ctype_hint : (char *)(uintptr_t) "";
        st->begin_sent = true;
        send_req(st, "ej.files.upload_begin", TAG_BEGIN, 0, &b.base);
}

/* Sends the first `n` buffered bytes as chunk next_seq. Caller holds mu. */
static bool send_chunk(struct gw_stream *st, size_t n)
{
        uint8_t h[FRAME_HDR], inner[24];
        size_t in = 0, hn = 0;
        uint8_t *start;
        natsStatus s;
        char reply[160];

        inner[in++] = 0x08; /* UploadChunk.seq */
        in += put_varint(inner + in, st->next_seq);
        inner[in++] = 0x12; /* UploadChunk.data */
        in += put_varint(inner + in, n);
        h[hn++] = 0x0a; /* UploadFrame.chunk */
        hn += put_varint(h + hn, in + n);
        memcpy(h + hn, inner, in);
        hn += in;
        start = st->buf + FRAME_HDR - hn;
        memcpy(start, h, hn);
        snprintf(reply, sizeof(reply), "%s.%" PRIu64 ".%c%" PRIu64, st->ss->prefix, st->sid,
                 TAG_CHUNK, st->next_seq);
        s = natsConnection_PublishRequest(st->ss->nc, st->chunk_subject, reply, (const void *)start,
                                          (int)(hn + n));
        if (s != NATS_OK) {
                fail(st, EJ_ERR_UNAVAILABLE, "the message bus is not available");
                return false;
        }
        st->next_seq++;
        st->sent_bytes += (long long)n;
        if (n < st->buf_n)
                memmove(st->buf + FRAME_HDR, st->buf + FRAME_HDR + n, st->buf_n - n);
        st->buf_n -= n;
        arm(st);
        return true;
}

static bool window_open(const struct gw_stream *st)
{
        return st->begun && !st->failed && st->next_seq - st->acked < st->window;
}

/* Sends every full chunk the window allows. Caller holds mu. */
static void pump(struct gw_stream *st)
{
        while (window_open(st) && st->buf_n >= st->chunk_size)
                if (!send_chunk(st, st->chunk_size))
                        return;
}

static void ensure_buf(struct gw_stream *st)
{
        size_t want = FRAME_HDR + (st->chunk_size ? st->chunk_size : DEFAULT_CHUNK) +
                      (st->multipart ? PP_SLACK : 0);

        if (st->buf_cap < want) {
                st->buf = xrealloc(st->buf, want);
                st->buf_cap = want;
        }
}

/* --- replies --- */

/* Sends upload.begin once everything it needs is known. True when it went out now. Caller
 * holds mu. */
static bool maybe_begin(struct gw_stream *st)
{
        if (st->begin_sent || st->failed || !st->authed)
                return false;
        /* Uploads wait for consent like every other piece of work (routes.h). */
        if (st->req && gw_consent_blocks(st->req->route, st->consent_required)) {
                st->consent_denied = true;
                fail(st, EJ_ERR_FORBIDDEN, "accept the current consent notice first");
                return false;
        }
        if (st->multipart && !st->file_seen)
                return false;
        if (st->kind == NULL || st->kind[0] == '\0') {
                fail(st, EJ_ERR_INVALID,
                     st->multipart ? "say which kind of file this is (a kind field before the file)"
                                   : "say which kind of file this is (?kind=manuscript)");
                return false;
        }
        send_begin(st);
        return !st->failed;
}

static void on_auth_reply(struct gw_stream *st, natsMsg *m)
{
        Ej__Users__Principal *p;
        struct ej_err e = {0};

        st->authing = false;
        st->deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, &e) != EJ_OK) {
                if (st->dir == DIR_DOWNLOAD && e.status == EJ_ERR_UNAUTHENTICATED) {
                        st->authed = true; /* a stale cookie: go on as a visitor */
                } else {
                        fail_reply(st, m, "users");
                        return;
                }
        } else {
                p = ej__users__principal__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                 (const uint8_t *)natsMsg_GetData(m));
                if (p && p->user_id && p->user_id[0]) {
                        struct ej_arena *a = ej_arena_create(256);

                        st->user_id = xstrdup(p->user_id);
                        st->roles = xstrdup(gw_join_roles(a, p->n_roles, p->roles));
                        st->consent_required = p->consent_required;
                        ej_arena_destroy(a);
                } else if (st->dir == DIR_UPLOAD) {
                        if (p)
                                ej__users__principal__free_unpacked(p, NULL);
                        fail(st, EJ_ERR_UNAUTHENTICATED, "sign in first");
                        return;
                }
                if (p)
                        ej__users__principal__free_unpacked(p, NULL);
                st->authed = true;
        }
        if (st->dir == DIR_UPLOAD) {
                /* A raw upload stays in the first call's suspension until begin answers, so
                 * that a refusal (413) goes out before the body is read. */
                if (maybe_begin(st) && !st->multipart)
                        return;
        } else if (!st->open_sent) {
                Ej__Files__DownloadOpen o = EJ__FILES__DOWNLOAD_OPEN__INIT;

                o.file_id = st->file_id;
                o.grant = st->grant ? st->grant : (char *)(uintptr_t) "";
                o.has_range = st->has_range;
                o.range_start = st->range_start;
                o.range_end = st->range_end;
                o.range_suffix = st->range_suffix;
                st->open_sent = true;
                send_req(st, "ej.files.download_open", TAG_OPEN, 0, &o.base);
        }
        wake(st);
}

static void on_begin_reply(struct gw_stream *st, natsMsg *m)
{
        Ej__Files__UploadBeginReply *r;

        st->deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                fail_reply(st, m, "files");
                return;
        }
        r = ej__files__upload_begin_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                  (const uint8_t *)natsMsg_GetData(m));
        if (r == NULL || r->chunk_subject == NULL || r->chunk_subject[0] == '\0' ||
            r->chunk_size == 0 || r->chunk_size > MAX_CHUNK || r->window == 0) {
                if (r)
                        ej__files__upload_begin_reply__free_unpacked(r, NULL);
                fail(st, EJ_ERR_INTERNAL, "the files service sent a bad upload.begin reply");
                return;
        }
        st->chunk_subject = xstrdup(r->chunk_subject);
        st->upload_id = xstrdup(r->upload_id ? r->upload_id : "");
        /* The service says the most it takes; the gateway may send less (memory in flight per
         * upload is chunk_size * window on the service's side). */
        st->chunk_size = r->chunk_size;
        if (st->ss->upload_chunk && st->ss->upload_chunk < st->chunk_size)
                st->chunk_size = st->ss->upload_chunk;
        st->window = r->window < MAX_WINDOW ? r->window : MAX_WINDOW;
        if (st->ss->upload_window && st->ss->upload_window < st->window)
                st->window = st->ss->upload_window;
        st->max_size = r->max_size;
        ej__files__upload_begin_reply__free_unpacked(r, NULL);
        st->begun = true;
        ensure_buf(st);
        if (st->multipart && st->max_size > 0 && st->declared > 0 &&
            st->declared > st->max_size + (long long)MULTIPART_OVERHEAD) {
                fail(st, EJ_ERR_TOO_LARGE, "the file is larger than %lld bytes", st->max_size);
                return;
        }
        pump(st);
        wake(st);
}

/* Fails with the echo of a later chunk (an upload the service already dropped) once every
 * earlier chunk has answered: the earlier one may carry the real reason (415, 413). Caller
 * holds mu. */
static void settle_echo(struct gw_stream *st)
{
        if (st->echo_pending && st->echo_seq <= st->acked)
                fail(st, st->echo.status, "%s", st->echo.msg);
}

static void on_chunk_reply(struct gw_stream *st, natsMsg *m, uint64_t seq)
{
        struct ej_err e = {0};
        enum ej_status code = EJ_ERR_UNAVAILABLE;

        if (natsMsg_IsNoResponders(m))
                ej_err_set(&e, code, NULL, "the files service is not available");
        else
                code = ej_bus_reply_status(m, &e);
        if (code != EJ_OK) {
                st->aborted = true; /* the service dropped the upload */
                /* "No responders" and not_found are what chunks sent after the service ended
                 * the upload get; their replies can overtake the one that says why. */
                if ((code == EJ_ERR_UNAVAILABLE || code == EJ_ERR_NOT_FOUND) && seq > st->acked) {
                        if (!st->echo_pending || seq < st->echo_seq) {
                                st->echo_pending = true;
                                st->echo_seq = seq;
                                st->echo = e;
                        }
                        return;
                }
                fail(st, code, "%s", e.msg[0] ? e.msg : ej_status_name(code));
                return;
        }
        if (seq + 1 > st->acked)
                st->acked = seq + 1;
        settle_echo(st);
        if (st->failed)
                return;
        if (st->next_seq == st->acked && !st->commit_sent)
                st->deadline_ms = 0;
        else
                arm(st);
        pump(st);
        wake(st);
}

static void on_commit_reply(struct gw_stream *st, natsMsg *m)
{
        st->deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                st->aborted = true;
                fail_reply(st, m, "files");
                return;
        }
        st->commit_reply = m;
        st->aborted = true; /* committed: nothing to abort any more */
        ej_counter_add(st->ss->bytes_up, (double)st->sent_bytes);
        wake(st);
}

/* Sends the FileRead of chunk k. Caller holds mu. */
static void send_read(struct gw_stream *st, uint64_t k)
{
        Ej__Files__FileRead r = EJ__FILES__FILE_READ__INIT;
        long long off = st->first + (long long)(k * st->read_size);
        long long left = st->last + 1 - off;

        r.file_id = st->file_id;
        r.grant = st->grant ? st->grant : (char *)(uintptr_t) "";
        r.offset = off;
        r.length = (uint32_t)(left < (long long)st->read_size ? left : st->read_size);
        if (send_req(st, "ej.files.read", TAG_READ, k, &r.base))
                st->reads_out++;
}

static void on_open_reply(struct gw_stream *st, natsMsg *m)
{
        Ej__Files__FileMeta *fm;

        st->deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                fail_reply(st, m, "files");
                natsMsg_Destroy(m);
                return;
        }
        fm = ej__files__file_meta__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                          (const uint8_t *)natsMsg_GetData(m));
        if (fm == NULL) {
                fail(st, EJ_ERR_INTERNAL, "the files service sent bad file metadata");
                natsMsg_Destroy(m);
                return;
        }
        st->open_reply = m;
        st->read_size = fm->chunk_size ? fm->chunk_size : DEFAULT_CHUNK;
        if (st->read_size > MAX_CHUNK)
                st->read_size = MAX_CHUNK;
        if (fm->range_unsatisfiable || fm->size == 0) {
                st->first = 0;
                st->last = -1;
        } else {
                st->first = fm->range_start;
                st->last = fm->range_end < 0 ? fm->size - 1 : fm->range_end;
        }
        ej__files__file_meta__free_unpacked(fm, NULL);
        st->nchunks =
            st->last >= st->first ? ((uint64_t)(st->last - st->first) / st->read_size) + 1 : 0;
        wake(st);
}

static void on_read_reply(struct gw_stream *st, natsMsg *m, uint64_t k)
{
        size_t slot = (size_t)(k % GW_STREAM_READ_WINDOW);
        const uint8_t *p;
        size_t n;
        long long off = st->first + (long long)(k * st->read_size);
        long long want = st->last + 1 - off;

        if (want > (long long)st->read_size)
                want = st->read_size;
        if (st->reads_out > 0)
                st->reads_out--;
        if (st->reads_out == 0)
                st->deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                fail_reply(st, m, "files");
                natsMsg_Destroy(m);
                return;
        }
        if (!file_data_view((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                            &p, &n) ||
            (long long)n != want || st->ring[slot]) {
                fail(st, EJ_ERR_INTERNAL, "the files service sent a bad read of chunk %" PRIu64, k);
                natsMsg_Destroy(m);
                return;
        }
        st->ring[slot] = m;
        st->ring_k[slot] = k;
        st->ring_p[slot] = p;
        st->ring_n[slot] = n;
        wake(st);
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        struct gw_streams *ss = closure;
        const char *subj = natsMsg_GetSubject(m);
        const char *p;
        char *end = NULL;
        uint64_t sid, n = 0;
        char tag;
        struct gw_stream *st;
        bool keep = false;

        (void)nc;
        (void)sub;
        if (subj == NULL || strncmp(subj, ss->prefix, ss->prefix_n) != 0 ||
            subj[ss->prefix_n] != '.')
                goto out;
        p = subj + ss->prefix_n + 1;
        sid = strtoull(p, &end, 10);
        if (end == p || *end != '.')
                goto out;
        tag = end[1];
        if (tag == '\0')
                goto out;
        n = strtoull(end + 2, NULL, 10);
        st = lookup(ss, sid);
        if (st == NULL) {
                /* The client left while begin was in flight: tell the replica to drop it. */
                if (tag == TAG_BEGIN && ej_bus_reply_status(m, NULL) == EJ_OK) {
                        Ej__Files__UploadBeginReply *r = ej__files__upload_begin_reply__unpack(
                            NULL, (size_t)natsMsg_GetDataLength(m),
                            (const uint8_t *)natsMsg_GetData(m));

                        if (r && r->chunk_subject && r->chunk_subject[0]) {
                                Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
                                Ej__Files__UploadAbort a = EJ__FILES__UPLOAD_ABORT__INIT;
                                uint8_t buf[128];
                                size_t len;

                                a.reason = (char *)(uintptr_t) "client went away";
                                f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_ABORT;
                                f.abort = &a;
                                len = ej__files__upload_frame__pack(&f, buf);
                                natsConnection_Publish(ss->nc, r->chunk_subject, buf, (int)len);
                        }
                        if (r)
                                ej__files__upload_begin_reply__free_unpacked(r, NULL);
                }
                goto out;
        }
        pthread_mutex_lock(&st->mu);
        /* Reads keep coming after a download's response was queued. */
        if (st->req && (!st->responded || tag == TAG_READ)) {
                switch (tag) {
                case TAG_AUTH:
                        on_auth_reply(st, m);
                        break;
                case TAG_BEGIN:
                        on_begin_reply(st, m);
                        break;
                case TAG_CHUNK:
                        on_chunk_reply(st, m, n);
                        break;
                case TAG_COMMIT:
                        on_commit_reply(st, m);
                        keep = st->commit_reply == m;
                        break;
                case TAG_OPEN:
                        on_open_reply(st, m);
                        keep = true; /* kept or destroyed by on_open_reply */
                        break;
                case TAG_READ:
                        on_read_reply(st, m, n);
                        keep = true;
                        break;
                default:
                        break;
                }
        }
        pthread_mutex_unlock(&st->mu);
        stream_unref(st);
out:
        if (!keep)
                natsMsg_Destroy(m);
}

/* --- the sweeper --- */

static void *sweeper_main(void *arg)
{
        struct gw_streams *ss = arg;
        const struct timespec tick = {0, SWEEP_EVERY_MS * 1000000L};

        while (!atomic_load(&ss->stop)) {
                long long now;
                bool connected;

                nanosleep(&tick, NULL);
                now = ej_mono_ms();
                connected = ej_bus_connected(ss->gw->bus);
                pthread_mutex_lock(&ss->mu);
                for (size_t b = 0; b < TABLE_BUCKETS; b++) {
                        for (struct gw_stream *st = ss->buckets[b]; st; st = st->next) {
                                pthread_mutex_lock(&st->mu);
                                if (st->req && !st->failed && st->deadline_ms) {
                                        if (!connected)
                                                fail(st, EJ_ERR_UNAVAILABLE,
                                                     "the message bus is not available");
                                        else if (now > st->deadline_ms)
                                                fail(st, EJ_ERR_TIMEOUT,
                                                     "the files service did not answer in time");
                                }
                                pthread_mutex_unlock(&st->mu);
                        }
                }
                pthread_mutex_unlock(&ss->mu);
        }
        return NULL;
}

/* --- uploads --- */

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
        struct gw_stream *st = cls;

        (void)kind;
        (void)transfer_encoding;
        if (key == NULL)
                return MHD_YES;
        if (strcmp(key, "file") == 0) {
                if (st->file_done || (st->file_seen && off != st->file_bytes)) {
                        st->multi_file = true; /* a second file part */
                        return MHD_YES;
                }
                if (!st->file_seen) {
                        st->file_seen = true;
                        free(st->filename);
                        st->filename = dup_or_null(filename);
                        free(st->ctype_hint);
                        st->ctype_hint = dup_or_null(content_type);
                        ensure_buf(st);
                }
                if (size > 0) {
                        if (FRAME_HDR + st->buf_n + size > st->buf_cap) {
                                /* PP_SLACK is kept free before each feed; this is a bug guard. */
                                st->buf = xrealloc(st->buf, FRAME_HDR + st->buf_n + size);
                                st->buf_cap = FRAME_HDR + st->buf_n + size;
                        }
                        memcpy(st->buf + FRAME_HDR + st->buf_n, data, size);
                        st->buf_n += size;
                        st->file_bytes += size;
                }
                return MHD_YES;
        }
        if (st->file_seen)
                st->file_done = true;
        if (strcmp(key, "kind") == 0 && !st->file_seen) {
                if (off + size >= FIELD_MAX)
                        return MHD_YES;
                memcpy(st->field + off, data, size);
                st->field_n = (size_t)off + size;
                st->field[st->field_n] = '\0';
                free(st->kind);
                st->kind = xstrdup(st->field);
        }
        return MHD_YES;
}

/* Takes body bytes: returns how many were consumed. Caller holds mu. */
static size_t absorb(struct gw_stream *st, const char *data, size_t n)
{
        size_t used = 0;

        if (!st->multipart) {
                if (!st->begun)
                        return 0;
                while (used < n) {
                        size_t room, k;

                        pump(st);
                        if (st->failed)
                                return n;
                        room = st->chunk_size -
                               (st->buf_n < st->chunk_size ? st->buf_n : st->chunk_size);
                        if (room == 0)
                                break;
                        k = n - used < room ? n - used : room;
                        memcpy(st->buf + FRAME_HDR + st->buf_n, data + used, k);
                        st->buf_n += k;
                        used += k;
                }
                pump(st);
                return used;
        }
        while (used < n) {
                size_t limit = st->buf_cap ? st->buf_cap : FRAME_HDR + DEFAULT_CHUNK + PP_SLACK;
                size_t room, k;

                pump(st);
                if (st->failed)
                        return n;
                if (FRAME_HDR + st->buf_n + PP_SLACK >= limit)
                        break;
                room = limit - FRAME_HDR - st->buf_n - PP_SLACK;
                k = n - used < room ? n - used : room;
                if (MHD_post_process(st->pp, data + used, k) != MHD_YES) {
                        fail(st, EJ_ERR_INVALID, "the multipart body is malformed");
                        return n;
                }
                used += k;
                maybe_begin(st);
                if (st->failed)
                        return n;
        }
        pump(st);
        return used;
}

/* The request body is complete: flush, commit, answer. Caller holds mu. */
static enum MHD_Result upload_finish(struct gw_stream *st)
{
        if (st->multipart && st->pp && !st->failed) {
                MHD_destroy_post_processor(st->pp);
                st->pp = NULL;
                if (!st->file_seen)
                        fail(st, EJ_ERR_INVALID, "the form has no \"file\" field");
                else if (st->multi_file)
                        fail(st, EJ_ERR_INVALID, "send one file per request");
                else
                        maybe_begin(st);
        }
        if (st->failed)
                return queue_error(st, st->fail.status, st->fail.msg, st->fail.field);
        if (!st->begun) {
                hold(st);
                return MHD_YES;
        }
        while (st->buf_n > 0 && window_open(st))
                if (!send_chunk(st, st->buf_n < st->chunk_size ? st->buf_n : st->chunk_size))
                        break;
        if (st->failed)
                return queue_error(st, st->fail.status, st->fail.msg, st->fail.field);
        if (st->buf_n > 0 || st->acked < st->next_seq) {
                hold(st);
                return MHD_YES;
        }
        if (!st->commit_sent) {
                Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
                Ej__Files__UploadCommit c = EJ__FILES__UPLOAD_COMMIT__INIT;

                c.total_chunks = st->next_seq;
                c.total_size = st->sent_bytes;
                f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_COMMIT;
                f.commit = &c;
                st->commit_sent = true;
                if (!send_req(st, st->chunk_subject, TAG_COMMIT, 0, &f.base))
                        return queue_error(st, st->fail.status, st->fail.msg, NULL);
                hold(st);
                return MHD_YES;
        }
        if (st->commit_reply == NULL) {
                hold(st);
                return MHD_YES;
        } else {
                struct ej_buf body;
                Ej__Files__FileInfo *fi = ej__files__file_info__unpack(
                    NULL, (size_t)natsMsg_GetDataLength(st->commit_reply),
                    (const uint8_t *)natsMsg_GetData(st->commit_reply));
                char location[200];
                enum MHD_Result ret;

                if (fi == NULL)
                        return queue_error(st, EJ_ERR_INTERNAL,
                                           "the files service sent a bad file description", NULL);
                ej_buf_init(&body);
                ej_pbjson_encode(&fi->base, EJ_PBJSON_EMIT_DEFAULTS, NULL, &body);
                snprintf(location, sizeof(location), "/api/files/%s", fi->id ? fi->id : "");
                ej__files__file_info__free_unpacked(fi, NULL);
                ret = queue_json(st, 201, &body, location);
                ej_buf_free(&body);
                return ret;
        }
}

static enum MHD_Result upload_call(struct gw_stream *st, const char *data, size_t *size)
{
        enum MHD_Result ret = MHD_YES;

        pthread_mutex_lock(&st->mu);
        if (st->responded) {
                *size = 0;
        } else if (st->first_again && *size == 0) {
                /* The repeated first call: the body has not been read yet. */
                if (st->failed)
                        ret = queue_error(st, st->fail.status, st->fail.msg, st->fail.field);
                else if (st->authed && (st->begun || st->multipart))
                        st->first_again = false;
                else
                        hold(st);
        } else if (*size > 0) {
                st->first_again = false;
                if (st->failed) {
                        *size = 0; /* dropped: the answer is the failure */
                } else {
                        size_t used = absorb(st, data, *size);

                        *size -= used;
                        if (st->failed)
                                *size = 0;
                        else if (*size > 0)
                                hold(st); /* window full or begin pending: the ack resumes */
                }
        } else {
                ret = upload_finish(st);
        }
        pthread_mutex_unlock(&st->mu);
        return ret;
}

/* --- downloads --- */

static bool parse_range(struct gw_stream *st, const char *h)
{
        const char *p;
        char *end;
        long long a = -1, b = -1;

        if (h == NULL || strncasecmp(h, "bytes=", 6) != 0)
                return false;
        p = h + 6;
        while (*p == ' ')
                p++;
        if (strchr(p, ','))
                return false; /* several ranges: the whole file (stream.h) */
        if (*p == '-') {
                long long n = strtoll(p + 1, &end, 10);

                if (end == p + 1 || *end != '\0' || n < 0)
                        return false;
                st->range_start = -1;
                st->range_end = -1;
                st->range_suffix = n;
                if (n == 0) { /* "bytes=-0" is unsatisfiable */
                        st->range_start = 1;
                        st->range_end = 0;
                        st->range_suffix = 0;
                }
                return true;
        }
        if (*p < '0' || *p > '9')
                return false;
        a = strtoll(p, &end, 10);
        if (*end != '-')
                return false;
        p = end + 1;
        if (*p) {
                if (*p < '0' || *p > '9')
                        return false;
                b = strtoll(p, &end, 10);
                if (*end != '\0' || b < a)
                        return false;
        }
        st->range_start = a;
        st->range_end = b;
        st->range_suffix = 0;
        return true;
}

static ssize_t read_body(void *cls, uint64_t pos, char *out, size_t max)
{
        struct gw_stream *st = cls;
        uint64_t k = pos / st->read_size;
        size_t slot = (size_t)(k % GW_STREAM_READ_WINDOW);
        ssize_t ret;

        pthread_mutex_lock(&st->mu);
        if (st->failed || st->req == NULL) {
                ret = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (st->ring[slot] && st->ring_k[slot] == k) {
                size_t off = (size_t)(pos - k * st->read_size);
                size_t n = st->ring_n[slot] - off;

                if (n > max)
                        n = max;
                memcpy(out, st->ring_p[slot] + off, n);
                if (off + n == st->ring_n[slot]) {
                        natsMsg_Destroy(st->ring[slot]);
                        st->ring[slot] = NULL;
                        if (st->next_read < st->nchunks)
                                send_read(st, st->next_read++);
                }
                ej_counter_add(st->ss->bytes_down, (double)n);
                ret = (ssize_t)n;
        } else {
                hold(st); /* the reply resumes */
                ret = 0;
        }
        pthread_mutex_unlock(&st->mu);
        return ret;
}

static void read_done(void *cls)
{
        stream_unref(cls);
}

/* The attachment's name: ASCII fallback and RFC 5987 form. */
static const char *disposition(struct ej_arena *a, const char *kind, const char *name)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = name ? strlen(name) : 0;
        char *ascii, *enc;
        size_t ai = 0, ei = 0;

        if (n == 0 || n > 1024) {
                name = "download";
                n = strlen(name);
        }
        ascii = ej_arena_alloc(a, n + 1);
        enc = ej_arena_alloc(a, 3 * n + 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c);

                ascii[ai++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%' &&
                               c != ';' && c != '/')
                                  ? (char)c
                                  : '_';
                if (plain && c != 0) {
                        enc[ei++] = (char)c;
                } else {
                        enc[ei++] = '%';
                        enc[ei++] = hex[c >> 4];
                        enc[ei++] = hex[c & 15];
                }
        }
        ascii[ai] = '\0';
        enc[ei] = '\0';
        return ej_arena_printf(a, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii, enc);
}

static bool etag_matches(const char *inm, const char *sha)
{
        size_t n = strlen(sha);

        if (inm == NULL || n == 0)
                return false;
        if (strcmp(inm, "*") == 0)
                return true;
        for (const char *p = strstr(inm, sha); p; p = strstr(p + 1, sha))
                if (p > inm && p[-1] == '"' && p[n] == '"')
                        return true;
        return false;
}

static enum MHD_Result download_respond(struct gw_stream *st)
{
        struct gw_req *req = st->req;
        Ej__Files__FileMeta *fm;
        struct MHD_Response *r;
        char etag[80], crange[96];
        unsigned status;
        long long len = st->last - st->first + 1;
        const char *ct;

        fm = ej__files__file_meta__unpack(NULL, (size_t)natsMsg_GetDataLength(st->open_reply),
                                          (const uint8_t *)natsMsg_GetData(st->open_reply));
        if (fm == NULL)
                return queue_error(st, EJ_ERR_INTERNAL, "bad file metadata", NULL);
        snprintf(etag, sizeof(etag), "\"%s\"", fm->sha256 ? fm->sha256 : "");
        if (etag_matches(st->inm, fm->sha256 ? fm->sha256 : "")) {
                r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                    MHD_RESPMEM_PERSISTENT);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
                ej__files__file_meta__free_unpacked(fm, NULL);
                return queue_resp(st, 304, r);
        }
        if (fm->range_unsatisfiable) {
                struct gw_out out = {0};

                snprintf(crange, sizeof(crange), "bytes */%lld", (long long)fm->size);
                gw_out_error(&out, req, EJ_ERR_INVALID, "the range is not satisfiable", NULL);
                size_t n = out.body.n;

                r = MHD_create_response_from_buffer(n, ej_buf_steal(&out.body),
                                                    MHD_RESPMEM_MUST_FREE);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "application/json; charset=utf-8");
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
                ej__files__file_meta__free_unpacked(fm, NULL);
                return queue_resp(st, 416, r);
        }
        if (len <= 0) {
                r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                    MHD_RESPMEM_PERSISTENT);
        } else if (st->head) {
                /* MHD sends no body for HEAD; the reader only gives the length. */
                r = MHD_create_response_from_callback((uint64_t)len, READER_BLOCK, read_body, st,
                                                      read_done);
                if (r)
                        atomic_fetch_add(&st->refs, 1);
        } else {
                r = MHD_create_response_from_callback((uint64_t)len, READER_BLOCK, read_body, st,
                                                      read_done);
                if (r) {
                        atomic_fetch_add(&st->refs, 1);
                        while (st->next_read < st->nchunks && st->next_read < GW_STREAM_READ_WINDOW)
                                send_read(st, st->next_read++);
                }
        }
        if (r == NULL) {
                ej__files__file_meta__free_unpacked(fm, NULL);
                return MHD_NO;
        }
        ct =
            fm->content_type && fm->content_type[0] ? fm->content_type : "application/octet-stream";
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
        MHD_add_response_header(
            r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
            disposition(req->arena,
                        fm->disposition && strcmp(fm->disposition, "inline") == 0 ? "inline"
                                                                                  : "attachment",
                        fm->name));
        status = 200;
        if (fm->partial) {
                snprintf(crange, sizeof(crange), "bytes %lld-%lld/%lld", st->first, st->last,
                         (long long)fm->size);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
                status = 206;
        }
        ej__files__file_meta__free_unpacked(fm, NULL);
        return queue_resp(st, status, r);
}

static enum MHD_Result download_call(struct gw_stream *st, size_t *size)
{
        enum MHD_Result ret = MHD_YES;

        *size = 0;
        pthread_mutex_lock(&st->mu);
        if (st->responded)
                ;
        else if (st->failed)
                ret = queue_error(st, st->fail.status, st->fail.msg, st->fail.field);
        else if (st->open_reply)
                ret = download_respond(st);
        else
                hold(st);
        pthread_mutex_unlock(&st->mu);
        return ret;
}

/* --- entry points --- */

static struct gw_stream *stream_new(struct gw_req *req)
{
        struct gw_streams *ss = req->gw->streams;
        struct gw_stream *st = xcalloc(1, sizeof(*st));
        size_t b;

        st->ss = ss;
        st->req = req;
        st->conn = req->conn;
        atomic_init(&st->refs, 1);
        pthread_mutex_init(&st->mu, NULL);
        snprintf(st->rid, sizeof(st->rid), "%s", req->rid);
        st->declared = -1;
        st->sid = atomic_fetch_add(&ss->next_sid, 1) + 1;
        b = st->sid & (TABLE_BUCKETS - 1);
        pthread_mutex_lock(&ss->mu);
        st->next = ss->buckets[b];
        ss->buckets[b] = st;
        pthread_mutex_unlock(&ss->mu);
        req->stream = st;
        return st;
}

/* Session from the cookie: true when known now (cached or none); false when authenticate went
 * out. Caller holds mu. */
static bool resolve_session(struct gw_stream *st, bool required)
{
        struct gw_req *req = st->req;
        struct gw_principal p;
        const char *tok =
            MHD_lookup_connection_value(st->conn, MHD_COOKIE_KIND, req->gw->cfg->cookie_name);
        char hash[EJ_SHA256_HEX_LEN];

        if (tok == NULL || tok[0] == '\0' || strlen(tok) > 512) {
                if (required)
                        fail(st, EJ_ERR_UNAUTHENTICATED, "sign in first");
                st->authed = !required;
                return true;
        }
        ej_sha256_hex(tok, strlen(tok), hash);
        if (gw_sessions_get(req->gw->sessions, hash, req->arena, &p)) {
                st->user_id = xstrdup(p.user_id);
                st->roles = dup_or_null(p.roles);
                st->consent_required = p.consent_required;
                st->authed = true;
                return true;
        }
        st->token = xstrdup(tok);
        send_auth(st);
        return false;
}

static enum MHD_Result first_call(struct gw_req *req)
{
        struct gw_stream *st = stream_new(req);
        struct MHD_Connection *c = req->conn;
        enum MHD_Result ret = MHD_YES;

        pthread_mutex_lock(&st->mu);
        if (req->route->stream == GW_STREAM_UPLOAD) {
                const char *ct = hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
                const char *cl = hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);

                st->dir = DIR_UPLOAD;
                st->kind = dup_or_null(arg(c, "kind"));
                st->filename = dup_or_null(arg(c, "name"));
                st->declared = cl ? strtoll(cl, NULL, 10) : -1;
                if (req->method_bit == GW_POST) {
                        st->multipart = true;
                        if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) {
                                fail(st, EJ_ERR_UNSUPPORTED,
                                     "POST a multipart/form-data form (or PUT the raw file)");
                                goto out;
                        }
                        st->pp = MHD_create_post_processor(c, PP_BUFFER, on_part, st);
                        if (st->pp == NULL) {
                                fail(st, EJ_ERR_INVALID, "the multipart form has no boundary");
                                goto out;
                        }
                } else {
                        st->ctype_hint = dup_or_null(ct);
                }
                if (!resolve_session(st, true) ||
                    (!st->failed && maybe_begin(st) && !st->multipart)) {
                        st->first_hold = true;
                        st->first_again = true;
                        hold(st);
                }
        } else {
                const char *range = hdr(c, MHD_HTTP_HEADER_RANGE);

                st->dir = DIR_DOWNLOAD;
                st->head = req->method_bit == GW_HEAD;
                st->file_id =
                    ej_arena_strndup(req->arena, req->params.value[0].p, req->params.value[0].n);
                st->file_id = xstrdup(st->file_id);
                st->grant = dup_or_null(arg(c, "grant"));
                st->inm = dup_or_null(hdr(c, MHD_HTTP_HEADER_IF_NONE_MATCH));
                st->has_range = parse_range(st, range);
                if (resolve_session(st, false)) {
                        Ej__Files__DownloadOpen o = EJ__FILES__DOWNLOAD_OPEN__INIT;

                        o.file_id = st->file_id;
                        o.grant = st->grant ? st->grant : (char *)(uintptr_t) "";
                        o.has_range = st->has_range;
                        o.range_start = st->range_start;
                        o.range_end = st->range_end;
                        o.range_suffix = st->range_suffix;
                        st->open_sent = true;
                        send_req(st, "ej.files.download_open", TAG_OPEN, 0, &o.base);
                }
        }
out:
        /* An error found on the first call goes out now (the body is not read). */
        if (st->failed && !st->responded && !st->suspended)
                ret = queue_error(st, st->fail.status, st->fail.msg, st->fail.field);
        pthread_mutex_unlock(&st->mu);
        return ret;
}

enum MHD_Result gw_stream_handle(struct gw_req *req, const char *upload_data,
                                 size_t *upload_data_size)
{
        struct gw_stream *st = req->stream;

        if (st == NULL)
                return first_call(req);
        if (st->dir == DIR_UPLOAD)
                return upload_call(st, upload_data, upload_data_size);
        return download_call(st, upload_data_size);
}

void gw_stream_completed(struct gw_req *req, enum MHD_RequestTerminationCode toe)
{
        struct gw_stream *st = req->stream;

        if (st == NULL)
                return;
        req->stream = NULL;
        table_remove(st->ss, st);
        pthread_mutex_lock(&st->mu);
        if (st->dir == DIR_UPLOAD && st->begun && !st->aborted && st->commit_reply == NULL)
                send_abort(st, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "request ended"
                                                                          : "client went away");
        st->req = NULL;
        st->suspended = false;
        st->deadline_ms = 0;
        for (size_t i = 0; i < GW_STREAM_READ_WINDOW; i++) {
                natsMsg_Destroy(st->ring[i]);
                st->ring[i] = NULL;
        }
        free(st->buf);
        st->buf = NULL;
        st->buf_cap = 0;
        pthread_mutex_unlock(&st->mu);
        stream_unref(st);
}

/* --- the registry --- */

enum ej_status gw_streams_create(struct gw_streams **out, struct gw *gw, struct ej_err *err)
{
        struct gw_streams *ss = xcalloc(1, sizeof(*ss));
        natsInbox *inbox = NULL;
        long v = 0, v2 = 0;
        char subj[128];
        natsStatus s;
        enum ej_status st = EJ_OK;

        ss->gw = gw;
        ss->nc = ej_bus_conn(gw->bus);
        pthread_mutex_init(&ss->mu, NULL);
        atomic_init(&ss->next_sid, 0);
        atomic_init(&ss->stop, false);
        ss->bytes_up =
            ej_metrics_counter(gw->metrics, "gateway_file_bytes_total",
                               "File bytes streamed through the gateway.", "direction=\"upload\"");
        ss->bytes_down = ej_metrics_counter(gw->metrics, "gateway_file_bytes_total",
                                            "File bytes streamed through the gateway.",
                                            "direction=\"download\"");
        ss->aborted = ej_metrics_counter(gw->metrics, "gateway_file_uploads_aborted_total",
                                         "Uploads the gateway told the files service to drop.", "");
        if ((st = ej_env_long("EJ_FILES_UPLOAD_CHUNK", DEFAULT_UPLOAD_CHUNK, 0, MAX_CHUNK, &v,
                              err)) != EJ_OK ||
            (st = ej_env_long("EJ_FILES_UPLOAD_WINDOW", DEFAULT_UPLOAD_WINDOW, 0, MAX_WINDOW, &v2,
                              err)) != EJ_OK)
                goto out_fail;
        ss->upload_chunk = (uint32_t)v;
        ss->upload_window = (uint32_t)v2;
        s = natsInbox_Create(&inbox);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create a reply inbox: %s",
                                natsStatus_GetText(s));
                goto out_fail;
        }
        snprintf(ss->prefix, sizeof(ss->prefix), "%s", (const char *)inbox);
        ss->prefix_n = strlen(ss->prefix);
        natsInbox_Destroy(inbox);
        snprintf(subj, sizeof(subj), "%s.*.*", ss->prefix);
        s = natsConnection_Subscribe(&ss->sub, ss->nc, subj, on_reply, ss);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(ss->sub, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_Flush(ss->nc);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL,
                                "cannot subscribe for file replies: %s", natsStatus_GetText(s));
                goto out_fail;
        }
        if (pthread_create(&ss->sweeper, NULL, sweeper_main, ss) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot start the stream sweeper");
                goto out_fail;
        }
        ss->sweeper_started = true;
        *out = ss;
        return EJ_OK;

out_fail:
        gw_streams_destroy(ss);
        return st;
}

void gw_streams_fail_all(struct gw_streams *ss)
{
        if (ss == NULL)
                return;
        pthread_mutex_lock(&ss->mu);
        for (size_t b = 0; b < TABLE_BUCKETS; b++) {
                for (struct gw_stream *st = ss->buckets[b]; st; st = st->next) {
                        pthread_mutex_lock(&st->mu);
                        if (st->req)
                                fail(st, EJ_ERR_UNAVAILABLE, "the gateway is shutting down");
                        wake(st);
                        pthread_mutex_unlock(&st->mu);
                }
        }
        pthread_mutex_unlock(&ss->mu);
}

void gw_streams_destroy(struct gw_streams *ss)
{
        if (ss == NULL)
                return;
        atomic_store(&ss->stop, true);
        if (ss->sweeper_started)
                pthread_join(ss->sweeper, NULL);
        if (ss->sub) {
                natsSubscription_Unsubscribe(ss->sub);
                natsSubscription_Destroy(ss->sub);
        }
        pthread_mutex_destroy(&ss->mu);
        free(ss);
}
