/*
 * store.h: every SQL statement of the files service (store.c), over a connection the caller
 * owns (a runtime worker's, or one borrowed from the runtime's pool). Strings of returned rows
 * live in the caller's arena. Thread-safe as far as the connection is used by one thread.
 */
#ifndef EJ_FILES_STORE_H
#define EJ_FILES_STORE_H

#include <stddef.h>

#include "db.h"
#include "files.h"
#include "mem.h"

/* Records a committed upload: the blob (or clears its orphan mark), the file row and the event
 * file.uploaded, in one transaction. Fills created_at_ms. */
enum ej_status store_file_insert(struct ej_db *db, struct files_row *row, struct ej_err *err);

/* Loads file `id` into `row` (strings in `a`). EJ_ERR_NOT_FOUND when there is none (also for a
 * malformed id). */
enum ej_status store_file_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              struct files_row *row, struct ej_err *err);

/* Sets resource, purpose and public of file `id` (and of its anonymised copy, if any). */
enum ej_status store_file_attach(struct ej_db *db, const char *id, const char *resource,
                                 const char *purpose, bool public_, struct ej_err *err);

/* The anonymised copy of `source_id`, if one was made. */
enum ej_status store_blind_get(struct ej_db *db, struct ej_arena *a, const char *source_id,
                               struct files_row *row, struct ej_err *err);

/* Every file uploaded by `owner_id`, oldest first, as an arena array. */
enum ej_status store_files_by_owner(struct ej_db *db, struct ej_arena *a, const char *owner_id,
                                    struct files_row **rows, size_t *n, struct ej_err *err);

/* Erasure of a person: deletes their unattached uploads (never the attached scholarly files)
 * and marks blobs no file refers to any more as orphaned, for the sweeper to delete after the
 * grace period. Counts in `*removed`. Runs in the caller's transaction. */
enum ej_status store_erase_owner(struct ej_db *db, const char *owner_id, long *removed,
                                 struct ej_err *err);

/* Deletes unattached files older than `ttl_ms` and marks blobs no file refers to as orphaned;
 * returns how many files went in `*removed`. */
enum ej_status store_sweep_unattached(struct ej_db *db, int64_t ttl_ms, long *removed,
                                      struct ej_err *err);

/* Takes one blob orphaned for longer than `grace_s` and still unreferenced, deletes its row,
 * and returns its key in `key` (65 bytes); EJ_ERR_NOT_FOUND when there is none. The caller
 * deletes the bytes. */
enum ej_status store_take_orphan(struct ej_db *db, int64_t grace_s, char key[65],
                                 struct ej_err *err);

#endif
