/*
 * storage.h: where the bytes of stored files live, behind one interface.
 *
 * Blobs are immutable and addressed by content: the key of a blob is the lower-case hex SHA-256
 * of its bytes (64 characters, never anything a user typed). Putting a blob that already exists
 * is a no-op that succeeds (identical content is stored once). Two backends:
 *   - local: a directory (EJ_FILES_DIR), blobs at <dir>/ab/cd/<sha256>, written through a temp
 *     file, fsync, rename and fsync of the directory, so a crash never leaves a partial blob
 *     under its final name.
 *   - s3: an S3-compatible bucket over HTTP (path-style URLs, SigV4 with x-amz-content-sha256),
 *     multipart upload above a threshold, ranged GET.
 *
 * A struct storage is created once in main and shared by every thread: each call is
 * thread-safe (the S3 backend keeps a small pool of HTTP clients). The caller owns every buffer
 * and path it passes; nothing is retained after a call returns.
 */
#ifndef EJ_FILES_STORAGE_H
#define EJ_FILES_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct storage;

struct storage_s3_config {
        const char *endpoint;   /* "http://127.0.0.1:4569" (scheme, host, optional port) */
        const char *bucket;     /* path-style: <endpoint>/<bucket>/<key> */
        const char *region;     /* "us-east-1" */
        const char *access_key; /* SigV4 credentials */
        const char *secret_key;
        int64_t multipart_threshold; /* objects larger than this use multipart upload */
        int64_t part_size;           /* bytes per part (S3's minimum is 5 MiB) */
        bool create_bucket;          /* create the bucket at start when it is missing */
        int timeout_ms;              /* per HTTP request */
};

/* Opens the local backend in `dir` (created when missing, with its temp directory). */
enum ej_status storage_local_open(struct storage **out, const char *dir, struct ej_err *err);

/* Opens the S3 backend; checks that the bucket answers (creating it when asked to). */
enum ej_status storage_s3_open(struct storage **out, const struct storage_s3_config *cfg,
                               struct ej_err *err);

/* Frees the backend. Accepts NULL. */
void storage_destroy(struct storage *s);

/* "local" or "s3". */
const char *storage_kind(const struct storage *s);

/* Stores the `size` bytes of the file at `path` (whose SHA-256 is `key`) under `key`. The file
 * is consumed: on success it no longer exists at `path` (renamed into place by the local
 * backend when on the same file system, deleted after upload otherwise). On failure it is left
 * for the caller to remove. `*stored` (may be NULL) tells whether new bytes were written (false
 * when the blob already existed). */
enum ej_status storage_put_file(struct storage *s, const char *key, const char *path, int64_t size,
                                bool *stored, struct ej_err *err);

/* Supplies the bytes of a streamed put: copy up to `cap` bytes into `buf`, return how many
 * (0 at the end) or -1 to abort. */
typedef long (*storage_read_fn)(void *ud, char *buf, size_t cap);

/* Stores `size` bytes read from `read_fn` under `key`; the caller vouches that `key` is their
 * SHA-256 (the local backend checks it and refuses a mismatch with EJ_ERR_INVALID). */
enum ej_status storage_put_stream(struct storage *s, const char *key, int64_t size,
                                  storage_read_fn read_fn, void *ud, struct ej_err *err);

/* Reads up to `len` bytes at `offset` of blob `key` into `buf`; `*got` is the number read (less
 * than `len` only at the end of the blob). EJ_ERR_NOT_FOUND when there is no such blob. */
enum ej_status storage_read(struct storage *s, const char *key, int64_t offset, size_t len,
                            void *buf, size_t *got, struct ej_err *err);

/* Copies the whole blob `key` to a new file at `path` (for tools that need a file, such as the
 * blind copy). */
enum ej_status storage_fetch_file(struct storage *s, const char *key, const char *path,
                                  struct ej_err *err);

/* The size of blob `key`; EJ_ERR_NOT_FOUND when there is none. */
enum ej_status storage_head(struct storage *s, const char *key, int64_t *size, struct ej_err *err);

/* True when blob `key` exists (a failure to ask counts as false with `err` filled). */
bool storage_exists(struct storage *s, const char *key, struct ej_err *err);

/* Deletes blob `key`; deleting a missing blob succeeds. */
enum ej_status storage_delete(struct storage *s, const char *key, struct ej_err *err);

/* True when `key` is 64 lower-case hex digits (the only keys the backends accept). */
bool storage_key_ok(const char *key);

#endif
