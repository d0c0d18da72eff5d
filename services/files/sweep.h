/*
 * sweep.h: the files service's sweeper thread (sweep.c). Every second it aborts uploads idle
 * for longer than the idle timeout; every sweep interval it deletes files never attached within
 * their time to live and then the blobs orphaned for longer than the grace period, on a
 * connection borrowed from the runtime's pool.
 *
 * The sweeper borrows everything in struct files_sweeper_deps (alive until files_sweeper_stop
 * returns) and owns its thread.
 */
#ifndef EJ_FILES_SWEEP_H
#define EJ_FILES_SWEEP_H

#include "files.h"
#include "status.h"

struct ej_db_pool;
struct files_uploads;
struct storage;
struct files_sweeper;

struct files_sweeper_deps {
        const struct files_config *cfg;
        struct storage *storage;
        struct files_uploads *uploads;
        struct ej_db_pool *db_pool;
};

/* Starts the thread (`deps` is copied). On success *out is the caller's (files_sweeper_stop). */
enum ej_status files_sweeper_start(struct files_sweeper **out,
                                   const struct files_sweeper_deps *deps, struct ej_err *err);

/* Stops the thread (it finishes the sweep in hand) and frees it. Accepts NULL. */
void files_sweeper_stop(struct files_sweeper *s);

#endif
