/*
 * Tests of the files service over the bus: real uploads and downloads through a running ej-files
 * (which this test starts, twice: on the local backend and on the S3 backend against an s3rver
 * it also starts on a free loopback port), as the gateway drives them.
 *
 * Needs EJ_TEST_NATS_URL and EJ_TEST_DB_URL (tests/run-all.sh sets both), the ej-files binary
 * in ../bin next to this test's binary (or $EJ_FILES_BIN), and node with tests/s3's s3rver
 * (or $EJ_S3RVER, the path of s3rver's bin/s3rver.js). Each run works in a fresh temp directory
 * and uses user ids unique to the run.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <zip.h>

#include "common.pb-c.h"
#include "files.pb-c.h"
#include "users.pb-c.h"

#include "bus.h"
#include "check.h"
#include "grant.h"
#include "harness.h"
#include "ids.h"
#include "log.h"
#include "str.h"

#define TIMEOUT_MS 10000
#define CHUNK      (256 * 1024)
#define BIG        (50 * 1024 * 1024)
#define IMAGE_MAX  (1024 * 1024)

extern char **environ;

static struct ej_bus *bus;
static struct ej_arena *arena;
static PGconn *pg;
static struct ej_grant_key key;
static char key_hex[2 * EJ_GRANT_KEY_BYTES + 1];
static char work[1024];                                /* the run's temp directory */
static char files_dir[1100];                           /* EJ_FILES_DIR of the running service */
static char self_dir[1024];                            /* the directory of this test's binary */
static const char *self_path = "./test_files_service"; /* argv[0] */
static char run_tag[32];
static const char *backend = "local";
static natsSubscription *uploaded_events; /* ej.evt.files.uploaded */

/* ---- plumbing ------------------------------------------------------------------------------ */

/* A user id unique to this run. */
static char *user(const char *who)
{
        return ej_arena_printf(arena, "%s-%s-%s", who, backend, run_tag);
}

/* Sends `req` to `subject` as `user_id` (NULL: a service) and unpacks the reply. */
static enum ej_status call(const char *subject, const ProtobufCMessage *req, const char *user_id,
                           const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                           struct ej_err *err)
{
        const struct th_caller from = {.user_id = user_id};

        return th_call(bus, arena, subject, req, &from, resp_desc, TIMEOUT_MS, resp, NULL, err);
}

static enum ej_status begin(const char *kind, const char *name, int64_t declared,
                            const char *user_id, Ej__Files__UploadBeginReply **out,
                            struct ej_err *err)
{
        Ej__Files__UploadBegin req = EJ__FILES__UPLOAD_BEGIN__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.kind = (char *)(uintptr_t)kind;
        req.filename = (char *)(uintptr_t)name;
        req.declared_size = declared;
        st = call("ej.files.upload_begin", &req.base, user_id,
                  &ej__files__upload_begin_reply__descriptor, &resp, err);
        *out = (Ej__Files__UploadBeginReply *)resp;
        return st;
}

/* Packs an UploadFrame into a malloc'ed buffer. */
static uint8_t *pack_frame(const Ej__Files__UploadFrame *f, size_t *len)
{
        uint8_t *p;

        *len = protobuf_c_message_get_packed_size(&f->base);
        p = xmalloc(*len + 1);
        protobuf_c_message_pack(&f->base, p);
        return p;
}

/* Sends chunk `seq` of `data` and waits for its answer. */
static enum ej_status send_chunk(const char *subject, uint64_t seq, const void *data, size_t n,
                                 struct ej_err *err)
{
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadChunk c = EJ__FILES__UPLOAD_CHUNK__INIT;
        natsMsg *reply = NULL;
        size_t len = 0;
        uint8_t *p;
        enum ej_status st;
        natsStatus s;

        c.seq = seq;
        c.data.data = (uint8_t *)(uintptr_t)data;
        c.data.len = n;
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_CHUNK;
        f.chunk = &c;
        p = pack_frame(&f, &len);
        s = natsConnection_Request(&reply, ej_bus_conn(bus), subject, (const char *)p, (int)len,
                                   TIMEOUT_MS);
        free(p);
        if (s != NATS_OK)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "%s", natsStatus_GetText(s));
        st = ej_bus_reply_status(reply, err);
        natsMsg_Destroy(reply);
        return st;
}

static enum ej_status send_abort(const char *subject, struct ej_err *err)
{
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadAbort a = EJ__FILES__UPLOAD_ABORT__INIT;
        natsMsg *reply = NULL;
        size_t len = 0;
        uint8_t *p;
        enum ej_status st;
        natsStatus s;

        a.reason = "client went away";
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_ABORT;
        f.abort = &a;
        p = pack_frame(&f, &len);
        s = natsConnection_Request(&reply, ej_bus_conn(bus), subject, (const char *)p, (int)len,
                                   TIMEOUT_MS);
        free(p);
        if (s != NATS_OK)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "%s", natsStatus_GetText(s));
        st = ej_bus_reply_status(reply, err);
        natsMsg_Destroy(reply);
        return st;
}

/* Uploads `n` bytes as the gateway does: begin, chunks with a window of unacknowledged
 * requests in flight, commit. */
static enum ej_status upload(const char *kind, const char *name, const void *data, size_t n,
                             int64_t declared, const char *user_id, Ej__Files__FileInfo **info,
                             struct ej_err *err)
{
        Ej__Files__UploadBeginReply *b = NULL;
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadCommit commit = EJ__FILES__UPLOAD_COMMIT__INIT;
        ProtobufCMessage *resp = NULL;
        natsSubscription *acks = NULL;
        natsInbox *inbox = NULL;
        natsMsg *reply = NULL;
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        uint64_t sent = 0;
        uint64_t acked = 0;
        uint64_t chunks;
        enum ej_status st;
        size_t len = 0;
        uint8_t *p;

        *info = NULL;
        st = begin(kind, name, declared, user_id, &b, err);
        if (st != EJ_OK)
                return st;
        if (b->chunk_size == 0 || b->window == 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "no chunk size or window");
        chunks = (n + b->chunk_size - 1) / b->chunk_size;
        natsInbox_Create(&inbox);
        natsConnection_SubscribeSync(&acks, ej_bus_conn(bus), inbox);
        while (st == EJ_OK && acked < chunks) {
                while (sent < chunks && sent - acked < b->window) {
                        Ej__Files__UploadChunk c = EJ__FILES__UPLOAD_CHUNK__INIT;
                        size_t off = (size_t)sent * b->chunk_size;

                        c.seq = sent;
                        c.data.data = (uint8_t *)(uintptr_t)data + off;
                        c.data.len = n - off < b->chunk_size ? n - off : b->chunk_size;
                        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_CHUNK;
                        f.chunk = &c;
                        p = pack_frame(&f, &len);
                        natsConnection_PublishRequest(ej_bus_conn(bus), b->chunk_subject, inbox, p,
                                                      (int)len);
                        free(p);
                        sent++;
                }
                if (natsSubscription_NextMsg(&reply, acks, TIMEOUT_MS) != NATS_OK) {
                        st = ej_err_set(err, EJ_ERR_TIMEOUT, NULL, "no chunk ack");
                        break;
                }
                st = ej_bus_reply_status(reply, err);
                if (st == EJ_OK) {
                        Ej__Files__UploadChunkAck *ack =
                            (Ej__Files__UploadChunkAck *)protobuf_c_message_unpack(
                                &ej__files__upload_chunk_ack__descriptor, &alloc,
                                (size_t)natsMsg_GetDataLength(reply),
                                (const uint8_t *)natsMsg_GetData(reply));

                        if (ack == NULL || ack->seq != acked)
                                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "ack out of order");
                        acked++;
                }
                natsMsg_Destroy(reply);
                reply = NULL;
        }
        natsSubscription_Destroy(acks);
        natsInbox_Destroy(inbox);
        if (st != EJ_OK)
                return st;
        commit.total_chunks = chunks;
        commit.total_size = (int64_t)n;
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_COMMIT;
        f.commit = &commit;
        st = call(b->chunk_subject, &f.base, NULL, &ej__files__file_info__descriptor, &resp, err);
        *info = (Ej__Files__FileInfo *)resp;
        return st;
}

static enum ej_status open_file(const char *file_id, const char *user_id, const char *grant,
                                const Ej__Files__DownloadOpen *range, Ej__Files__FileMeta **meta,
                                struct ej_err *err)
{
        Ej__Files__DownloadOpen req = EJ__FILES__DOWNLOAD_OPEN__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        if (range)
                req = *range;
        req.file_id = (char *)(uintptr_t)file_id;
        req.grant = (char *)(uintptr_t)(grant ? grant : "");
        st = call("ej.files.download_open", &req.base, user_id, &ej__files__file_meta__descriptor,
                  &resp, err);
        *meta = (Ej__Files__FileMeta *)resp;
        return st;
}

static enum ej_status read_at(const char *file_id, const char *user_id, const char *grant,
                              int64_t offset, uint32_t length, ProtobufCBinaryData *out,
                              struct ej_err *err)
{
        Ej__Files__FileRead req = EJ__FILES__FILE_READ__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.file_id = (char *)(uintptr_t)file_id;
        req.grant = (char *)(uintptr_t)(grant ? grant : "");
        req.offset = offset;
        req.length = length;
        st = call("ej.files.read", &req.base, user_id, &ej__files__file_data__descriptor, &resp,
                  err);
        out->data = NULL;
        out->len = 0;
        if (st == EJ_OK)
                *out = ((Ej__Files__FileData *)resp)->data;
        return st;
}

/* Downloads the whole file and compares it with `want`. */
static int download_equals(const char *file_id, const char *user_id, const char *grant,
                           const void *want, size_t n)
{
        Ej__Files__FileMeta *meta = NULL;
        struct ej_arena *keep = arena;
        struct ej_err err;
        int64_t off = 0;
        int same = 0;

        /* The reads go to a scratch arena, reset after each one. */
        arena = ej_arena_create(0);
        if (open_file(file_id, user_id, grant, NULL, &meta, &err) != EJ_OK) {
                fprintf(stderr, "open: %s\n", err.msg);
                goto out;
        }
        if (meta->size != (int64_t)n || meta->chunk_size == 0)
                goto out;
        while (off < (int64_t)n) {
                ProtobufCBinaryData d;
                uint32_t chunk = meta->chunk_size;

                ej_arena_reset(arena);
                if (read_at(file_id, user_id, grant, off, chunk, &d, &err) != EJ_OK) {
                        fprintf(stderr, "read: %s\n", err.msg);
                        goto out;
                }
                if (d.len == 0 || memcmp((const char *)want + off, d.data, d.len) != 0)
                        goto out;
                off += (int64_t)d.len;
        }
        same = off == (int64_t)n;
out:
        ej_arena_destroy(arena);
        arena = keep;
        return same;
}

static enum ej_status attach(const char *file_id, const char *as_user, const char *resource,
                             const char *purpose, bool public_, Ej__Files__FileInfo **out,
                             struct ej_err *err)
{
        Ej__Files__AttachRequest req = EJ__FILES__ATTACH_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.file_id = (char *)(uintptr_t)file_id;
        req.resource = (char *)(uintptr_t)resource;
        req.purpose = (char *)(uintptr_t)purpose;
        req.public_ = public_;
        st = call("ej.files.attach", &req.base, as_user, &ej__files__file_info__descriptor, &resp,
                  err);
        *out = (Ej__Files__FileInfo *)resp;
        return st;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
        unsigned char d[32];

        crypto_hash_sha256(d, p, n);
        sodium_bin2hex(out, 65, d, 32);
}

/* `n` bytes of a PDF: a header and then pseudo-random bytes from `seed`. */
static unsigned char *make_pdf(size_t n, unsigned seed)
{
        static const char head[] =
            "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        unsigned char *p = xmalloc(n + 1);
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ seed;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (unsigned char)x;
        }
        memcpy(p, head, n < sizeof(head) - 1 ? n : sizeof(head) - 1);
        return p;
}

/* Temp files of uploads anywhere under <files dir>/tmp (lock files and directories aside). */
static int temp_files(void)
{
        char root[1200];
        DIR *d;
        struct dirent *e;
        int count = 0;

        snprintf(root, sizeof(root), "%s/tmp", files_dir);
        d = opendir(root);
        if (d == NULL)
                return 0;
        while ((e = readdir(d)) != NULL) {
                char sub[PATH_MAX];
                DIR *s;
                struct dirent *f;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", root, e->d_name);
                s = opendir(sub);
                if (s == NULL) {
                        if (strstr(e->d_name, ".lock") == NULL)
                                count++;
                        continue;
                }
                while ((f = readdir(s)) != NULL)
                        if (f->d_name[0] != '.')
                                count++;
                closedir(s);
        }
        closedir(d);
        return count;
}

/* Rows of files.files owned by `owner`. */
static long rows_of(const char *owner)
{
        const char *params[] = {owner};
        PGresult *r = PQexecParams(pg, "SELECT count(*) FROM files.files WHERE owner_id = $1", 1,
                                   NULL, params, NULL, NULL, 0);
        long n = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK)
                n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return n;
}

static long blobs_with(const char *sha)
{
        const char *params[] = {sha};
        PGresult *r = PQexecParams(pg, "SELECT count(*) FROM files.blobs WHERE sha256 = $1", 1,
                                   NULL, params, NULL, NULL, 0);
        long n = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK)
                n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return n;
}

/* Waits for the file.uploaded event of `file_id`. */
static int saw_uploaded_event(const char *file_id, const char *sha, const char *owner)
{
        long long deadline = ej_mono_ms() + 10000;

        while (ej_mono_ms() < deadline) {
                natsMsg *msg = NULL;
                ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
                Ej__Common__Event *ev;
                Ej__Files__FileUploaded *p = NULL;
                int match = 0;

                if (natsSubscription_NextMsg(&msg, uploaded_events, 500) != NATS_OK)
                        continue;
                ev = (Ej__Common__Event *)protobuf_c_message_unpack(
                    &ej__common__event__descriptor, &alloc, (size_t)natsMsg_GetDataLength(msg),
                    (const uint8_t *)natsMsg_GetData(msg));
                if (ev)
                        p = (Ej__Files__FileUploaded *)protobuf_c_message_unpack(
                            &ej__files__file_uploaded__descriptor, &alloc, ev->payload.len,
                            ev->payload.data);
                if (p && strcmp(p->file_id, file_id) == 0) {
                        match = 1;
                        CHECK(strcmp(ev->type, "file.uploaded") == 0);
                        CHECK(strcmp(ev->actor, owner) == 0);
                        CHECK(strcmp(p->sha256, sha) == 0 && strcmp(p->owner_id, owner) == 0);
                }
                natsMsg_Destroy(msg);
                if (match)
                        return 1;
        }
        return 0;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_round_trips(void)
{
        const size_t sizes[] = {0, 1, CHUNK, CHUNK + 1, BIG};
        const char *owner = user("rt");

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                unsigned char *data =
                    n <= 1 ? (unsigned char *)xstrdup("x") : make_pdf(n, (unsigned)i);
                const char *kind = n <= 1 ? "attachment" : "manuscript";
                Ej__Files__FileInfo *fi = NULL;
                struct ej_err err;
                char sha[65];
                long long t0 = ej_mono_ms();
                int same;

                ej_arena_reset(arena);
                owner = user("rt");
                sha256_hex(data, n, sha);
                CHECK(upload(kind, "paper.pdf", data, n, (int64_t)n, owner, &fi, &err) == EJ_OK);
                if (fi == NULL) {
                        fprintf(stderr, "[%s] upload of %zu bytes: %s\n", backend, n, err.msg);
                        free(data);
                        continue;
                }
                CHECK(fi->size == (int64_t)n);
                CHECK(strcmp(fi->sha256, sha) == 0);
                CHECK(strlen(fi->id) == 36);
                CHECK(strcmp(fi->owner_id, owner) == 0);
                CHECK(strcmp(fi->kind, kind) == 0);
                CHECK(strcmp(fi->content_type, n == 0   ? "application/x-empty"
                                               : n == 1 ? "text/plain"
                                                        : "application/pdf") == 0);
                CHECK(fi->resource[0] == '\0' && !fi->public_);
                same = download_equals(fi->id, owner, NULL, data, n);
                CHECK(same);
                if (!same)
                        fprintf(stderr, "[%s] %zu bytes: the download differs\n", backend, n);
                if (n == BIG)
                        printf("[%s] 50 MiB up and down in %lld ms\n", backend, ej_mono_ms() - t0);
                free(data);
        }
        CHECK(temp_files() == 0);
}

static void test_dedup(void)
{
        unsigned char *data = make_pdf(3 * CHUNK + 17, 77);
        Ej__Files__FileInfo *a = NULL;
        Ej__Files__FileInfo *b = NULL;
        struct ej_err err;
        char *owner = user("dedup");
        char path[PATH_MAX];
        struct stat sb;
        char sha[65];

        sha256_hex(data, 3 * CHUNK + 17, sha);
        CHECK(upload("manuscript", "one.pdf", data, 3 * CHUNK + 17, -1, owner, &a, &err) == EJ_OK);
        CHECK(upload("manuscript", "two.pdf", data, 3 * CHUNK + 17, -1, owner, &b, &err) == EJ_OK);
        if (a && b) {
                CHECK(strcmp(a->id, b->id) != 0);
                CHECK(strcmp(a->sha256, b->sha256) == 0 && strcmp(a->sha256, sha) == 0);
                CHECK(strcmp(a->name, "one.pdf") == 0 && strcmp(b->name, "two.pdf") == 0);
                CHECK(blobs_with(sha) == 1);
                CHECK(rows_of(owner) == 2);
                /* Each upload is announced, durably, once committed. */
                CHECK(saw_uploaded_event(b->id, sha, owner));
                CHECK(download_equals(b->id, owner, NULL, data, 3 * CHUNK + 17));
        }
        if (strcmp(backend, "local") == 0) {
                snprintf(path, sizeof(path), "%s/%.2s/%.2s/%s", files_dir, sha, sha + 2, sha);
                CHECK(stat(path, &sb) == 0 && sb.st_size == 3 * CHUNK + 17);
                /* Stored blobs are not writable through their names. */
                CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0022) == 0);
        }
        free(data);
}

/* A zip with the given entries (name, text) pairs, in memory. */
static unsigned char *make_zip(const char *const *entries, size_t n_entries, size_t *len)
{
        char path[PATH_MAX];
        zip_t *z;
        int zerr = 0;
        FILE *f;
        unsigned char *buf;
        long sz;

        snprintf(path, sizeof(path), "%s/t.zip", work);
        unlink(path);
        z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
        for (size_t i = 0; z && i < n_entries; i++) {
                zip_source_t *src =
                    zip_source_buffer(z, entries[2 * i + 1], strlen(entries[2 * i + 1]), 0);

                zip_file_add(z, entries[2 * i], src, ZIP_FL_OVERWRITE);
        }
        if (z)
                zip_close(z);
        f = fopen(path, "rb");
        if (f == NULL) {
                *len = 0;
                return (unsigned char *)xstrdup("");
        }
        fseek(f, 0, SEEK_END);
        sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = xmalloc((size_t)sz + 1);
        *len = fread(buf, 1, (size_t)sz, f);
        fclose(f);
        return buf;
}

static void test_types(void)
{
        static const unsigned char png[] = {
            0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a, '\n', 0,    0,    0,    13,   'I',  'H',
            'D',  'R',  0,    0,    0,    1,    0,    0,    0,    1,    8,    6,    0,    0,
            0,    0x1f, 0x15, 0xc4, 0x89, 0,    0,    0,    10,   'I',  'D',  'A',  'T',  0x78,
            0x9c, 0x63, 0,    1,    0,    0,    5,    0,    1,    0x0d, 0x0a, 0x2d, 0xb4, 0,
            0,    0,    0,    'I',  'E',  'N',  'D',  0xae, 0x42, 0x60, 0x82};
        static const char svg[] = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/"
                                  "svg\" width=\"10\" height=\"10\"><script>alert(1)</script>"
                                  "</svg>\n";
        static const char tex[] = "\\documentclass{article}\n\\begin{document}\nHello\n"
                                  "\\end{document}\n";
        const char *docx_entries[] = {"[Content_Types].xml",
                                      "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas."
                                      "openxmlformats.org/package/2006/content-types\"/>",
                                      "_rels/.rels",
                                      "<Relationships/>",
                                      "word/document.xml",
                                      "<w:document/>"};
        const char *latex_entries[] = {"paper/main.tex", tex, "paper/fig.txt", "figure"};
        const char *plain_entries[] = {"notes.txt", "just notes"};
        char *owner = user("types");
        unsigned char *pdf = make_pdf(5000, 3);
        Ej__Files__FileInfo *fi = NULL;
        struct ej_err err;
        unsigned char *z;
        size_t zlen = 0;

        /* A PDF is not an image: refused on its first chunk, naming what it is. */
        CHECK(upload("image", "cat.png", pdf, 5000, 5000, owner, &fi, &err) == EJ_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "application/pdf") != NULL);
        CHECK(upload("image", "x.svg", svg, strlen(svg), -1, owner, &fi, &err) ==
              EJ_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "svg") != NULL);
        CHECK(upload("image", "dot.png", png, sizeof(png), -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->content_type, "image/png") == 0);
        CHECK(upload("manuscript", "paper.tex", tex, strlen(tex), -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->content_type, "text/x-tex") == 0);
        /* The extension says nothing: content decides. */
        CHECK(upload("manuscript", "paper.pdf", png, sizeof(png), -1, owner, &fi, &err) ==
              EJ_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "image/png") != NULL);
        z = make_zip(docx_entries, 3, &zlen);
        CHECK(upload("manuscript", "paper.docx", z, zlen, -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->content_type, "application/vnd.openxmlformats-officedocument."
                                             "wordprocessingml.document") == 0);
        free(z);
        z = make_zip(latex_entries, 2, &zlen);
        CHECK(upload("manuscript", "sources.zip", z, zlen, -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->content_type, "application/zip") == 0);
        free(z);
        z = make_zip(plain_entries, 1, &zlen);
        CHECK(upload("manuscript", "notes.zip", z, zlen, -1, owner, &fi, &err) ==
              EJ_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "no .tex") != NULL);
        free(z);
        CHECK(upload("galley", "g.pdf", tex, strlen(tex), -1, owner, &fi, &err) ==
              EJ_ERR_UNSUPPORTED);
        CHECK(upload("nonsense", "g.pdf", pdf, 10, -1, owner, &fi, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "kind") == 0);
        /* Display names: no directories, controls, quotes or markup characters. */
        CHECK(upload("manuscript", "../../etc/\x01pa\"ss<w>d  .pdf", pdf, 5000, -1, owner, &fi,
                     &err) == EJ_OK);
        CHECK(fi && strcmp(fi->name, "pass_w_d .pdf") == 0);
        CHECK(upload("manuscript", "C:\\Users\\ada\\Él\xc3\xa8ve r\xc3\xa9sum\xc3\xa9.pdf", pdf,
                     5000, -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->name, "Él\xc3\xa8ve r\xc3\xa9sum\xc3\xa9.pdf") == 0);
        /* A name that is not UTF-8 never reaches the handler: the runtime refuses it, naming the
         * field (pbtext.h). */
        CHECK(upload("manuscript", "\xff\xfe", pdf, 5000, -1, owner, &fi, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "filename") == 0);
        /* Bidi overrides and zero-width characters are dropped; hidden-file dots too. */
        CHECK(upload("manuscript",
                     ".cv\xe2\x80\xae"
                     "fdp.exe\xe2\x80\x8b",
                     pdf, 5000, -1, owner, &fi, &err) == EJ_OK);
        CHECK(fi && strcmp(fi->name, "cvfdp.exe") == 0);
        /* Long names are cut to 200 characters, the extension kept. */
        {
                char longname[700];
                size_t k = 0;

                for (int i = 0; i < 300; i++) {
                        memcpy(longname + k, "\xc3\xa9", 2); /* é: 2 bytes, 1 character */
                        k += 2;
                }
                memcpy(longname + k, ".pdf", 5);
                CHECK(upload("manuscript", longname, pdf, 5000, -1, owner, &fi, &err) == EJ_OK);
                CHECK(fi && strlen(fi->name) == 196 * 2 + 4);
                CHECK(fi && strcmp(fi->name + strlen(fi->name) - 4, ".pdf") == 0);
        }
        CHECK(temp_files() == 0);
        free(pdf);
}

static void test_limits(void)
{
        char *owner = user("limits");
        size_t n = IMAGE_MAX + CHUNK;
        unsigned char *img = xcalloc(1, n);
        Ej__Files__UploadBeginReply *b = NULL;
        Ej__Files__FileInfo *fi = NULL;
        struct ej_err err;
        static const unsigned char jpeg_head[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F',
                                                  0,    1,    1,    0,    0, 1,  0,   1,   0,   0};

        memcpy(img, jpeg_head, sizeof(jpeg_head));
        /* Declared over the limit: refused before any byte. */
        CHECK(begin("image", "big.jpg", IMAGE_MAX + 1, owner, &b, &err) == EJ_ERR_TOO_LARGE);
        CHECK(strcmp(err.field, "file") == 0);
        CHECK(begin("image", "ok.jpg", IMAGE_MAX, owner, &b, &err) == EJ_OK);
        CHECK(b && b->max_size == IMAGE_MAX && b->chunk_size == CHUNK && b->window >= 1);
        CHECK(b && strncmp(b->chunk_subject, "ej.upload.", 10) == 0);
        if (b)
                CHECK(send_abort(b->chunk_subject, &err) == EJ_OK);
        CHECK(begin("image", "x.jpg", -2, owner, &b, &err) == EJ_ERR_INVALID);
        CHECK(begin("image", "x.jpg", 10, NULL, &b, &err) == EJ_ERR_UNAUTHENTICATED);
        /* Unknown size, too many bytes: refused while streaming. */
        CHECK(upload("image", "big.jpg", img, n, -1, owner, &fi, &err) == EJ_ERR_TOO_LARGE);
        /* Exactly the limit is fine. */
        CHECK(upload("image", "ok.jpg", img, IMAGE_MAX, -1, owner, &fi, &err) == EJ_OK);
        CHECK(rows_of(owner) == 1);
        CHECK(temp_files() == 0);
        free(img);
}

static void test_abort(void)
{
        char *owner = user("abort");
        unsigned char *pdf = make_pdf(4 * CHUNK, 5);
        Ej__Files__UploadBeginReply *b = NULL;
        Ej__Files__FileInfo *fi = NULL;
        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadCommit commit = EJ__FILES__UPLOAD_COMMIT__INIT;
        ProtobufCMessage *resp = NULL;
        struct ej_err err;

        /* The client goes away mid-upload. */
        CHECK(begin("manuscript", "gone.pdf", 4 * CHUNK, owner, &b, &err) == EJ_OK);
        if (b == NULL)
                return;
        CHECK(send_chunk(b->chunk_subject, 0, pdf, CHUNK, &err) == EJ_OK);
        CHECK(send_chunk(b->chunk_subject, 1, pdf + CHUNK, CHUNK, &err) == EJ_OK);
        CHECK(temp_files() == 1);
        CHECK(send_abort(b->chunk_subject, &err) == EJ_OK);
        CHECK(temp_files() == 0);
        CHECK(rows_of(owner) == 0);
        CHECK(send_chunk(b->chunk_subject, 2, pdf, CHUNK, &err) != EJ_OK);

        /* Out of order: the upload ends, nothing stays. */
        CHECK(begin("manuscript", "jumbled.pdf", -1, owner, &b, &err) == EJ_OK);
        if (b == NULL)
                return;
        CHECK(send_chunk(b->chunk_subject, 0, pdf, CHUNK, &err) == EJ_OK);
        CHECK(send_chunk(b->chunk_subject, 2, pdf, CHUNK, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "seq") == 0);
        CHECK(send_chunk(b->chunk_subject, 1, pdf, CHUNK, &err) != EJ_OK);
        CHECK(temp_files() == 0);

        /* A commit that does not add up ends it too. */
        CHECK(begin("manuscript", "short.pdf", -1, owner, &b, &err) == EJ_OK);
        if (b == NULL)
                return;
        CHECK(send_chunk(b->chunk_subject, 0, pdf, CHUNK, &err) == EJ_OK);
        commit.total_chunks = 1;
        commit.total_size = CHUNK + 1;
        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_COMMIT;
        f.commit = &commit;
        CHECK(call(b->chunk_subject, &f.base, NULL, &ej__files__file_info__descriptor, &resp,
                   &err) == EJ_ERR_INVALID);
        CHECK(rows_of(owner) == 0);
        CHECK(temp_files() == 0);

        /* Idle for longer than the timeout (2 s in this test): aborted by the service. */
        CHECK(begin("manuscript", "idle.pdf", -1, owner, &b, &err) == EJ_OK);
        if (b == NULL)
                return;
        CHECK(b->idle_timeout_ms == 2000);
        CHECK(send_chunk(b->chunk_subject, 0, pdf, CHUNK, &err) == EJ_OK);
        CHECK(temp_files() == 1);
        th_sleep_ms(3500);
        CHECK(temp_files() == 0);
        CHECK(send_chunk(b->chunk_subject, 1, pdf + CHUNK, CHUNK, &err) != EJ_OK);
        CHECK(rows_of(owner) == 0);
        /* And a complete upload still works afterwards. */
        CHECK(upload("manuscript", "fine.pdf", pdf, 4 * CHUNK, -1, owner, &fi, &err) == EJ_OK);
        CHECK(rows_of(owner) == 1);
        free(pdf);
}

static void test_access(void)
{
        char *ada = user("ada");
        char *bob = user("bob");
        unsigned char *pdf = make_pdf(CHUNK + 100, 9);
        Ej__Files__FileInfo *fi = NULL;
        Ej__Files__FileInfo *other = NULL;
        Ej__Files__FileInfo *att = NULL;
        Ej__Files__FileMeta *meta = NULL;
        ProtobufCBinaryData d;
        struct ej_err err;
        char grant[EJ_GRANT_TOKEN_MAX];
        long long now = ej_now_ms();

        CHECK(upload("manuscript", "m.pdf", pdf, CHUNK + 100, -1, ada, &fi, &err) == EJ_OK);
        CHECK(upload("manuscript", "o.pdf", pdf, 100, -1, ada, &other, &err) == EJ_OK);
        if (fi == NULL || other == NULL)
                return;
        /* Fresh: the uploader alone. */
        CHECK(download_equals(fi->id, ada, NULL, pdf, CHUNK + 100));
        CHECK(open_file(fi->id, bob, NULL, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(open_file(fi->id, NULL, NULL, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(read_at(fi->id, bob, NULL, 0, 10, &d, &err) == EJ_ERR_FORBIDDEN);
        CHECK(open_file("00000000-0000-4000-8000-000000000000", ada, NULL, NULL, &meta, &err) ==
              EJ_ERR_NOT_FOUND);
        CHECK(open_file("../etc/passwd", ada, NULL, NULL, &meta, &err) == EJ_ERR_NOT_FOUND);
        /* Attaching is for services. */
        CHECK(attach(fi->id, ada, "submission:1", "manuscript", false, &att, &err) ==
              EJ_ERR_FORBIDDEN);
        CHECK(attach(fi->id, NULL, "submission:1", "manuscript", false, &att, &err) == EJ_OK);
        CHECK(att && strcmp(att->resource, "submission:1") == 0 &&
              strcmp(att->purpose, "manuscript") == 0);
        CHECK(attach(fi->id, NULL, "", "manuscript", false, &att, &err) == EJ_ERR_INVALID);
        /* Attached: grants only, even for the uploader. */
        CHECK(open_file(fi->id, ada, NULL, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_issue(&key, fi->id, bob, "review", now + 60000, grant, sizeof(grant),
                             &err) == EJ_OK);
        CHECK(download_equals(fi->id, bob, grant, pdf, CHUNK + 100));
        CHECK(open_file(fi->id, bob, grant, NULL, &meta, &err) == EJ_OK);
        CHECK(meta && strcmp(meta->disposition, "attachment") == 0);
        CHECK(meta && strcmp(meta->sha256, fi->sha256) == 0 &&
              strcmp(meta->content_type, "application/pdf") == 0 &&
              strcmp(meta->name, "m.pdf") == 0);
        /* ... for another user, */
        CHECK(open_file(fi->id, ada, grant, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "another user") != NULL);
        CHECK(read_at(fi->id, ada, grant, 0, 10, &d, &err) == EJ_ERR_FORBIDDEN);
        /* ... for another file, */
        CHECK(open_file(other->id, bob, grant, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "another file") != NULL);
        /* ... expired, */
        CHECK(ej_grant_issue(&key, fi->id, bob, "review", now - 1, grant, sizeof(grant), &err) ==
              EJ_OK);
        CHECK(open_file(fi->id, bob, grant, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "expired") != NULL);
        CHECK(read_at(fi->id, bob, grant, 0, 10, &d, &err) == EJ_ERR_FORBIDDEN);
        /* ... signed with another key. */
        {
                struct ej_grant_key wrong;

                randombytes_buf(wrong.k, sizeof(wrong.k));
                CHECK(ej_grant_issue(&wrong, fi->id, bob, "review", now + 60000, grant,
                                     sizeof(grant), &err) == EJ_OK);
                CHECK(open_file(fi->id, bob, grant, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
        }
        /* A grant for anyone: anonymous readers too. */
        CHECK(ej_grant_issue(&key, fi->id, EJ_GRANT_ANY_USER, "read", now + 60000, grant,
                             sizeof(grant), &err) == EJ_OK);
        CHECK(download_equals(fi->id, NULL, grant, pdf, CHUNK + 100));
        /* A published galley: public, inline. */
        CHECK(attach(other->id, NULL, "article:7", "galley", true, &att, &err) == EJ_OK);
        CHECK(att && att->public_);
        CHECK(open_file(other->id, NULL, NULL, NULL, &meta, &err) == EJ_OK);
        CHECK(meta && strcmp(meta->disposition, "inline") == 0);
        CHECK(download_equals(other->id, NULL, NULL, pdf, 100));
        /* A public file that is not a galley is still downloaded as an attachment. */
        CHECK(attach(other->id, NULL, "branding", "logo", true, &att, &err) == EJ_OK);
        CHECK(open_file(other->id, NULL, NULL, NULL, &meta, &err) == EJ_OK);
        CHECK(meta && strcmp(meta->disposition, "attachment") == 0);
        /* Info: services and the owner. */
        {
                Ej__Files__InfoRequest ir = EJ__FILES__INFO_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;

                ir.file_id = fi->id;
                CHECK(call("ej.files.info", &ir.base, NULL, &ej__files__file_info__descriptor,
                           &resp, &err) == EJ_OK);
                CHECK(call("ej.files.info", &ir.base, ada, &ej__files__file_info__descriptor, &resp,
                           &err) == EJ_OK);
                CHECK(call("ej.files.info", &ir.base, bob, &ej__files__file_info__descriptor, &resp,
                           &err) == EJ_ERR_FORBIDDEN);
        }
        /* GDPR export: the uploads of a person, for services only. */
        {
                Ej__Common__GdprExportRequest gr = EJ__COMMON__GDPR_EXPORT_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;
                Ej__Common__GdprExportPart *part;

                gr.user_id = ada;
                CHECK(call("ej.files.gdpr_export", &gr.base, NULL,
                           &ej__common__gdpr_export_part__descriptor, &resp, &err) == EJ_OK);
                part = (Ej__Common__GdprExportPart *)resp;
                CHECK(part && strcmp(part->service, "files") == 0);
                CHECK(part && strstr(part->json, fi->id) && strstr(part->json, other->id));
                CHECK(part && strstr(part->json, "\"name\":\"m.pdf\"") != NULL);
                CHECK(call("ej.files.gdpr_export", &gr.base, ada,
                           &ej__common__gdpr_export_part__descriptor, &resp,
                           &err) == EJ_ERR_FORBIDDEN);
        }
        /* gdpr_erase: the runtime's default (files acts on the event user.erased instead):
         * nothing changes, and a person may not ask. */
        {
                Ej__Common__GdprEraseRequest er = EJ__COMMON__GDPR_ERASE_REQUEST__INIT;
                Ej__Files__InfoRequest ir = EJ__FILES__INFO_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;

                er.user_id = ada;
                CHECK(call("ej.files.gdpr_erase", &er.base, NULL, &ej__common__empty__descriptor,
                           &resp, &err) == EJ_OK);
                CHECK(call("ej.files.gdpr_erase", &er.base, ada, &ej__common__empty__descriptor,
                           &resp, &err) == EJ_ERR_FORBIDDEN);
                ir.file_id = fi->id;
                CHECK(call("ej.files.info", &ir.base, NULL, &ej__files__file_info__descriptor,
                           &resp, &err) == EJ_OK);
        }
        free(pdf);
}

static void test_ranges(void)
{
        char *owner = user("range");
        unsigned char *pdf = make_pdf(1000, 11);
        Ej__Files__FileInfo *fi = NULL;
        Ej__Files__FileMeta *m = NULL;
        Ej__Files__DownloadOpen r = EJ__FILES__DOWNLOAD_OPEN__INIT;
        ProtobufCBinaryData d;
        struct ej_err err;

        CHECK(upload("manuscript", "r.pdf", pdf, 1000, -1, owner, &fi, &err) == EJ_OK);
        if (fi == NULL)
                return;
        CHECK(open_file(fi->id, owner, NULL, NULL, &m, &err) == EJ_OK);
        CHECK(m && !m->partial && m->range_start == 0 && m->range_end == 999 && m->size == 1000);
        r.has_range = true;
        r.range_start = 0;
        r.range_end = 99;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->partial && m->range_start == 0 && m->range_end == 99);
        r.range_start = 900;
        r.range_end = -1;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->partial && m->range_start == 900 && m->range_end == 999);
        r.range_start = 500;
        r.range_end = 5000;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->partial && m->range_start == 500 && m->range_end == 999);
        r.range_start = -1;
        r.range_end = -1;
        r.range_suffix = 100;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->partial && m->range_start == 900 && m->range_end == 999);
        r.range_suffix = 5000;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->partial && m->range_start == 0 && m->range_end == 999);
        r.range_suffix = 0;
        r.range_start = 1000;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->range_unsatisfiable && !m->partial);
        /* "bytes=-0" arrives as 1-0: empty, unsatisfiable. */
        r.range_start = 1;
        r.range_end = 0;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && m->range_unsatisfiable && !m->partial);
        r.range_start = -1;
        r.range_end = -1;
        CHECK(open_file(fi->id, owner, NULL, &r, &m, &err) == EJ_OK);
        CHECK(m && !m->partial && !m->range_unsatisfiable && m->range_end == 999);
        /* Reads at any offset, short at the end, empty past it. */
        CHECK(read_at(fi->id, owner, NULL, 990, 100, &d, &err) == EJ_OK);
        CHECK(d.len == 10 && memcmp(d.data, pdf + 990, 10) == 0);
        CHECK(read_at(fi->id, owner, NULL, 123, 7, &d, &err) == EJ_OK);
        CHECK(d.len == 7 && memcmp(d.data, pdf + 123, 7) == 0);
        CHECK(read_at(fi->id, owner, NULL, 2000, 100, &d, &err) == EJ_OK);
        CHECK(d.len == 0);
        CHECK(read_at(fi->id, owner, NULL, 0, 0, &d, &err) == EJ_ERR_INVALID);
        CHECK(read_at(fi->id, owner, NULL, 0, CHUNK + 1, &d, &err) == EJ_ERR_INVALID);
        CHECK(read_at(fi->id, owner, NULL, -1, 10, &d, &err) == EJ_ERR_INVALID);
        free(pdf);
}

static void test_upload_cap(void)
{
        char *owner = user("cap");
        Ej__Files__UploadBeginReply *b[5] = {NULL};
        struct ej_err err;

        /* At most 4 uploads at once per user in this test's settings. */
        for (int i = 0; i < 4; i++)
                CHECK(begin("manuscript", "p.pdf", -1, owner, &b[i], &err) == EJ_OK);
        CHECK(begin("manuscript", "p.pdf", -1, owner, &b[4], &err) == EJ_ERR_TOO_MANY);
        CHECK(begin("manuscript", "p.pdf", -1, user("cap2"), &b[4], &err) == EJ_OK);
        if (b[4])
                CHECK(send_abort(b[4]->chunk_subject, &err) == EJ_OK);
        for (int i = 0; i < 4; i++)
                if (b[i])
                        CHECK(send_abort(b[i]->chunk_subject, &err) == EJ_OK);
        /* Finished ones no longer count. */
        th_sleep_ms(200);
        CHECK(begin("manuscript", "p.pdf", -1, owner, &b[0], &err) == EJ_OK);
        if (b[0])
                CHECK(send_abort(b[0]->chunk_subject, &err) == EJ_OK);
        CHECK(temp_files() == 0);
}

/* A small valid PDF whose document information names `author`. */
static char *make_pdf_with_author(const char *author, size_t *len)
{
        struct ej_buf b;
        size_t off[5];
        const char *objs[4] = {"<< /Type /Catalog /Pages 2 0 R >>",
                               "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>", NULL};
        size_t xref;

        ej_buf_init(&b);
        ej_buf_append_c(&b, "%PDF-1.4\n");
        for (int i = 0; i < 4; i++) {
                off[i + 1] = b.n;
                if (objs[i])
                        ej_buf_appendf(&b, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
                else
                        ej_buf_appendf(&b, "%d 0 obj\n<< /Author (%s) /Title (Draft) >>\nendobj\n",
                                       i + 1, author);
        }
        xref = b.n;
        ej_buf_append_c(&b, "xref\n0 5\n0000000000 65535 f \n");
        for (int i = 1; i <= 4; i++)
                ej_buf_appendf(&b, "%010zu 00000 n \n", off[i]);
        ej_buf_appendf(
            &b, "trailer\n<< /Size 5 /Root 1 0 R /Info 4 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
        *len = b.n;
        return ej_buf_steal(&b);
}

static enum ej_status blind(const char *file_id, const char *as_user, const char *canary,
                            Ej__Files__FileInfo **out, struct ej_err *err)
{
        Ej__Files__BlindCopyRequest req = EJ__FILES__BLIND_COPY_REQUEST__INIT;
        char *canaries[1] = {(char *)(uintptr_t)canary};
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.file_id = (char *)(uintptr_t)file_id;
        req.n_canaries = canary ? 1 : 0;
        req.canaries = canary ? canaries : NULL;
        st = call("ej.files.blind_copy", &req.base, as_user, &ej__files__file_info__descriptor,
                  &resp, err);
        *out = (Ej__Files__FileInfo *)resp;
        return st;
}

static void test_blind_copy(void)
{
        static const char canary[] = "Canary Quill Author";
        char *ada = user("blind-ada");
        char *bob = user("blind-bob");
        size_t n = 0;
        char *pdf = make_pdf_with_author(canary, &n);
        Ej__Files__FileInfo *fi = NULL;
        Ej__Files__FileInfo *copy = NULL;
        Ej__Files__FileInfo *again = NULL;
        Ej__Files__FileInfo *att = NULL;
        Ej__Files__FileMeta *meta = NULL;
        struct ej_err err;
        char grant[EJ_GRANT_TOKEN_MAX];
        char copy_id[40];
        int64_t off = 0;
        int leaked = 0;

        CHECK(memmem(pdf, n, canary, strlen(canary)) != NULL);
        CHECK(upload("manuscript", "Ada Lovelace - paper.pdf", pdf, n, -1, ada, &fi, &err) ==
              EJ_OK);
        if (fi == NULL)
                goto out;
        CHECK(attach(fi->id, NULL, "submission:42", "manuscript", false, &att, &err) == EJ_OK);
        CHECK(blind(fi->id, ada, canary, &copy, &err) == EJ_ERR_FORBIDDEN);
        CHECK(blind(fi->id, NULL, canary, &copy, &err) == EJ_OK);
        if (copy == NULL) {
                fprintf(stderr, "[%s] blind copy: %s\n", backend, err.msg);
                goto out;
        }
        snprintf(copy_id, sizeof(copy_id), "%s", copy->id);
        CHECK(strcmp(copy->blind_of, fi->id) == 0);
        CHECK(strcmp(copy->name, "manuscript.pdf") == 0);
        CHECK(strcmp(copy->purpose, "blind") == 0);
        CHECK(strcmp(copy->resource, "submission:42") == 0);
        CHECK(strcmp(copy->content_type, "application/pdf") == 0);
        CHECK(strcmp(copy->sha256, fi->sha256) != 0);
        /* Made once: asking again gives the same copy. */
        CHECK(blind(fi->id, NULL, canary, &again, &err) == EJ_OK);
        CHECK(again && strcmp(again->id, copy_id) == 0);
        /* A copy of a copy makes no sense. */
        CHECK(blind(copy_id, NULL, NULL, &again, &err) == EJ_ERR_INVALID);
        /* The reviewer reads the copy with a grant for it; the author's name is not in it. */
        CHECK(ej_grant_issue(&key, copy_id, bob, "review", ej_now_ms() + 60000, grant,
                             sizeof(grant), &err) == EJ_OK);
        CHECK(open_file(copy_id, bob, grant, NULL, &meta, &err) == EJ_OK);
        CHECK(meta && strcmp(meta->name, "manuscript.pdf") == 0);
        while (meta && off < meta->size) {
                ProtobufCBinaryData d;

                if (read_at(copy_id, bob, grant, off, CHUNK, &d, &err) != EJ_OK || d.len == 0)
                        break;
                leaked |= memmem(d.data, d.len, canary, strlen(canary)) != NULL;
                leaked |= memmem(d.data, d.len, "Lovelace", 8) != NULL;
                off += (int64_t)d.len;
        }
        CHECK(meta && off == meta->size);
        CHECK(!leaked);
        /* The grant for the copy opens only the copy. */
        CHECK(open_file(fi->id, bob, grant, NULL, &meta, &err) == EJ_ERR_FORBIDDEN);
out:
        free(pdf);
}

/* Unattached uploads go after their time; blobs nobody refers to go after the grace period
 * (this run: 2 s, swept every second, no grace). */
static void test_sweeper(void)
{
        char *owner = user("sweep");
        unsigned char *a = make_pdf(2 * CHUNK, 1234);
        unsigned char *b = make_pdf(CHUNK / 2, 4321);
        Ej__Files__FileInfo *fa = NULL;
        Ej__Files__FileInfo *fb = NULL;
        Ej__Files__FileInfo *att = NULL;
        struct ej_err err;
        char path[2200];
        char sha_a[65];
        long long deadline;

        CHECK(upload("manuscript", "a.pdf", a, 2 * CHUNK, -1, owner, &fa, &err) == EJ_OK);
        CHECK(upload("manuscript", "b.pdf", b, CHUNK / 2, -1, owner, &fb, &err) == EJ_OK);
        if (fa == NULL || fb == NULL)
                goto out;
        snprintf(sha_a, sizeof(sha_a), "%s", fa->sha256);
        CHECK(attach(fb->id, NULL, "submission:9", "manuscript", false, &att, &err) == EJ_OK);
        snprintf(path, sizeof(path), "%s/%.2s/%.2s/%s", files_dir, sha_a, sha_a + 2, sha_a);
        CHECK(access(path, F_OK) == 0);
        deadline = ej_mono_ms() + 10000;
        while (ej_mono_ms() < deadline && (rows_of(owner) != 1 || access(path, F_OK) == 0))
                th_sleep_ms(200);
        CHECK(rows_of(owner) == 1);
        CHECK(access(path, F_OK) != 0);
        CHECK(blobs_with(sha_a) == 0);
        /* The attached one stays, bytes and all. */
        {
                char grant[EJ_GRANT_TOKEN_MAX];

                CHECK(ej_grant_issue(&key, fb->id, owner, "read", ej_now_ms() + 60000, grant,
                                     sizeof(grant), &err) == EJ_OK);
                CHECK(download_equals(fb->id, owner, grant, b, CHUNK / 2));
        }
out:
        free(a);
        free(b);
}

/* Publishes user.erased for `user_id` to JetStream as the users service's relay would, with the
 * event id `event_id` and the JetStream message id `msg_id` (a new one makes a redelivery). */
static int publish_erased(const char *user_id, const char *event_id, const char *msg_id)
{
        Ej__Users__UserErased e = EJ__USERS__USER_ERASED__INIT;
        Ej__Common__Event ev = EJ__COMMON__EVENT__INIT;
        uint8_t payload[256];
        uint8_t *data = NULL;
        size_t len;
        jsCtx *js = NULL;
        jsPubOptions po;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        natsStatus s;

        e.user_id = (char *)(uintptr_t)user_id;
        if (protobuf_c_message_get_packed_size(&e.base) > sizeof(payload))
                return 0;
        ev.id = (char *)(uintptr_t)event_id;
        ev.type = "user.erased";
        ev.time_ms = ej_now_ms();
        ev.payload.len = protobuf_c_message_pack(&e.base, payload);
        ev.payload.data = payload;
        len = protobuf_c_message_get_packed_size(&ev.base);
        data = xmalloc(len + 1);
        protobuf_c_message_pack(&ev.base, data);
        s = natsConnection_JetStream(&js, ej_bus_conn(bus), NULL);
        if (s == NATS_OK) {
                jsPubOptions_Init(&po);
                po.MsgId = msg_id;
                s = js_Publish(&pa, js, "ej.evt.users.erased", data, (int)len, &po, &jerr);
        }
        jsPubAck_Destroy(pa);
        jsCtx_Destroy(js);
        free(data);
        return s == NATS_OK;
}

static int file_exists(const char *id)
{
        const char *params[] = {id};
        PGresult *r = PQexecParams(pg, "SELECT count(*) FROM files.files WHERE id = $1::uuid", 1,
                                   NULL, params, NULL, NULL, 0);
        int n = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK)
                n = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        return n;
}

/* Blob `sha` is marked orphaned (1), still referenced (0), absent or an error (-1). */
static int blob_orphaned(const char *sha)
{
        const char *params[] = {sha};
        PGresult *r = PQexecParams(pg,
                                   "SELECT orphaned_at IS NOT NULL FROM files.blobs "
                                   "WHERE sha256 = $1",
                                   1, NULL, params, NULL, NULL, 0);
        int v = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                v = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        return v;
}

static int wait_gone(const char *id, long long ms)
{
        long long deadline = ej_mono_ms() + ms;

        while (ej_mono_ms() < deadline && file_exists(id) != 0)
                th_sleep_ms(100);
        return file_exists(id) == 0;
}

/* user.erased: the person's unattached uploads go (their bytes once no file uses them), the
 * attached files stay with their names; a redelivered event changes nothing. */
static void test_erasure(void)
{
        char *gone = user("erased");
        char *other = user("keeper");
        unsigned char *own = make_pdf(CHUNK / 2, 777);
        unsigned char *shared = make_pdf(CHUNK / 2, 778);
        unsigned char *kept = make_pdf(CHUNK / 2, 779);
        unsigned char *later = make_pdf(CHUNK / 2, 780);
        Ej__Files__FileInfo *f_own = NULL, *f_shared = NULL, *f_kept = NULL, *f_other = NULL;
        Ej__Files__FileInfo *f_later = NULL, *att = NULL, *info = NULL;
        Ej__Files__InfoRequest ir = EJ__FILES__INFO_REQUEST__INIT;
        struct ej_err err;
        char event_id[EJ_UUID_LEN], msg_id[EJ_UUID_LEN];
        char sha_own[65], sha_shared[65];

        CHECK(upload("manuscript", "mine only.pdf", own, CHUNK / 2, -1, gone, &f_own, &err) ==
              EJ_OK);
        CHECK(upload("manuscript", "shared.pdf", shared, CHUNK / 2, -1, gone, &f_shared, &err) ==
              EJ_OK);
        CHECK(upload("manuscript", "same bytes.pdf", shared, CHUNK / 2, -1, other, &f_other,
                     &err) == EJ_OK);
        CHECK(upload("manuscript", "Paper by Erased.pdf", kept, CHUNK / 2, -1, gone, &f_kept,
                     &err) == EJ_OK);
        if (f_own == NULL || f_shared == NULL || f_other == NULL || f_kept == NULL)
                goto out;
        snprintf(sha_own, sizeof(sha_own), "%s", f_own->sha256);
        snprintf(sha_shared, sizeof(sha_shared), "%s", f_shared->sha256);
        CHECK(attach(f_kept->id, NULL, "submission:erasure", "manuscript", false, &att, &err) ==
              EJ_OK);

        ej_uuid(event_id);
        CHECK(publish_erased(gone, event_id, event_id));
        CHECK(wait_gone(f_own->id, 10000));
        CHECK(wait_gone(f_shared->id, 1000));
        CHECK(rows_of(gone) == 1);
        CHECK(file_exists(f_other->id) == 1);
        CHECK(blob_orphaned(sha_own) == 1);
        CHECK(blob_orphaned(sha_shared) == 0);
        /* The scholarly file keeps its name and bytes. */
        ir.file_id = f_kept->id;
        CHECK(call("ej.files.info", &ir.base, NULL, &ej__files__file_info__descriptor,
                   (ProtobufCMessage **)&info, &err) == EJ_OK);
        CHECK(info && strcmp(info->name, "Paper by Erased.pdf") == 0);
        CHECK(info && strcmp(info->owner_id, gone) == 0);

        /* The same event again (a new JetStream message): already processed, nothing happens
         * to an upload made since. */
        CHECK(upload("manuscript", "later.pdf", later, CHUNK / 2, -1, gone, &f_later, &err) ==
              EJ_OK);
        ej_uuid(msg_id);
        CHECK(publish_erased(gone, event_id, msg_id));
        th_sleep_ms(1500);
        CHECK(f_later && file_exists(f_later->id) == 1);
        /* A new erasure event does take it. */
        ej_uuid(event_id);
        CHECK(publish_erased(gone, event_id, event_id));
        CHECK(f_later && wait_gone(f_later->id, 10000));
        CHECK(rows_of(gone) == 1);
out:
        free(own);
        free(shared);
        free(kept);
        free(later);
}

/* ---- processes ----------------------------------------------------------------------------- */

/* True when an ej-files answers (a malformed id is "not found"). */
static bool service_answers(void)
{
        Ej__Files__InfoRequest ir = EJ__FILES__INFO_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        struct ej_err err;

        ir.file_id = "none";
        return call("ej.files.info", &ir.base, NULL, &ej__files__file_info__descriptor, &resp,
                    &err) == EJ_ERR_NOT_FOUND;
}

/* Starts ej-files with the common settings and `extra` (NULL-terminated "K=V"). */
static pid_t start_files(const char *const *extra)
{
        const char *env[24];
        size_t k = 0;

        env[k++] = ej_arena_printf(arena, "EJ_GRANT_KEY=%s", key_hex);
        env[k++] = ej_arena_printf(arena, "EJ_FILES_DIR=%s", files_dir);
        env[k++] = "EJ_FILES_IDLE_TIMEOUT_S=2";
        env[k++] = ej_arena_printf(arena, "EJ_FILES_LIMIT_IMAGE=%d", IMAGE_MAX);
        env[k++] = "EJ_FILES_MAX_UPLOADS_PER_USER=4";
        for (size_t i = 0; extra && extra[i] && k + 1 < sizeof(env) / sizeof(env[0]); i++)
                env[k++] = extra[i];
        env[k] = NULL;
        return th_service_start(self_path, "files", env, service_answers);
}

/* Stops ej-files, which must exit cleanly. */
static void stop_files(pid_t pid)
{
        if (pid > 0)
                CHECK(th_service_stop(pid, 8000, NULL));
}

/* Starts s3rver on a free port with its data under the run's directory; -1 when it cannot. */
static pid_t start_s3rver(int port)
{
        const char *script = getenv("EJ_S3RVER");
        char path[PATH_MAX];
        char dir[PATH_MAX];
        char port_s[16];
        char *argv[] = {"node",   path,   "--silent",    "--address", "127.0.0.1",
                        "--port", port_s, "--directory", dir,         NULL};
        pid_t pid = -1;
        long long deadline;

        if (script && script[0])
                snprintf(path, sizeof(path), "%s", script);
        else
                snprintf(path, sizeof(path), "%s/../../tests/s3/node_modules/s3rver/bin/s3rver.js",
                         self_dir);
        if (access(path, R_OK) != 0) {
                fprintf(stderr,
                        "test_files_service: no s3rver at %s (npm install in tests/s3, or set "
                        "EJ_S3RVER)\n",
                        path);
                return -1;
        }
        snprintf(dir, sizeof(dir), "%s/s3", work);
        mkdir(dir, 0700);
        snprintf(port_s, sizeof(port_s), "%d", port);
        if (posix_spawnp(&pid, "node", NULL, NULL, argv, environ) != 0)
                return -1;
        /* Wait for the port to accept connections. */
        deadline = ej_mono_ms() + 20000;
        for (;;) {
                struct sockaddr_in a;
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                int ok;

                memset(&a, 0, sizeof(a));
                a.sin_family = AF_INET;
                a.sin_port = htons((uint16_t)port);
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
                close(fd);
                if (ok)
                        return pid;
                if (ej_mono_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
                        fprintf(stderr, "test_files_service: s3rver did not come up\n");
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        return -1;
                }
                th_sleep_ms(100);
        }
}

/* Leaves what a crashed replica would: its unlocked lock file (made when it started, an hour
 * ago) and a temp file. */
static void plant_crash_leftovers(void)
{
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/tmp", files_dir);
        mkdir(files_dir, 0700);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/tmp/deadbeef", files_dir);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/tmp/deadbeef/0000.part", files_dir);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0) {
                if (write(fd, "partial", 7) != 7)
                        CHECK(0);
                close(fd);
        }
        snprintf(path, sizeof(path), "%s/tmp/deadbeef.lock", files_dir);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0) {
                struct timespec hour_ago[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};

                CHECK(futimens(fd, hour_ago) == 0);
                close(fd);
        }
}

/* A replica that dies while others run: a surviving replica's sweeper takes its temp files
 * (EJ_FILES_TMP_GRACE_S=0 here), without waiting for a restart. */
static void test_reclaim_while_running(void)
{
        char path[PATH_MAX];
        long long deadline = ej_mono_ms() + 5000;

        plant_crash_leftovers();
        snprintf(path, sizeof(path), "%s/tmp/deadbeef", files_dir);
        CHECK(access(path, F_OK) == 0);
        while (ej_mono_ms() < deadline && access(path, F_OK) == 0)
                th_sleep_ms(100);
        CHECK(access(path, F_OK) != 0);
        snprintf(path, sizeof(path), "%s/tmp/deadbeef.lock", files_dir);
        CHECK(access(path, F_OK) != 0);
}

/* Strings that are not UTF-8 never reach a handler: the runtime refuses the request, naming
 * the field (protobuf-c unpacks them unchecked; PostgreSQL would refuse them in its words). */
static void test_not_text(void)
{
        Ej__Files__UploadBeginReply *br = NULL;
        struct ej_err err;

        CHECK(begin("manuscript", "bad\xff.pdf", 10, user("ada"), &br, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "filename") == 0);
        CHECK(begin("manu\xc3\x28", "ok.pdf", 10, user("ada"), &br, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "kind") == 0);
}

static void run_suite(void)
{
        long long t0 = ej_mono_ms();

        test_round_trips();
        test_dedup();
        test_types();
        test_limits();
        test_abort();
        test_access();
        test_ranges();
        test_upload_cap();
        test_blind_copy();
        test_not_text();
        printf("[%s] suite in %lld ms\n", backend, ej_mono_ms() - t0);
}

int main(int argc, char **argv)
{
        const char *url = getenv("EJ_TEST_NATS_URL");
        const char *db_url = getenv("EJ_TEST_DB_URL");
        char self[PATH_MAX];
        char leftover[PATH_MAX];
        pid_t files = -1;
        pid_t s3 = -1;

        ej_log_init("test_files_service", "error");
        ej_ids_init(NULL);
        if (sodium_init() < 0)
                return 1;
        if (url == NULL || url[0] == '\0' || db_url == NULL || db_url[0] == '\0') {
                fprintf(stderr, "test_files_service: EJ_TEST_NATS_URL and EJ_TEST_DB_URL must be "
                                "set (tests/run-all.sh unit sets them)\n");
                CHECK(url != NULL && db_url != NULL);
                return check_report();
        }
        if (argc > 0)
                self_path = argv[0];
        snprintf(self, sizeof(self), "%s", self_path);
        {
                char *real = realpath(dirname(self), NULL);

                snprintf(self_dir, sizeof(self_dir), "%s", real ? real : ".");
                free(real);
        }
        bus = th_bus_connect("test_files_service");
        CHECK(bus != NULL);
        if (bus == NULL)
                return check_report();
        arena = ej_arena_create(0);
        pg = PQconnectdb(db_url);
        CHECK(PQstatus(pg) == CONNECTION_OK);
        randombytes_buf(key.k, sizeof(key.k));
        sodium_bin2hex(key_hex, sizeof(key_hex), key.k, sizeof(key.k));
        th_run_tag(run_tag, sizeof(run_tag));
        CHECK(natsConnection_SubscribeSync(&uploaded_events, ej_bus_conn(bus),
                                           "ej.evt.files.uploaded") == NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));
        snprintf(work, sizeof(work), "/tmp/ej-test-files-XXXXXX");
        if (mkdtemp(work) == NULL) {
                CHECK(0);
                goto out;
        }

        /* Local backend; a crashed replica's leftovers are cleaned at start. */
        snprintf(files_dir, sizeof(files_dir), "%s/local", work);
        plant_crash_leftovers();
        files = start_files(NULL);
        CHECK(files > 0);
        if (files > 0) {
                snprintf(leftover, sizeof(leftover), "%s/tmp/deadbeef", files_dir);
                CHECK(access(leftover, F_OK) != 0);
                backend = "local";
                run_suite();
                test_erasure();
                stop_files(files);
                CHECK(temp_files() == 0);
        }
        {
                const char *sweep_env[] = {
                    "EJ_FILES_UNATTACHED_TTL_S=2", "EJ_FILES_SWEEP_INTERVAL_S=1",
                    "EJ_FILES_ORPHAN_GRACE_S=0", "EJ_FILES_TMP_GRACE_S=0", NULL};

                files = start_files(sweep_env);
                CHECK(files > 0);
                if (files > 0) {
                        test_sweeper();
                        test_reclaim_while_running();
                        stop_files(files);
                }
        }

        /* S3 backend against s3rver (which checks the access key, not the signature: the
         * signing itself is tested on AWS's vectors in test_sigv4). */
        {
                int port = th_free_port();
                char endpoint[64];
                const char *extra[] = {"EJ_FILES_BACKEND=s3",        endpoint,
                                       "EJ_S3_BUCKET=ej-test-files", "EJ_S3_REGION=us-east-1",
                                       "EJ_S3_ACCESS_KEY=S3RVER",    "EJ_S3_SECRET_KEY=S3RVER",
                                       "EJ_S3_CREATE_BUCKET=true",   NULL};

                snprintf(endpoint, sizeof(endpoint), "EJ_S3_ENDPOINT=http://127.0.0.1:%d", port);
                snprintf(files_dir, sizeof(files_dir), "%s/s3tmp", work);
                s3 = start_s3rver(port);
                CHECK(s3 > 0);
                if (s3 > 0) {
                        files = start_files(extra);
                        CHECK(files > 0);
                        if (files > 0) {
                                backend = "s3";
                                run_suite();
                                stop_files(files);
                        }
                        (void)th_service_stop(s3, 8000, NULL);
                }
        }
out:
        if (work[0] && !getenv("EJ_TEST_KEEP")) {
                char cmd[PATH_MAX + 16];

                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
                if (system(cmd) != 0)
                        fprintf(stderr, "test_files_service: cannot remove %s\n", work);
        }
        natsSubscription_Destroy(uploaded_events);
        PQfinish(pg);
        ej_arena_destroy(arena);
        ej_bus_destroy(bus, 1000);
        return check_report();
}
