/*
 * stream_upload.c: file uploads; see stream_upload.h. The connection's own states are
 * stream_core.h's; the upload's progress is one enum up_phase:
 *
 *   from      event                                                 to
 *   (start)   the caller is in the session cache                    AUTHED
 *   (start)   the cache does not know the token: authenticate       AUTH
 *   AUTH      a principal                                           AUTHED
 *   AUTHED    begin can go out (raw: at once; multipart: the file   BEGIN
 *             part has started, after the kind field)
 *   BEGIN     begin answered                                        SENDING
 *   SENDING   the body is complete and every chunk acknowledged     COMMIT
 *   COMMIT    commit answered                                       DONE
 *   SENDING,  an error from the service, or UploadAbort sent by us  DROPPED
 *   COMMIT    (a failure, or the client went away)
 *
 * A failure (stream_core.h) can happen in every phase; the service's side is told (UploadAbort)
 * when it holds an open upload, i.e. in SENDING and COMMIT.
 *
 * Liveness of the replica: while chunks are out, the next acknowledgement must come within
 * EJ_FILES_UPLOAD_ACK_MS (1 s) of the previous one (or of the first chunk sent into an empty
 * window). A replica writes a chunk to its temp file and answers at once, so a silence that
 * long means the replica or the bus is gone: the upload fails as unavailable (nothing was
 * stored; send it again), or, once the commit is out, as outcome_unknown, and the client is
 * answered at once, mid-body, and the connection closed (gw_stream_answer_close) instead of
 * reading the rest of the body. The multipart form's progress is
 * enum up_form. A raw upload stays in the first call's suspension until begin answers, so that
 * a refusal (401, 403, 413) goes out before the body is read; MHD then closes the connection
 * instead of reading what the client still sends.
 */
#include "stream_upload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "files.pb-c.h"
#include "frame.h"
#include "log.h"
#include "pbjson.h"
#include "render.h"
#include "session.h"
#include "upstream.h"

#define PP_BUFFER          16384        /* MHD post processor's buffer */
#define PP_SLACK           (64u << 10)  /* room kept free for what the post processor releases */
#define DEFAULT_CHUNK      (256u << 10) /* until the service says otherwise */
#define MAX_CHUNK          (4u << 20)   /* larger chunk_size values are refused */
#define MAX_WINDOW         64u
#define FIELD_MAX          256         /* small multipart fields (kind) */
#define MULTIPART_OVERHEAD (64u << 10) /* boundaries and part headers beyond the file itself */
#define DRAIN_MAX          (64u << 20) /* larger bodies are not read to answer an early error */

/* Tags of reply subjects "<inbox>.<sid>.<tag><n>". */
#define TAG_BEGIN  'b'
#define TAG_CHUNK  'c'
#define TAG_COMMIT 'm'
#define TAG_ABORT  'x'

enum up_phase {
        UP_AUTH = 0, /* ej.users.authenticate in flight */
        UP_AUTHED,   /* the principal is known; begin waits for what it needs */
        UP_BEGIN,    /* upload_begin in flight */
        UP_SENDING,  /* begun: chunks flow, at most `window` unacknowledged */
        UP_COMMIT,   /* UploadCommit in flight */
        UP_DONE,     /* committed: commit_reply holds the FileInfo */
        UP_DROPPED,  /* the service's side is gone (its error, or our abort) */
};

enum up_form {
        FORM_BEFORE_FILE = 0, /* small fields (kind) before the file part */
        FORM_IN_FILE,         /* the file part's bytes */
        FORM_AFTER_FILE,      /* another part began: the file is complete */
        FORM_SECOND_FILE,     /* a second file part: refused when the body ends */
};

struct upload {
        struct gw_stream base; /* first: a struct gw_stream * is a struct upload * */
        enum up_phase phase;
        bool multipart;            /* POST (form) rather than PUT (raw); fixed at the start */
        const char *begin_subject; /* the route's subject (static) */
        char *kind, *filename, *ctype_hint;
        long long declared; /* Content-Length, -1 unknown */
        struct MHD_PostProcessor *pp;
        enum up_form form;
        uint64_t file_bytes; /* of the "file" part so far */
        char field[FIELD_MAX];
        char *chunk_subject;
        uint32_t chunk_size, window;
        long long max_size;
        uint8_t *buf; /* GW_FRAME_HDR_MAX bytes of room, then buf_n bytes of data */
        size_t buf_n, buf_cap;
        uint64_t next_seq, acked;
        long long sent_bytes;
        natsMsg *commit_reply;
        /* A later chunk found the upload gone (echo.status != EJ_OK): see settle_echo. */
        uint64_t echo_seq;
        struct ej_err echo;
};

static struct upload *up_of(struct gw_stream *st)
{
        return (struct upload *)(void *)st;
}

static bool failed(const struct upload *up)
{
        return up->base.fail.status != EJ_OK;
}

static char *dup_or_null(const char *s)
{
        return s ? xstrdup(s) : NULL;
}

/* --- sending --- */

static void send_abort(struct upload *up, const char *reason)
{
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadAbort a = EJ__FILES__UPLOAD_ABORT__INIT;
        long long keep = up->base.deadline_ms;

        if (up->phase != UP_SENDING && up->phase != UP_COMMIT)
                return;
        up->phase = UP_DROPPED;
        a.reason = (char *)(uintptr_t)(reason ? reason : "");
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_ABORT;
        f.abort = &a;
        gw_stream_send(&up->base, up->chunk_subject, TAG_ABORT, 0, &f.base);
        up->base.deadline_ms = keep; /* nobody waits for the abort's answer */
        ej_counter_add(up->base.ss->aborted, 1);
}

static void send_begin(struct upload *up)
{
        Ej__Files__UploadBegin b = EJ__FILES__UPLOAD_BEGIN__INIT;

        b.kind = up->kind ? up->kind : (char *)(uintptr_t) "";
        b.filename = up->filename ? up->filename : (char *)(uintptr_t) "";
        b.declared_size = up->multipart ? -1 : up->declared;
        b.content_type_hint = up->ctype_hint ? up->ctype_hint : (char *)(uintptr_t) "";
        up->phase = UP_BEGIN;
        if (gw_stream_send(&up->base, up->begin_subject, TAG_BEGIN, 0, &b.base))
                gw_stream_arm(&up->base);
}

/* Sends the first `n` buffered bytes as chunk next_seq, framed in place. */
static bool send_chunk(struct upload *up, size_t n)
{
        size_t hn = gw_frame_chunk_header(up->buf, up->next_seq, n);
        const uint8_t *start = up->buf + GW_FRAME_HDR_MAX - hn;

        bool first_out = up->next_seq == up->acked;

        if (!gw_stream_send_raw(&up->base, up->chunk_subject, TAG_CHUNK, up->next_seq, start,
                                hn + n))
                return false;
        up->next_seq++;
        up->sent_bytes += (long long)n;
        if (n < up->buf_n)
                memmove(up->buf + GW_FRAME_HDR_MAX, up->buf + GW_FRAME_HDR_MAX + n, up->buf_n - n);
        up->buf_n -= n;
        /* The clock runs from the oldest unanswered chunk, not the newest. */
        if (first_out)
                gw_stream_arm_ms(&up->base, up->base.ss->gw->cfg->upload_ack_ms);
        return true;
}

static bool window_open(const struct upload *up)
{
        return up->phase == UP_SENDING && !failed(up) && up->next_seq - up->acked < up->window;
}

/* Sends every full chunk the window allows. */
static void pump(struct upload *up)
{
        while (window_open(up) && up->buf_n >= up->chunk_size)
                if (!send_chunk(up, up->chunk_size))
                        return;
}

static void ensure_buf(struct upload *up)
{
        size_t want = GW_FRAME_HDR_MAX + (up->chunk_size ? up->chunk_size : DEFAULT_CHUNK) +
                      (up->multipart ? PP_SLACK : 0);

        if (up->buf_cap < want) {
                up->buf = xrealloc(up->buf, want);
                up->buf_cap = want;
        }
}

/* Sends upload_begin once everything it needs is known. True when it went out now. */
static bool maybe_begin(struct upload *up)
{
        if (up->phase != UP_AUTHED || failed(up))
                return false;
        if (up->multipart && up->form == FORM_BEFORE_FILE)
                return false;
        if (up->kind == NULL || up->kind[0] == '\0') {
                gw_stream_fail(&up->base, EJ_ERR_INVALID,
                               up->multipart
                                   ? "say which kind of file this is (a kind field before the file)"
                                   : "say which kind of file this is (?kind=manuscript)");
                return false;
        }
        send_begin(up);
        return !failed(up);
}

/* The principal in the request is known: may it upload (consent owed, like every other piece
 * of work: routes.h)? */
static void take_principal(struct upload *up)
{
        struct gw_req *req = up->base.req;

        gw_stream_take_caller(&up->base, req);
        req->denied = gw_access_check(req);
        if (req->denied != GW_ACCESS_OK) {
                gw_stream_fail(&up->base, EJ_ERR_FORBIDDEN,
                               "accept the current consent notice first");
                return;
        }
        up->phase = UP_AUTHED;
}

/* auth.c's completion (the connection is held in the first call). */
static void on_authed(struct gw_req *req, enum ej_status code)
{
        struct upload *up = up_of(req->stream);

        pthread_mutex_lock(&up->base.mu);
        if (code != EJ_OK) {
                struct ej_err e = {0};

                code = gw_upstream_status(req, &e);
                gw_stream_fail(&up->base, code != EJ_OK ? code : EJ_ERR_UNAUTHENTICATED, "%s",
                               e.msg[0] ? e.msg : "sign in first");
        } else {
                take_principal(up);
                /* A raw upload stays in the first call's suspension until begin answers. */
                if (!(maybe_begin(up) && !up->multipart))
                        gw_stream_wake(&up->base);
        }
        pthread_mutex_unlock(&up->base.mu);
}

/* --- replies --- */

static void on_begin_reply(struct upload *up, natsMsg *m)
{
        Ej__Files__UploadBeginReply *r;
        const struct gw_config *cfg = up->base.ss->gw->cfg;

        up->base.deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                gw_stream_fail_reply(&up->base, m, "files");
                return;
        }
        r = ej__files__upload_begin_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                  (const uint8_t *)natsMsg_GetData(m));
        if (r == NULL || r->chunk_subject == NULL || r->chunk_subject[0] == '\0' ||
            r->chunk_size == 0 || r->chunk_size > MAX_CHUNK || r->window == 0) {
                if (r)
                        ej__files__upload_begin_reply__free_unpacked(r, NULL);
                gw_stream_fail(&up->base, EJ_ERR_INTERNAL,
                               "the files service sent a bad upload_begin reply");
                return;
        }
        free(up->chunk_subject);
        up->chunk_subject = xstrdup(r->chunk_subject);
        /* The service says the most it takes; the gateway may send less (memory in flight per
         * upload is chunk_size * window on the service's side). */
        up->chunk_size = r->chunk_size;
        if (cfg->upload_chunk && cfg->upload_chunk < up->chunk_size)
                up->chunk_size = cfg->upload_chunk;
        up->window = r->window < MAX_WINDOW ? r->window : MAX_WINDOW;
        if (cfg->upload_window && cfg->upload_window < up->window)
                up->window = cfg->upload_window;
        up->max_size = r->max_size;
        ej__files__upload_begin_reply__free_unpacked(r, NULL);
        up->phase = UP_SENDING;
        ensure_buf(up);
        if (up->multipart && up->max_size > 0 && up->declared > 0 &&
            up->declared > up->max_size + (long long)MULTIPART_OVERHEAD) {
                gw_stream_fail(&up->base, EJ_ERR_TOO_LARGE, "the file is larger than %lld bytes",
                               up->max_size);
                return;
        }
        pump(up);
        gw_stream_wake(&up->base);
}

/* Fails with the echo of a later chunk (an upload the service already dropped) once every
 * earlier chunk has answered: the earlier one may carry the real reason (415, 413). */
static void settle_echo(struct upload *up)
{
        if (up->echo.status != EJ_OK && up->echo_seq <= up->acked)
                gw_stream_fail(&up->base, up->echo.status, "%s", up->echo.msg);
}

static void on_chunk_reply(struct upload *up, natsMsg *m, uint64_t seq)
{
        struct ej_err e = {0};
        enum ej_status code = EJ_ERR_UNAVAILABLE;

        if (natsMsg_IsNoResponders(m))
                ej_err_set(&e, code, NULL, "the files service is not available");
        else
                code = ej_bus_reply_status(m, &e);
        if (code != EJ_OK) {
                if (up->phase == UP_SENDING || up->phase == UP_COMMIT)
                        up->phase = UP_DROPPED; /* the service dropped the upload */
                /* "No responders" and not_found are what chunks sent after the service ended
                 * the upload get; their replies can overtake the one that says why. */
                if ((code == EJ_ERR_UNAVAILABLE || code == EJ_ERR_NOT_FOUND) && seq > up->acked) {
                        if (up->echo.status == EJ_OK || seq < up->echo_seq) {
                                up->echo_seq = seq;
                                up->echo = e;
                                up->echo.status = code;
                        }
                        return;
                }
                gw_stream_fail(&up->base, code, "%s", e.msg[0] ? e.msg : ej_status_name(code));
                return;
        }
        if (seq + 1 > up->acked)
                up->acked = seq + 1;
        settle_echo(up);
        if (failed(up))
                return;
        if (up->next_seq == up->acked && up->phase != UP_COMMIT)
                up->base.deadline_ms = 0;
        else if (up->phase != UP_COMMIT)
                gw_stream_arm_ms(&up->base, up->base.ss->gw->cfg->upload_ack_ms);
        pump(up);
        gw_stream_wake(&up->base);
}

/* Keeps `m` when it is the FileInfo of a commit. */
static bool on_commit_reply(struct upload *up, natsMsg *m)
{
        up->base.deadline_ms = 0;
        if (natsMsg_IsNoResponders(m) || ej_bus_reply_status(m, NULL) != EJ_OK) {
                up->phase = UP_DROPPED;
                gw_stream_fail_reply(&up->base, m, "files");
                return false;
        }
        up->commit_reply = m;
        up->phase = UP_DONE; /* committed: nothing to abort any more */
        ej_counter_add(up->base.ss->bytes_up, (double)up->sent_bytes);
        gw_stream_wake(&up->base);
        return true;
}

static void on_reply(struct gw_stream *st, char tag, uint64_t n, natsMsg *m)
{
        struct upload *up = up_of(st);
        bool keep = false;

        if (!gw_stream_answered(st)) {
                switch (tag) {
                case TAG_BEGIN:
                        on_begin_reply(up, m);
                        break;
                case TAG_CHUNK:
                        on_chunk_reply(up, m, n);
                        break;
                case TAG_COMMIT:
                        keep = on_commit_reply(up, m);
                        break;
                default:
                        break;
                }
        }
        if (!keep)
                natsMsg_Destroy(m);
}

void gw_upload_orphan(struct gw_streams *ss, char tag, natsMsg *m)
{
        Ej__Files__UploadBeginReply *r;

        /* The client left while begin was in flight: tell the replica to drop it. */
        if (tag != TAG_BEGIN || ej_bus_reply_status(m, NULL) != EJ_OK)
                return;
        r = ej__files__upload_begin_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
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

/* --- the body --- */

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
        struct upload *up = cls;

        (void)kind;
        (void)transfer_encoding;
        if (key == NULL)
                return MHD_YES;
        if (strcmp(key, "file") == 0) {
                if (up->form == FORM_AFTER_FILE || up->form == FORM_SECOND_FILE ||
                    (up->form == FORM_IN_FILE && off != up->file_bytes)) {
                        up->form = FORM_SECOND_FILE;
                        return MHD_YES;
                }
                if (up->form == FORM_BEFORE_FILE) {
                        up->form = FORM_IN_FILE;
                        free(up->filename);
                        up->filename = dup_or_null(filename);
                        free(up->ctype_hint);
                        up->ctype_hint = dup_or_null(content_type);
                        ensure_buf(up);
                }
                if (size > 0) {
                        if (GW_FRAME_HDR_MAX + up->buf_n + size > up->buf_cap) {
                                /* PP_SLACK is kept free before each feed; this is a bug guard. */
                                up->buf = xrealloc(up->buf, GW_FRAME_HDR_MAX + up->buf_n + size);
                                up->buf_cap = GW_FRAME_HDR_MAX + up->buf_n + size;
                        }
                        memcpy(up->buf + GW_FRAME_HDR_MAX + up->buf_n, data, size);
                        up->buf_n += size;
                        up->file_bytes += size;
                }
                return MHD_YES;
        }
        if (up->form == FORM_IN_FILE)
                up->form = FORM_AFTER_FILE;
        if (strcmp(key, "kind") == 0 && up->form == FORM_BEFORE_FILE) {
                if (off + size >= FIELD_MAX || memchr(data, '\0', size) != NULL) {
                        /* Refused whole: the value may arrive in pieces, and its first ones
                         * must not pass for all of it; nor what comes before a NUL. */
                        free(up->kind);
                        up->kind = NULL;
                        gw_stream_fail(&up->base, EJ_ERR_INVALID,
                                       off + size >= FIELD_MAX ? "the kind field is too long"
                                                               : "the kind field holds a NUL byte");
                        return MHD_YES;
                }
                memcpy(up->field + off, data, size);
                up->field[off + size] = '\0';
                free(up->kind);
                up->kind = xstrdup(up->field);
        }
        return MHD_YES;
}

/* Takes body bytes: returns how many were consumed. */
static size_t absorb(struct upload *up, const char *data, size_t n)
{
        size_t used = 0;

        if (!up->multipart) {
                if (up->phase < UP_SENDING)
                        return 0;
                while (used < n) {
                        size_t room, k;

                        pump(up);
                        if (failed(up))
                                return n;
                        room = up->chunk_size -
                               (up->buf_n < up->chunk_size ? up->buf_n : up->chunk_size);
                        if (room == 0)
                                break;
                        k = n - used < room ? n - used : room;
                        memcpy(up->buf + GW_FRAME_HDR_MAX + up->buf_n, data + used, k);
                        up->buf_n += k;
                        used += k;
                }
                pump(up);
                return used;
        }
        while (used < n) {
                size_t limit =
                    up->buf_cap ? up->buf_cap : GW_FRAME_HDR_MAX + DEFAULT_CHUNK + PP_SLACK;
                size_t room, k;

                pump(up);
                if (failed(up))
                        return n;
                if (GW_FRAME_HDR_MAX + up->buf_n + PP_SLACK >= limit)
                        break;
                room = limit - GW_FRAME_HDR_MAX - up->buf_n - PP_SLACK;
                k = n - used < room ? n - used : room;
                if (MHD_post_process(up->pp, data + used, k) != MHD_YES) {
                        gw_stream_fail(&up->base, EJ_ERR_INVALID,
                                       "the multipart body is malformed");
                        return n;
                }
                used += k;
                maybe_begin(up);
                if (failed(up))
                        return n;
        }
        pump(up);
        return used;
}

static enum MHD_Result answer_file_info(struct upload *up)
{
        struct gw_out out = {0};
        Ej__Files__FileInfo *fi =
            ej__files__file_info__unpack(NULL, (size_t)natsMsg_GetDataLength(up->commit_reply),
                                         (const uint8_t *)natsMsg_GetData(up->commit_reply));
        enum MHD_Result ret;

        if (fi == NULL) {
                gw_out_error(&out, up->base.req, EJ_ERR_INTERNAL,
                             "the files service sent a bad file description", NULL);
                return gw_stream_answer_out(&up->base, &out);
        }
        out.status = 201;
        ej_pbjson_encode(&fi->base, EJ_PBJSON_EMIT_DEFAULTS, NULL, &out.body);
        out.location = ej_arena_printf(up->base.req->arena, "/api/files/%s", fi->id ? fi->id : "");
        ej__files__file_info__free_unpacked(fi, NULL);
        ret = gw_stream_answer_out(&up->base, &out);
        ej_buf_free(&out.body);
        return ret;
}

/* The request body is complete: flush, commit, answer. */
static enum MHD_Result finish(struct upload *up)
{
        if (up->multipart && up->pp && !failed(up)) {
                /* MHD_NO: the body ended inside a part (no closing boundary); the post processor
                 * still holds the last bytes it could not tell from a boundary, so the file
                 * would be stored cut short. */
                bool complete = MHD_destroy_post_processor(up->pp) == MHD_YES;

                up->pp = NULL;
                if (!complete)
                        gw_stream_fail(&up->base, EJ_ERR_INVALID,
                                       "the multipart body ends before its closing boundary");
                else if (up->form == FORM_BEFORE_FILE)
                        gw_stream_fail(&up->base, EJ_ERR_INVALID, "the form has no \"file\" field");
                else if (up->form == FORM_SECOND_FILE)
                        gw_stream_fail(&up->base, EJ_ERR_INVALID, "send one file per request");
                else
                        maybe_begin(up);
        }
        if (failed(up))
                return gw_stream_answer_failure(&up->base);
        while (up->buf_n > 0 && window_open(up))
                if (!send_chunk(up, up->buf_n < up->chunk_size ? up->buf_n : up->chunk_size))
                        break;
        if (failed(up))
                return gw_stream_answer_failure(&up->base);
        if (up->phase == UP_SENDING && up->buf_n == 0 && up->acked == up->next_seq) {
                Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
                Ej__Files__UploadCommit c = EJ__FILES__UPLOAD_COMMIT__INIT;

                c.total_chunks = up->next_seq;
                c.total_size = up->sent_bytes;
                f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_COMMIT;
                f.commit = &c;
                up->phase = UP_COMMIT;
                if (!gw_stream_send(&up->base, up->chunk_subject, TAG_COMMIT, 0, &f.base))
                        return gw_stream_answer_failure(&up->base);
                gw_stream_arm(&up->base);
        }
        if (up->phase == UP_DONE)
                return answer_file_info(up);
        /* Begin, acknowledgements or the commit are awaited: their replies resume. */
        gw_stream_hold(&up->base);
        return MHD_YES;
}

/* True when a failure is the service's side's: the client's answer does not depend on the rest
 * of the body, so reading it would only delay the answer (see gw_stream_answer_close). */
static bool answer_mid_body(const struct upload *up)
{
        switch (up->base.fail.status) {
        case EJ_ERR_UNAVAILABLE:
        case EJ_ERR_TIMEOUT:
        case EJ_ERR_OUTCOME_UNKNOWN:
        case EJ_ERR_INTERNAL:
                return up->base.state == GW_CONN_BODY;
        default:
                return false;
        }
}

/* A call after the first one. */
static enum MHD_Result next_call(struct upload *up, const char *data, size_t *size)
{
        struct gw_stream *st = &up->base;

        if (gw_stream_answered(st)) {
                *size = 0;
                return MHD_YES;
        }
        if (st->state == GW_CONN_FIRST && *size == 0) {
                /* The first call repeated after its suspension: the body has not been read. */
                if (failed(up))
                        return gw_stream_answer_failure(st);
                if (up->phase != UP_AUTH && (up->phase >= UP_SENDING || up->multipart))
                        st->state = GW_CONN_BODY;
                else
                        gw_stream_hold(st);
                return MHD_YES;
        }
        if (*size == 0)
                return finish(up);
        st->state = GW_CONN_BODY;
        if (failed(up)) {
                if (answer_mid_body(up))
                        return gw_stream_answer_close(st);
                *size = 0; /* dropped: the answer is the failure */
        } else {
                size_t used = absorb(up, data, *size);

                *size -= used;
                if (failed(up) && answer_mid_body(up))
                        return gw_stream_answer_close(st);
                if (failed(up))
                        *size = 0;
                else if (*size > 0)
                        gw_stream_hold(st); /* window full or begin pending: the ack resumes */
        }
        return MHD_YES;
}

static void on_fail(struct gw_stream *st)
{
        struct upload *up = up_of(st);

        send_abort(up, st->fail.msg);
        /* Still in the first call's suspension: the answer can go out before the body is read
         * (MHD then closes the connection instead of reading what the client still sends). */
        if (st->state == GW_CONN_FIRST_HELD && st->req)
                gw_stream_answer_failure(st);
}

/* No acknowledgement (or answer) in time, or the bus is gone: see the top of this file. */
static void on_late(struct gw_stream *st, bool bus_lost)
{
        struct upload *up = up_of(st);

        if (up->phase == UP_COMMIT)
                gw_stream_fail(st, EJ_ERR_OUTCOME_UNKNOWN,
                               "%s before the files service confirmed the upload; it may or may "
                               "not be stored",
                               bus_lost ? "the message bus was lost" : "no answer came in time");
        else
                gw_stream_fail(st, EJ_ERR_UNAVAILABLE,
                               "%s during the upload; nothing was stored, send the file again",
                               bus_lost ? "the message bus was lost"
                                        : "the files service stopped answering");
}

static void completed(struct gw_stream *st, enum MHD_RequestTerminationCode toe)
{
        struct upload *up = up_of(st);

        send_abort(up, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "request ended"
                                                                  : "client went away");
        free(up->buf);
        up->buf = NULL;
        up->buf_cap = 0;
}

static void destroy(struct gw_stream *st)
{
        struct upload *up = up_of(st);

        natsMsg_Destroy(up->commit_reply);
        if (up->pp)
                MHD_destroy_post_processor(up->pp);
        free(up->buf);
        free(up->kind);
        free(up->filename);
        free(up->ctype_hint);
        free(up->chunk_subject);
        free(up);
}

static const struct gw_stream_ops upload_ops = {
    .what = "upload",
    .on_reply = on_reply,
    .on_fail = on_fail,
    .on_late = on_late,
    .completed = completed,
    .destroy = destroy,
};

/*
 * Answering on the first call makes MHD close the connection unread, and a client still
 * writing its body gets EPIPE/ECONNRESET instead of the answer (the JSON routes' rule, http.c).
 * So an error known before the body goes out at once only when the client waits for "100
 * Continue" (it has sent nothing yet) or announced a body too large to be worth reading.
 */
static bool refuse_at_once(const struct upload *up, struct MHD_Connection *c)
{
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");

        return (expect && strcasecmp(expect, "100-continue") == 0) ||
               up->declared > (long long)DRAIN_MAX;
}

static enum MHD_Result first_call(struct gw_req *req)
{
        struct upload *up = xcalloc(1, sizeof(*up));
        struct gw_stream *st = &up->base;
        struct MHD_Connection *c = req->conn;
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        enum MHD_Result ret = MHD_YES;
        bool ask = false;

        gw_stream_start(st, req, &upload_ops);
        pthread_mutex_lock(&st->mu);
        up->begin_subject = req->route->subject;
        up->kind = dup_or_null(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind"));
        up->filename = dup_or_null(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name"));
        up->declared = cl ? strtoll(cl, NULL, 10) : -1;
        up->multipart = req->method_bit == GW_POST;
        if (up->multipart) {
                if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) {
                        gw_stream_fail(st, EJ_ERR_UNSUPPORTED,
                                       "POST a multipart/form-data form (or PUT the raw file)");
                        goto out;
                }
                up->pp = MHD_create_post_processor(c, PP_BUFFER, on_part, up);
                if (up->pp == NULL) {
                        gw_stream_fail(st, EJ_ERR_INVALID, "the multipart form has no boundary");
                        goto out;
                }
        } else {
                up->ctype_hint = dup_or_null(ct);
        }
        switch (gw_auth_resolve(req, true)) {
        case GW_WHO_MISSING:
                gw_stream_fail(st, EJ_ERR_UNAUTHENTICATED, "sign in first");
                break;
        case GW_WHO_ASK:
                up->phase = UP_AUTH;
                ask = true;
                gw_stream_hold(st);
                break;
        case GW_WHO_KNOWN:
        default:
                take_principal(up);
                if (!failed(up) && maybe_begin(up) && !up->multipart)
                        gw_stream_hold(st);
                break;
        }
out:
        /* An error found on the first call goes out now when the body is not on its way;
         * otherwise the body is read and dropped and the error answers the final call. */
        if (failed(up) && st->state == GW_CONN_FIRST && refuse_at_once(up, c))
                ret = gw_stream_answer_failure(st);
        /* Not held: MHD goes on to the body. */
        if (st->state == GW_CONN_FIRST)
                st->state = GW_CONN_BODY;
        pthread_mutex_unlock(&st->mu);
        /* Outside the lock: the answer may come at once, on this thread. */
        if (ask)
                gw_auth_ask(req, on_authed);
        return ret;
}

enum MHD_Result gw_upload_handle(struct gw_req *req, const char *upload_data,
                                 size_t *upload_data_size)
{
        struct upload *up;
        enum MHD_Result ret;

        if (req->stream == NULL)
                return first_call(req);
        up = up_of(req->stream);
        pthread_mutex_lock(&up->base.mu);
        ret = next_call(up, upload_data, upload_data_size);
        pthread_mutex_unlock(&up->base.mu);
        return ret;
}
