/* handlers.c: one function per operation of proto/files.proto (no SQL, no NATS here). */
#include "handlers.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.pb-c.h"
#include "users.pb-c.h"

#include "blind.h"
#include "content.h"
#include "digest.h"
#include "ids.h"
#include "log.h"
#include "storage.h"
#include "store.h"
#include "str.h"
#include "upload.h"

#define T_PDF "application/pdf"

/* Services call each other without Ej-User-Id; the gateway sets it for every signed-in caller
 * and never routes to the service-only operations (see proto/files.proto). */
static enum ej_status require_service(const struct ej_call *call, const char *op,
                                      struct ej_err *err)
{
        if (call->user_id[0] != '\0')
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "%s is for services only", op);
        return EJ_OK;
}

/* May the caller read `row`? Public files: anyone. Otherwise a valid grant for this file and
 * caller; without one, only the uploader of a file not yet attached. */
static enum ej_status check_access(struct files_ctx *ctx, const struct ej_call *call,
                                   const struct files_row *row, const char *grant,
                                   struct ej_err *err)
{
        if (row->public_)
                return EJ_OK;
        if (row->resource[0] == '\0' && call->user_id[0] != '\0' &&
            strcmp(call->user_id, row->owner_id) == 0)
                return EJ_OK;
        if (grant != NULL && grant[0] != '\0')
                return ej_grant_verify(&ctx->cfg.grant_key, grant, row->id, call->user_id,
                                       ej_now_ms(), NULL, 0, err);
        return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "you may not read this file");
}

enum ej_status files_begin(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err)
{
        struct files_ctx *ctx = call->svc;
        const Ej__Files__UploadBegin *in = (const Ej__Files__UploadBegin *)req;
        Ej__Files__UploadBeginReply *out = (Ej__Files__UploadBeginReply *)resp;
        const struct files_kind *kind;
        char name[4 * FILES_NAME_MAX + 1];

        if (call->user_id[0] == '\0')
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "sign in to upload files");
        if (strlen(call->user_id) > EJ_GRANT_FIELD_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "user id too long");
        kind = files_kind_find(&ctx->cfg, in->kind);
        if (kind == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, "kind", "unknown kind of file \"%.40s\"",
                                  in->kind ? in->kind : "");
        if (in->declared_size < -1)
                return ej_err_set(err, EJ_ERR_INVALID, "declared_size", "a size is -1 or more");
        if (in->declared_size > kind->max_size)
                return ej_err_set(err, EJ_ERR_TOO_LARGE, "file",
                                  "the file is over the limit of %" PRId64 " bytes for %s",
                                  kind->max_size, kind->name);
        files_sanitize_name(in->filename, name, sizeof(name));
        return files_upload_start(ctx->uploads, call->arena, call->user_id, kind, name, out, err);
}

enum ej_status files_open(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err)
{
        struct files_ctx *ctx = call->svc;
        const Ej__Files__DownloadOpen *in = (const Ej__Files__DownloadOpen *)req;
        Ej__Files__FileMeta *out = (Ej__Files__FileMeta *)resp;
        struct files_row row;
        int64_t size;
        enum ej_status st;

        st = store_file_get(call->db, call->arena, in->file_id, &row, err);
        if (st == EJ_OK)
                st = check_access(ctx, call, &row, in->grant, err);
        if (st != EJ_OK)
                return st;
        size = row.size;
        out->id = ej_arena_strdup(call->arena, row.id);
        out->size = size;
        out->content_type = ej_arena_strdup(call->arena, row.content_type);
        out->name = ej_arena_strdup(call->arena, row.name);
        out->sha256 = ej_arena_strdup(call->arena, row.sha256);
        out->disposition = row.public_ && strcmp(row.purpose, "galley") == 0 &&
                                   strcmp(row.content_type, T_PDF) == 0
                               ? "inline"
                               : "attachment";
        out->chunk_size = FILES_CHUNK_SIZE;
        out->range_start = 0;
        out->range_end = size - 1;
        if (!in->has_range)
                return EJ_OK;
        if (in->range_suffix > 0) {
                /* bytes=-N: the last N bytes (all of them when N is larger) */
                if (size == 0) {
                        out->range_unsatisfiable = true;
                        return EJ_OK;
                }
                out->range_start = in->range_suffix < size ? size - in->range_suffix : 0;
                out->partial = true;
                return EJ_OK;
        }
        if (in->range_start < 0)
                return EJ_OK; /* no usable range: the whole file */
        /* Past the end, or empty (the gateway sends 1-0 for "bytes=-0"): nothing to send. */
        if (in->range_start >= size || (in->range_end >= 0 && in->range_end < in->range_start)) {
                out->range_unsatisfiable = true;
                out->range_start = 0;
                return EJ_OK;
        }
        out->range_start = in->range_start;
        out->range_end = in->range_end < 0 || in->range_end >= size ? size - 1 : in->range_end;
        out->partial = true;
        return EJ_OK;
}

enum ej_status files_read(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err)
{
        struct files_ctx *ctx = call->svc;
        const Ej__Files__FileRead *in = (const Ej__Files__FileRead *)req;
        Ej__Files__FileData *out = (Ej__Files__FileData *)resp;
        struct files_row row;
        size_t want;
        size_t got = 0;
        void *buf;
        enum ej_status st;

        if (in->length == 0 || in->length > FILES_CHUNK_SIZE)
                return ej_err_set(err, EJ_ERR_INVALID, "length", "a read is 1 to %d bytes",
                                  FILES_CHUNK_SIZE);
        if (in->offset < 0)
                return ej_err_set(err, EJ_ERR_INVALID, "offset", "a negative offset");
        st = store_file_get(call->db, call->arena, in->file_id, &row, err);
        if (st == EJ_OK)
                st = check_access(ctx, call, &row, in->grant, err);
        if (st != EJ_OK)
                return st;
        if (in->offset >= row.size)
                return EJ_OK;
        want = row.size - in->offset < (int64_t)in->length ? (size_t)(row.size - in->offset)
                                                           : in->length;
        buf = ej_arena_alloc(call->arena, want);
        st = storage_read(ctx->storage, row.sha256, in->offset, want, buf, &got, err);
        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the content of file %s is missing",
                                  row.id);
        if (st != EJ_OK)
                return st;
        out->data.data = buf;
        out->data.len = got;
        return EJ_OK;
}

/* True when `s` is 1..max bytes without control characters. */
static bool printable(const char *s, size_t max)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

enum ej_status files_attach(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Files__AttachRequest *in = (const Ej__Files__AttachRequest *)req;
        Ej__Files__FileInfo *out = (Ej__Files__FileInfo *)resp;
        struct files_row row;
        enum ej_status st;

        st = require_service(call, "attach", err);
        if (st != EJ_OK)
                return st;
        if (!printable(in->resource, 200))
                return ej_err_set(err, EJ_ERR_INVALID, "resource", "a resource is required");
        if (in->purpose && in->purpose[0] && !printable(in->purpose, 64))
                return ej_err_set(err, EJ_ERR_INVALID, "purpose", "a malformed purpose");
        st = store_file_attach(call->db, in->file_id, in->resource, in->purpose ? in->purpose : "",
                               in->public_, err);
        if (st == EJ_OK)
                st = store_file_get(call->db, call->arena, in->file_id, &row, err);
        if (st == EJ_OK)
                *out = *files_info_from_row(call->arena, &row);
        return st;
}

/* The neutral name of an anonymised copy, by type. */
static const char *blind_name(const char *type)
{
        if (strcmp(type, T_PDF) == 0)
                return "manuscript.pdf";
        if (strstr(type, "wordprocessingml") != NULL)
                return "manuscript.docx";
        if (strcmp(type, "application/vnd.oasis.opendocument.text") == 0)
                return "manuscript.odt";
        if (strstr(type, "rtf") != NULL)
                return "manuscript.rtf";
        if (strstr(type, "tex") != NULL)
                return "manuscript.tex";
        if (strcmp(type, "application/zip") == 0)
                return "manuscript.zip";
        if (strcmp(type, "text/plain") == 0)
                return "manuscript.txt";
        return "manuscript";
}

/* Hashes the file at `path`: hex SHA-256 and size. */
static enum ej_status hash_file(const char *path, char hex[65], int64_t *size, struct ej_err *err)
{
        unsigned char buf[65536];
        struct ej_sha256 sha;
        FILE *f;
        size_t n;

        *size = 0;
        if (ej_sha256_init(&sha, err) != EJ_OK)
                return EJ_ERR_INTERNAL;
        f = fopen(path, "rb");
        if (f == NULL) {
                ej_sha256_free(&sha);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot read the copy");
        }
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
                ej_sha256_update(&sha, buf, n);
                *size += (int64_t)n;
        }
        fclose(f);
        ej_sha256_final_hex(&sha, hex);
        return EJ_OK;
}

/* The hook op "ej.files.blind_copy": the anonymised copy of a file, made once (blind.h). */
enum ej_status files_blind(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err)
{
        struct files_ctx *ctx = call->svc;
        const Ej__Files__BlindCopyRequest *in = (const Ej__Files__BlindCopyRequest *)req;
        Ej__Files__FileInfo *out = (Ej__Files__FileInfo *)resp;
        struct files_row src;
        struct files_row copy;
        char src_path[PATH_MAX];
        char dst_path[PATH_MAX];
        char tag[EJ_UUID_LEN];
        char id[EJ_UUID_LEN];
        char sha[65];
        const char **canaries = NULL;
        enum ej_status st;

        st = require_service(call, "blind_copy", err);
        if (st == EJ_OK)
                st = store_file_get(call->db, call->arena, in->file_id, &src, err);
        if (st != EJ_OK)
                return st;
        if (src.blind_of[0] != '\0')
                return ej_err_set(err, EJ_ERR_INVALID, "file_id", "this file is already a copy");
        st = store_blind_get(call->db, call->arena, src.id, &copy, err);
        if (st == EJ_OK) {
                *out = *files_info_from_row(call->arena, &copy);
                return EJ_OK;
        }
        if (st != EJ_ERR_NOT_FOUND)
                return st;
        ej_err_clear(err);

        ej_uuid(tag);
        snprintf(src_path, sizeof(src_path), "%s/blind-%s.src", ctx->cfg.tmp_dir, tag);
        snprintf(dst_path, sizeof(dst_path), "%s/blind-%s.out", ctx->cfg.tmp_dir, tag);
        if (in->n_canaries > 0) {
                canaries = ej_arena_calloc(call->arena, (in->n_canaries + 1) * sizeof(*canaries));
                for (size_t i = 0; i < in->n_canaries; i++)
                        canaries[i] = in->canaries[i];
        }
        st = storage_fetch_file(ctx->storage, src.sha256, src_path, err);
        if (st == EJ_OK)
                st = blind_copy(src_path, src.content_type, dst_path, canaries, err);
        unlink(src_path);
        if (st == EJ_OK)
                st = hash_file(dst_path, sha, &copy.size, err);
        if (st == EJ_OK)
                st = storage_put_file(ctx->storage, sha, dst_path, copy.size, NULL, err);
        unlink(dst_path);
        if (st != EJ_OK)
                return st;
        ej_uuid(id);
        copy.id = id;
        copy.sha256 = sha;
        copy.content_type = src.content_type;
        copy.name = blind_name(src.content_type);
        copy.kind = src.kind;
        copy.owner_id = src.owner_id;
        copy.resource = src.resource;
        copy.purpose = "blind";
        copy.public_ = false;
        copy.blind_of = src.id;
        st = store_file_insert(call->db, &copy, err);
        if (st == EJ_ERR_CONFLICT) {
                /* Made concurrently by another request: that one is the copy. */
                ej_err_clear(err);
                st = store_blind_get(call->db, call->arena, src.id, &copy, err);
        }
        if (st == EJ_OK)
                *out = *files_info_from_row(call->arena, &copy);
        return st;
}

enum ej_status files_info(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err)
{
        const Ej__Files__InfoRequest *in = (const Ej__Files__InfoRequest *)req;
        Ej__Files__FileInfo *out = (Ej__Files__FileInfo *)resp;
        struct files_row row;
        enum ej_status st;

        st = store_file_get(call->db, call->arena, in->file_id, &row, err);
        if (st != EJ_OK)
                return st;
        /* Services see any file; a person only their own. */
        if (call->user_id[0] != '\0' && strcmp(call->user_id, row.owner_id) != 0)
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "not your file");
        *out = *files_info_from_row(call->arena, &row);
        return EJ_OK;
}

enum ej_status files_on_user_erased(struct ej_db *db, const Ej__Common__Event *ev,
                                    const char *subject, void *ud, struct ej_err *err)
{
        struct ej_arena *a = ej_arena_create(0);
        ProtobufCAllocator alloc = ej_arena_pb_allocator(a);
        Ej__Users__UserErased *e = NULL;
        long removed = 0;
        enum ej_status st = EJ_OK;

        (void)subject;
        (void)ud;
        e = (Ej__Users__UserErased *)protobuf_c_message_unpack(
            &ej__users__user_erased__descriptor, &alloc, ev->payload.len, ev->payload.data);
        /* A payload we cannot read would fail forever: log it and let it go. */
        if (e == NULL || !printable(e->user_id, EJ_GRANT_FIELD_MAX)) {
                ej_warn(NULL, "user.erased %s: unreadable payload, skipped", ev->id);
                goto out;
        }
        st = store_erase_owner(db, e->user_id, &removed, err);
        if (st == EJ_OK)
                ej_info(NULL,
                        "user.erased %s: user %s, %ld unattached upload(s) deleted, attached "
                        "files kept",
                        ev->id, e->user_id, removed);
out:
        ej_arena_destroy(a);
        return st;
}

enum ej_status files_gdpr_export(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Common__GdprExportRequest *in = (const Ej__Common__GdprExportRequest *)req;
        Ej__Common__GdprExportPart *out = (Ej__Common__GdprExportPart *)resp;
        struct files_row *rows = NULL;
        size_t n = 0;
        struct ej_buf b;
        enum ej_status st;

        st = require_service(call, "gdpr_export", err);
        if (st != EJ_OK)
                return st;
        if (!printable(in->user_id, EJ_GRANT_FIELD_MAX))
                return ej_err_set(err, EJ_ERR_INVALID, "user_id", "a user id is required");
        st = store_files_by_owner(call->db, call->arena, in->user_id, &rows, &n, err);
        if (st != EJ_OK)
                return st;
        ej_buf_init(&b);
        ej_buf_append_c(&b, "{\"files\":[");
        for (size_t i = 0; i < n; i++) {
                const struct files_row *r = &rows[i];

                if (r->blind_of[0] != '\0')
                        continue; /* derived copies are not the user's uploads */
                if (b.p[b.n - 1] != '[')
                        ej_buf_append_char(&b, ',');
                ej_buf_append_c(&b, "{\"id\":");
                ej_buf_append_json_str(&b, r->id, strlen(r->id));
                ej_buf_append_c(&b, ",\"name\":");
                ej_buf_append_json_str(&b, r->name, strlen(r->name));
                ej_buf_append_c(&b, ",\"kind\":");
                ej_buf_append_json_str(&b, r->kind, strlen(r->kind));
                ej_buf_append_c(&b, ",\"content_type\":");
                ej_buf_append_json_str(&b, r->content_type, strlen(r->content_type));
                ej_buf_appendf(&b,
                               ",\"size\":%" PRId64 ",\"sha256\":\"%s\",\"created_at_ms\":%" PRId64,
                               r->size, r->sha256, r->created_at_ms);
                ej_buf_append_c(&b, ",\"resource\":");
                ej_buf_append_json_str(&b, r->resource, strlen(r->resource));
                ej_buf_append_c(&b, ",\"purpose\":");
                ej_buf_append_json_str(&b, r->purpose, strlen(r->purpose));
                ej_buf_appendf(&b, ",\"public\":%s}", r->public_ ? "true" : "false");
        }
        ej_buf_append_c(&b, "]}");
        out->service = "files";
        out->json = ej_arena_strndup(call->arena, b.p, b.n);
        ej_buf_free(&b);
        return EJ_OK;
}
