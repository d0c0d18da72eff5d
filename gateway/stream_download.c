/*
 * stream_download.c: file downloads; see stream_download.h. The connection's own states are
 * stream_core.h's; the download's progress is one enum dl_phase:
 *
 *   from      event                                              to
 *   NEW       a call after the first; the caller is known        OPEN
 *             (cached, or anonymous): download-open goes out
 *   NEW       the same, but the cache does not know the token    AUTH
 *   AUTH      a principal, or anonymous for a dead session       OPEN
 *   OPEN      the metadata (download-open answered)              READY
 *   READY     the next call queues the answer: with a body       SENDING
 *             (200, 206; FileRead requests go out)
 *
 * READY answered without a body (304, 416, an empty file) stays READY with the connection
 * answered. A failure (stream_core.h) can happen in every phase: before the answer it is the
 * answer, after it the content reader ends the body with an error (the connection closes).
 */
#include "stream_download.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "framing.h"
#include "files.pb-c.h"
#include "frame.h"
#include "render.h"
#include "stream_core.h"
#include "stream_http.h"
#include "upstream.h"

#define DEFAULT_CHUNK (256u << 10) /* until the service says otherwise */
#define MAX_CHUNK     (4u << 20)   /* larger chunk_size values are refused */
#define READER_BLOCK  (64u << 10)
#define READ_SUBJECT  "ej.files.read"

/* Tags of reply subjects "<inbox>.<sid>.<tag><n>". */
#define TAG_OPEN 'o'
#define TAG_READ 'r'

enum dl_phase {
        DL_NEW = 0, /* the first call parsed the request; nothing went out */
        DL_AUTH,    /* ej.users.authenticate in flight */
        DL_OPEN,    /* download-open in flight */
        DL_READY,   /* the metadata is here (open_reply) */
        DL_SENDING, /* the answer is queued; the reader pulls chunks */
};

struct download {
        struct gw_stream base; /* first: a struct gw_stream * is a struct download * */
        enum dl_phase phase;
        bool head;                    /* HEAD: the length, no body */
        const char *open_subject;     /* the route's subject (static) */
        Ej__Files__DownloadOpen open; /* built once; file_id and grant owned */
        char *inm;                    /* If-None-Match */
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

static struct download *dl_of(struct gw_stream *st)
{
        return (struct download *)(void *)st;
}

static bool failed(const struct download *dl)
{
        return dl->base.fail.status != EJ_OK;
}

/* --- sending --- */

static void send_open(struct download *dl)
{
        dl->phase = DL_OPEN;
        if (gw_stream_send(&dl->base, dl->open_subject, TAG_OPEN, 0, &dl->open.base))
                gw_stream_arm(&dl->base);
}

/* Sends the FileRead of chunk k. */
static void send_read(struct download *dl, uint64_t k)
{
        Ej__Files__FileRead r = EJ__FILES__FILE_READ__INIT;
        long long off = dl->first + (long long)(k * dl->read_size);
        long long left = dl->last + 1 - off;

        r.file_id = dl->open.file_id;
        r.grant = dl->open.grant;
        r.offset = off;
        r.length = (uint32_t)(left < (long long)dl->read_size ? left : dl->read_size);
        if (gw_stream_send(&dl->base, READ_SUBJECT, TAG_READ, k, &r.base)) {
                dl->reads_out++;
                gw_stream_arm(&dl->base);
        }
}

/* auth.c's completion (the connection is held). */
static void on_authed(struct gw_req *req, enum ej_status code)
{
        struct download *dl = dl_of(req->stream);

        pthread_mutex_lock(&dl->base.mu);
        if (code != EJ_OK) {
                struct ej_err e = {0};

                code = gw_upstream_status(req, &e);
                gw_stream_fail(&dl->base, code != EJ_OK ? code : EJ_ERR_INTERNAL, "%s", e.msg);
        } else {
                gw_stream_take_caller(&dl->base, req);
                send_open(dl);
        }
        pthread_mutex_unlock(&dl->base.mu);
}

/* --- replies --- */

static void on_open_reply(struct download *dl, natsMsg *m)
{
        Ej__Files__FileMeta *fm;

        dl->base.deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                gw_stream_fail_reply(&dl->base, m, "files");
                natsMsg_Destroy(m);
                return;
        }
        fm = ej__files__file_meta__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                          (const uint8_t *)natsMsg_GetData(m));
        if (fm == NULL) {
                gw_stream_fail(&dl->base, EJ_ERR_INTERNAL,
                               "the files service sent bad file metadata");
                natsMsg_Destroy(m);
                return;
        }
        natsMsg_Destroy(dl->open_reply);
        dl->open_reply = m;
        dl->read_size = fm->chunk_size ? fm->chunk_size : DEFAULT_CHUNK;
        if (dl->read_size > MAX_CHUNK)
                dl->read_size = MAX_CHUNK;
        if (fm->range_unsatisfiable || fm->size == 0) {
                dl->first = 0;
                dl->last = -1;
        } else {
                dl->first = fm->range_start;
                dl->last = fm->range_end < 0 ? fm->size - 1 : fm->range_end;
        }
        ej__files__file_meta__free_unpacked(fm, NULL);
        dl->nchunks =
            dl->last >= dl->first ? ((uint64_t)(dl->last - dl->first) / dl->read_size) + 1 : 0;
        dl->phase = DL_READY;
        gw_stream_wake(&dl->base);
}

static void on_read_reply(struct download *dl, natsMsg *m, uint64_t k)
{
        size_t slot = (size_t)(k % GW_STREAM_READ_WINDOW);
        const uint8_t *p;
        size_t n;
        long long off = dl->first + (long long)(k * dl->read_size);
        long long want = dl->last + 1 - off;

        if (want > (long long)dl->read_size)
                want = dl->read_size;
        if (dl->reads_out > 0)
                dl->reads_out--;
        if (dl->reads_out == 0)
                dl->base.deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                gw_stream_fail_reply(&dl->base, m, "files");
                natsMsg_Destroy(m);
                return;
        }
        if (!gw_frame_file_data((const uint8_t *)natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), &p, &n) ||
            (long long)n != want || dl->ring[slot]) {
                gw_stream_fail(&dl->base, EJ_ERR_INTERNAL,
                               "the files service sent a bad read of chunk %" PRIu64, k);
                natsMsg_Destroy(m);
                return;
        }
        dl->ring[slot] = m;
        dl->ring_k[slot] = k;
        dl->ring_p[slot] = p;
        dl->ring_n[slot] = n;
        gw_stream_wake(&dl->base);
}

static void on_reply(struct gw_stream *st, char tag, uint64_t n, natsMsg *m)
{
        struct download *dl = dl_of(st);

        /* Reads keep coming after the answer was queued. */
        if (tag == TAG_READ)
                on_read_reply(dl, m, n);
        else if (tag == TAG_OPEN && !gw_stream_answered(st))
                on_open_reply(dl, m);
        else
                natsMsg_Destroy(m);
}

/* --- the answer --- */

static ssize_t read_body(void *cls, uint64_t pos, char *out, size_t max)
{
        struct download *dl = cls;
        uint64_t k = pos / dl->read_size;
        size_t slot = (size_t)(k % GW_STREAM_READ_WINDOW);
        ssize_t ret;

        pthread_mutex_lock(&dl->base.mu);
        if (failed(dl) || dl->base.req == NULL) {
                ret = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (dl->ring[slot] && dl->ring_k[slot] == k) {
                size_t off = (size_t)(pos - k * dl->read_size);
                size_t n = dl->ring_n[slot] - off;

                if (n > max)
                        n = max;
                memcpy(out, dl->ring_p[slot] + off, n);
                if (off + n == dl->ring_n[slot]) {
                        natsMsg_Destroy(dl->ring[slot]);
                        dl->ring[slot] = NULL;
                        if (dl->next_read < dl->nchunks)
                                send_read(dl, dl->next_read++);
                }
                ej_counter_add(dl->base.ss->bytes_down, (double)n);
                ret = (ssize_t)n;
        } else {
                gw_stream_hold(&dl->base); /* the reply resumes */
                ret = 0;
        }
        pthread_mutex_unlock(&dl->base.mu);
        return ret;
}

static void read_done(void *cls)
{
        gw_stream_unref(cls);
}

static enum MHD_Result respond(struct download *dl)
{
        struct gw_req *req = dl->base.req;
        Ej__Files__FileMeta *fm;
        struct MHD_Response *r;
        char etag[80], crange[96];
        unsigned status;
        long long len = dl->last - dl->first + 1;
        const char *ct;

        fm = ej__files__file_meta__unpack(NULL, (size_t)natsMsg_GetDataLength(dl->open_reply),
                                          (const uint8_t *)natsMsg_GetData(dl->open_reply));
        if (fm == NULL) {
                struct gw_out out = {0};

                gw_out_error(&out, req, EJ_ERR_INTERNAL, "bad file metadata", NULL);
                return gw_stream_answer_out(&dl->base, &out);
        }
        snprintf(etag, sizeof(etag), "\"%s\"", fm->sha256 ? fm->sha256 : "");
        if (gw_etag_matches(dl->inm, fm->sha256 ? fm->sha256 : "")) {
                r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                    MHD_RESPMEM_PERSISTENT);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
                ej__files__file_meta__free_unpacked(fm, NULL);
                return gw_stream_answer(&dl->base, 304, r, false);
        }
        if (fm->range_unsatisfiable) {
                struct gw_out out = {0};
                size_t n;

                snprintf(crange, sizeof(crange), "bytes */%lld", (long long)fm->size);
                gw_out_error(&out, req, EJ_ERR_INVALID, "the range is not satisfiable", NULL);
                n = out.body.n;
                r = MHD_create_response_from_buffer(n, ej_buf_steal(&out.body),
                                                    MHD_RESPMEM_MUST_FREE);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "application/json; charset=utf-8");
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
                ej__files__file_meta__free_unpacked(fm, NULL);
                return gw_stream_answer(&dl->base, 416, r, true);
        }
        if (len <= 0) {
                r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                    MHD_RESPMEM_PERSISTENT);
        } else {
                /* For HEAD, MHD sends no body: the reader only gives the length. */
                r = MHD_create_response_from_callback((uint64_t)len, READER_BLOCK, read_body, dl,
                                                      read_done);
                if (r)
                        gw_stream_ref(&dl->base);
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
            gw_disposition(req->arena,
                           fm->disposition && strcmp(fm->disposition, "inline") == 0 ? "inline"
                                                                                     : "attachment",
                           fm->name));
        status = 200;
        if (fm->partial) {
                snprintf(crange, sizeof(crange), "bytes %lld-%lld/%lld", dl->first, dl->last,
                         (long long)fm->size);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
                status = 206;
        }
        ej__files__file_meta__free_unpacked(fm, NULL);
        if (len > 0 && !dl->head) {
                dl->phase = DL_SENDING;
                while (dl->next_read < dl->nchunks && dl->next_read < GW_STREAM_READ_WINDOW)
                        send_read(dl, dl->next_read++);
        }
        return gw_stream_answer(&dl->base, status, r, false);
}

/* --- the stream's events --- */

static void on_fail(struct gw_stream *st)
{
        (void)st; /* the woken connection answers, or its reader ends the body */
}

static void completed(struct gw_stream *st, enum MHD_RequestTerminationCode toe)
{
        struct download *dl = dl_of(st);

        (void)toe;
        for (size_t i = 0; i < GW_STREAM_READ_WINDOW; i++) {
                natsMsg_Destroy(dl->ring[i]);
                dl->ring[i] = NULL;
        }
}

static void destroy(struct gw_stream *st)
{
        struct download *dl = dl_of(st);

        for (size_t i = 0; i < GW_STREAM_READ_WINDOW; i++)
                natsMsg_Destroy(dl->ring[i]);
        natsMsg_Destroy(dl->open_reply);
        free(dl->open.file_id);
        free(dl->open.grant);
        free(dl->inm);
        free(dl);
}

static const struct gw_stream_ops download_ops = {
    .what = "download",
    .on_reply = on_reply,
    .on_fail = on_fail,
    .completed = completed,
    .destroy = destroy,
};

/* The first call: the request becomes a stream and its DownloadOpen; nothing goes out yet (the
 * next call, which follows at once for a request without a body, starts it). */
static enum MHD_Result first_call(struct gw_req *req)
{
        struct download *dl = xcalloc(1, sizeof(*dl));
        struct MHD_Connection *c = req->conn;
        const char *grant = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "grant");
        const char *inm = gw_header_joined(c, MHD_HTTP_HEADER_IF_NONE_MATCH, req->arena);
        Ej__Files__DownloadOpen *o = &dl->open;

        gw_stream_start(&dl->base, req, &download_ops);
        dl->head = req->method_bit == GW_HEAD;
        dl->open_subject = req->route->subject;
        dl->inm = inm ? xstrdup(inm) : NULL;
        ej__files__download_open__init(o);
        o->file_id =
            xstrdup(ej_arena_strndup(req->arena, req->params.value[0].p, req->params.value[0].n));
        o->grant = xstrdup(grant ? grant : "");
        o->has_range =
            gw_range_parse(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE),
                           &o->range_start, &o->range_end, &o->range_suffix);
        dl->base.state = GW_CONN_BODY; /* not held: MHD goes on */
        return MHD_YES;
}

enum MHD_Result gw_download_handle(struct gw_req *req, size_t *upload_data_size)
{
        struct download *dl;
        struct gw_stream *st;
        enum MHD_Result ret = MHD_YES;
        bool ask = false;

        if (req->stream == NULL)
                return first_call(req);
        st = req->stream;
        dl = dl_of(st);
        *upload_data_size = 0;
        pthread_mutex_lock(&st->mu);
        if (dl->phase == DL_NEW && !failed(dl)) {
                if (gw_auth_resolve(req, false) == GW_WHO_ASK) {
                        dl->phase = DL_AUTH;
                        ask = true;
                } else {
                        gw_stream_take_caller(st, req);
                        send_open(dl);
                }
        }
        if (gw_stream_answered(st))
                ;
        else if (failed(dl))
                ret = gw_stream_answer_failure(st);
        else if (dl->phase == DL_READY)
                ret = respond(dl);
        else
                gw_stream_hold(st); /* the reply resumes */
        pthread_mutex_unlock(&st->mu);
        /* Outside the lock: the answer may come at once, on this thread. */
        if (ask)
                gw_auth_ask(req, on_authed);
        return ret;
}
