/*
 * upload.h: the uploads in progress on this replica (upload.c).
 *
 * An upload begins with files_upload_start (the operation upload_begin); its chunks then come
 * on a subject of its own, "ej.upload.<replica>.<upload id>", which this module subscribes to
 * on the runtime's NATS connection and answers from nats.c's callback threads; its commit
 * stores the bytes and records the file on a connection borrowed from the runtime's pool.
 *
 * The registry borrows everything in struct files_uploads_deps (the caller keeps it alive until
 * files_uploads_destroy returns) and owns the uploads: their temp files, subscriptions and
 * memory. Every function is thread-safe.
 */
#ifndef EJ_FILES_UPLOAD_H
#define EJ_FILES_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "files.pb-c.h"

#include "files.h"
#include "mem.h"
#include "status.h"

struct ej_bus;
struct ej_db_pool;
struct files_magic;
struct storage;
struct files_uploads;

/* What the uploads work with, all borrowed. */
struct files_uploads_deps {
        const struct files_config *cfg;
        struct storage *storage;
        struct files_magic *magic;
        struct ej_bus *bus;         /* the runtime's connection: chunk subscriptions, replies */
        struct ej_db_pool *db_pool; /* the runtime's pool: one connection per commit */
};

/* Creates the registry (`deps` is copied); starts nothing yet. The caller owns the result
 * (files_uploads_destroy). */
struct files_uploads *files_uploads_create(const struct files_uploads_deps *deps);

/* Aborts every upload in progress (temp files removed, subscriptions ended), waiting up to 5 s
 * for frames being handled, and frees the registry. Call it before the bus closes. Accepts
 * NULL. */
void files_uploads_destroy(struct files_uploads *r);

/* Begins an upload for `user_id` of `kind` (sizes already checked; `name` already sanitised):
 * creates its temp file, subscribes to its chunk subject and fills `reply`, whose strings live
 * in `a`. EJ_ERR_TOO_MANY when the user has EJ_FILES_MAX_UPLOADS_PER_USER in progress,
 * EJ_ERR_UNAVAILABLE when the replica has EJ_FILES_MAX_UPLOADS. */
enum ej_status files_upload_start(struct files_uploads *r, struct ej_arena *a, const char *user_id,
                                  const struct files_kind *kind, const char *name,
                                  Ej__Files__UploadBeginReply *reply, struct ej_err *err);

/* Aborts uploads idle for longer than the idle timeout. Called by the sweeper. */
void files_uploads_expire(struct files_uploads *r);

/* The number of uploads in progress (for tests and metrics). */
size_t files_uploads_count(struct files_uploads *r);

/* Temp files belong to the replica that writes them: <dir>/tmp/<replica>/<upload id>.part, next
 * to <dir>/tmp/<replica>.lock, which the replica holds locked (flock) for its whole life. */

/* Removes what gone replicas left in <dir>/tmp: the directories of replicas whose lock is free,
 * once the lock file is older than EJ_FILES_TMP_GRACE_S. Every replica's sweeper calls it, so
 * the temp space of a replica that never comes back is reclaimed by the others. */
void files_tmp_reclaim(const struct files_config *cfg);

/* Reclaims (files_tmp_reclaim), then creates and locks this replica's own directory (the lock
 * lives as long as the process) and sets cfg->tmp_dir to it. */
enum ej_status files_tmp_prepare(struct files_config *cfg, struct ej_err *err);

#endif
