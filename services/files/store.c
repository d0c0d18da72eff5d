/* store.c: every SQL statement of the files service. Values only through parameters; times
 * travel as epoch milliseconds. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.pb-c.h"

#include "store.h"

#include "events.h"
#include "ids.h"

static const char sql_blob_upsert[] = "INSERT INTO blobs (sha256, size) VALUES ($1, $2::bigint) "
                                      "ON CONFLICT (sha256) DO UPDATE SET orphaned_at = NULL";

static const char sql_file_insert[] =
    "INSERT INTO files (id, sha256, size, content_type, name, kind, owner_id, resource, purpose, "
    "                   public, blind_of) "
    "VALUES ($1::uuid, $2, $3::bigint, $4, $5, $6, $7, $8, $9, $10::boolean, $11::uuid) "
    "RETURNING (extract(epoch FROM created_at) * 1000)::bigint";

#define FILE_COLS                                                                                  \
        "f.id, f.sha256, f.size, f.content_type, f.name, f.kind, f.owner_id, f.resource, "         \
        "f.purpose, f.public, coalesce(f.blind_of::text, ''), "                                    \
        "(extract(epoch FROM f.created_at) * 1000)::bigint"

static const char sql_file_get[] = "SELECT " FILE_COLS " FROM files f WHERE f.id = $1::uuid";

static const char sql_blind_get[] = "SELECT " FILE_COLS " FROM files f WHERE f.blind_of = $1::uuid";

static const char sql_files_by_owner[] = "SELECT " FILE_COLS " FROM files f "
                                         "WHERE f.owner_id = $1 ORDER BY f.created_at, f.id";

static const char sql_file_attach[] =
    "UPDATE files SET resource = $2, purpose = CASE WHEN blind_of IS NULL THEN $3 ELSE purpose "
    "END, public = $4::boolean AND blind_of IS NULL, "
    "    attached_at = coalesce(attached_at, now()) "
    "WHERE id = $1::uuid OR blind_of = $1::uuid";

static const char sql_sweep_files[] =
    "DELETE FROM files WHERE resource = '' AND blind_of IS NULL "
    "  AND created_at < now() - $1::bigint * interval '1 millisecond'";

static const char sql_erase_owner[] =
    "DELETE FROM files WHERE owner_id = $1 AND resource = '' AND blind_of IS NULL";

static const char sql_mark_orphans[] =
    "UPDATE blobs b SET orphaned_at = now() WHERE b.orphaned_at IS NULL "
    "  AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)";

static const char sql_take_orphan[] =
    "DELETE FROM blobs WHERE sha256 = (SELECT b.sha256 FROM blobs b "
    "  WHERE b.orphaned_at < now() - $1::bigint * interval '1 second' "
    "    AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256) "
    "  LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING sha256";

static void row_from_result(struct ej_arena *a, const PGresult *res, int r, struct files_row *row)
{
        row->id = ej_arena_strdup(a, ej_db_val(res, r, 0));
        row->sha256 = ej_arena_strdup(a, ej_db_val(res, r, 1));
        row->size = ej_db_int64(res, r, 2);
        row->content_type = ej_arena_strdup(a, ej_db_val(res, r, 3));
        row->name = ej_arena_strdup(a, ej_db_val(res, r, 4));
        row->kind = ej_arena_strdup(a, ej_db_val(res, r, 5));
        row->owner_id = ej_arena_strdup(a, ej_db_val(res, r, 6));
        row->resource = ej_arena_strdup(a, ej_db_val(res, r, 7));
        row->purpose = ej_arena_strdup(a, ej_db_val(res, r, 8));
        row->public_ = strcmp(ej_db_val(res, r, 9), "t") == 0;
        row->blind_of = ej_arena_strdup(a, ej_db_val(res, r, 10));
        row->created_at_ms = ej_db_int64(res, r, 11);
}

enum ej_status store_file_insert(struct ej_db *db, struct files_row *row, struct ej_err *err)
{
        char size[24];
        const char *blob[] = {row->sha256, size};
        const char *params[] = {row->id,
                                row->sha256,
                                size,
                                row->content_type,
                                row->name,
                                row->kind,
                                row->owner_id,
                                row->resource ? row->resource : "",
                                row->purpose ? row->purpose : "",
                                row->public_ ? "true" : "false",
                                row->blind_of && row->blind_of[0] ? row->blind_of : NULL};
        Ej__Files__FileUploaded ev = EJ__FILES__FILE_UPLOADED__INIT;
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(size, sizeof(size), "%" PRId64, row->size);
        st = ej_db_begin(db, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_blob_upsert, 2, blob, NULL, err);
        if (st == EJ_OK)
                st = ej_db_exec(db, sql_file_insert, 11, params, &res, err);
        if (st == EJ_OK) {
                row->created_at_ms = ej_db_int64(res, 0, 0);
                PQclear(res);
                ev.file_id = (char *)(uintptr_t)row->id;
                ev.sha256 = (char *)(uintptr_t)row->sha256;
                ev.size = row->size;
                ev.content_type = (char *)(uintptr_t)row->content_type;
                ev.kind = (char *)(uintptr_t)row->kind;
                ev.owner_id = (char *)(uintptr_t)row->owner_id;
                st = ej_outbox_add(db, "ej.evt.files.uploaded", "file.uploaded", row->owner_id,
                                   &ev.base, NULL, err);
        }
        if (st == EJ_OK)
                st = ej_db_commit(db, err);
        if (st != EJ_OK)
                ej_db_rollback(db);
        return st;
}

/* Runs a one-row select of file columns. */
static enum ej_status get_one(struct ej_db *db, struct ej_arena *a, const char *sql, const char *id,
                              struct files_row *row, struct ej_err *err)
{
        const char *params[] = {id};
        PGresult *res = NULL;
        enum ej_status st;

        if (!ej_uuid_valid(id))
                return ej_err_set(err, EJ_ERR_NOT_FOUND, "file_id", "no such file");
        st = ej_db_exec(db, sql, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "file_id", "no such file");
        else
                row_from_result(a, res, 0, row);
        PQclear(res);
        return st;
}

enum ej_status store_file_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              struct files_row *row, struct ej_err *err)
{
        return get_one(db, a, sql_file_get, id, row, err);
}

enum ej_status store_blind_get(struct ej_db *db, struct ej_arena *a, const char *source_id,
                               struct files_row *row, struct ej_err *err)
{
        return get_one(db, a, sql_blind_get, source_id, row, err);
}

enum ej_status store_file_attach(struct ej_db *db, const char *id, const char *resource,
                                 const char *purpose, bool public_, struct ej_err *err)
{
        const char *params[] = {id, resource, purpose, public_ ? "true" : "false"};
        PGresult *res = NULL;
        enum ej_status st;

        if (!ej_uuid_valid(id))
                return ej_err_set(err, EJ_ERR_NOT_FOUND, "file_id", "no such file");
        st = ej_db_exec(db, sql_file_attach, 4, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (strcmp(PQcmdTuples(res), "0") == 0)
                st = ej_err_set(err, EJ_ERR_NOT_FOUND, "file_id", "no such file");
        PQclear(res);
        return st;
}

enum ej_status store_files_by_owner(struct ej_db *db, struct ej_arena *a, const char *owner_id,
                                    struct files_row **rows, size_t *n, struct ej_err *err)
{
        const char *params[] = {owner_id};
        PGresult *res = NULL;
        enum ej_status st;
        int count;

        *rows = NULL;
        *n = 0;
        st = ej_db_exec(db, sql_files_by_owner, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        count = PQntuples(res);
        if (count > 0) {
                *rows = ej_arena_calloc(a, (size_t)count * sizeof(**rows));
                for (int i = 0; i < count; i++)
                        row_from_result(a, res, i, &(*rows)[i]);
        }
        *n = (size_t)count;
        PQclear(res);
        return EJ_OK;
}

enum ej_status store_sweep_unattached(struct ej_db *db, int64_t ttl_ms, long *removed,
                                      struct ej_err *err)
{
        char ttl[24];
        const char *params[] = {ttl};
        PGresult *res = NULL;
        enum ej_status st;

        *removed = 0;
        snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
        st = ej_db_exec(db, sql_sweep_files, 1, params, &res, err);
        if (st == EJ_OK) {
                *removed = strtol(PQcmdTuples(res), NULL, 10);
                PQclear(res);
                st = ej_db_exec(db, sql_mark_orphans, 0, NULL, NULL, err);
        }
        return st;
}

enum ej_status store_erase_owner(struct ej_db *db, const char *owner_id, long *removed,
                                 struct ej_err *err)
{
        const char *params[] = {owner_id};
        PGresult *res = NULL;
        enum ej_status st;

        *removed = 0;
        st = ej_db_exec(db, sql_erase_owner, 1, params, &res, err);
        if (st == EJ_OK) {
                *removed = strtol(PQcmdTuples(res), NULL, 10);
                PQclear(res);
                st = ej_db_exec(db, sql_mark_orphans, 0, NULL, NULL, err);
        }
        return st;
}

enum ej_status store_take_orphan(struct ej_db *db, int64_t grace_s, char key[65],
                                 struct ej_err *err)
{
        char grace[24];
        const char *params[] = {grace};
        PGresult *res = NULL;
        enum ej_status st;

        snprintf(grace, sizeof(grace), "%" PRId64, grace_s);
        st = ej_db_exec(db, sql_take_orphan, 1, params, &res, err);
        if (st != EJ_OK)
                return st;
        if (PQntuples(res) == 0)
                st = EJ_ERR_NOT_FOUND;
        else
                snprintf(key, 65, "%s", ej_db_val(res, 0, 0));
        PQclear(res);
        return st;
}
