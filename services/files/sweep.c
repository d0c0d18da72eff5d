/* sweep.c: the sweeper thread (sweep.h). */
#include "sweep.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "db_pool.h"
#include "ids.h"
#include "log.h"
#include "mem.h"
#include "storage.h"
#include "store.h"
#include "upload.h"

struct files_sweeper {
        struct files_sweeper_deps deps;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv; /* signalled when stopping is set */
        bool stopping;
};

/* Unattached files past their time to live, then orphaned blobs past their grace period, then
 * the temp files of replicas that are gone. */
static void sweep_store(const struct files_sweeper_deps *d)
{
        struct ej_db *db = NULL;
        struct ej_err err;
        long removed = 0;
        char key[65];
        enum ej_status st;

        ej_err_clear(&err);
        st = ej_db_pool_take(d->db_pool, &db, &err);
        if (st == EJ_OK)
                st = store_sweep_unattached(db, d->cfg->unattached_ttl_ms, &removed, &err);
        if (st == EJ_OK && removed > 0)
                ej_info(NULL, "removed %ld unattached uploads", removed);
        while (st == EJ_OK &&
               (st = store_take_orphan(db, d->cfg->orphan_grace_s, key, &err)) == EJ_OK) {
                if (storage_delete(d->storage, key, &err) != EJ_OK)
                        ej_warn(NULL, "cannot delete blob %s: %s", key, err.msg);
        }
        if (st != EJ_OK && st != EJ_ERR_NOT_FOUND)
                ej_warn(NULL, "sweep: %s", err.msg);
        ej_db_pool_put(d->db_pool, db);
        files_tmp_reclaim(d->cfg);
}

static void *sweeper_main(void *arg)
{
        struct files_sweeper *s = arg;
        long long next_sweep = ej_mono_ms() + 1000;

        pthread_mutex_lock(&s->mu);
        while (!s->stopping) {
                struct timespec ts;

                pthread_mutex_unlock(&s->mu);
                files_uploads_expire(s->deps.uploads);
                if (ej_mono_ms() >= next_sweep) {
                        next_sweep = ej_mono_ms() + s->deps.cfg->sweep_interval_ms;
                        sweep_store(&s->deps);
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_mutex_lock(&s->mu);
                if (!s->stopping)
                        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

enum ej_status files_sweeper_start(struct files_sweeper **out,
                                   const struct files_sweeper_deps *deps, struct ej_err *err)
{
        struct files_sweeper *s = xcalloc(1, sizeof(*s));

        *out = NULL;
        s->deps = *deps;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
                pthread_cond_destroy(&s->cv);
                pthread_mutex_destroy(&s->mu);
                free(s);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot start the sweeper");
        }
        *out = s;
        return EJ_OK;
}

void files_sweeper_stop(struct files_sweeper *s)
{
        if (s == NULL)
                return;
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
}
