#include "db_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "mem.h"

#define POOL_CONNECT_WAIT_MS 2000

struct ej_db_pool {
        pthread_mutex_t mu;
        char *conninfo;
        char *schema;
        struct ej_db **idle; /* max_idle slots, the first n_idle in use */
        int max_idle;
        int n_idle;
        int n_lent;
        bool closing; /* destroyed while connections were lent: the last put frees the pool */
};

static void pool_free(struct ej_db_pool *p)
{
        pthread_mutex_destroy(&p->mu);
        free(p->idle);
        free(p->conninfo);
        free(p->schema);
        free(p);
}

enum ej_status ej_db_pool_create(struct ej_db_pool **out, const char *conninfo, const char *schema,
                                 int max_idle, struct ej_err *err)
{
        struct ej_db_pool *p;

        *out = NULL;
        if (conninfo == NULL || schema == NULL || max_idle < 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "a pool needs conninfo and schema");
        p = xcalloc(1, sizeof(*p));
        pthread_mutex_init(&p->mu, NULL);
        p->conninfo = xstrdup(conninfo);
        p->schema = xstrdup(schema);
        p->max_idle = max_idle;
        p->idle = xcalloc(max_idle > 0 ? (size_t)max_idle : 1, sizeof(*p->idle));
        *out = p;
        return EJ_OK;
}

void ej_db_pool_destroy(struct ej_db_pool *p)
{
        bool lent;

        if (p == NULL)
                return;
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < p->n_idle; i++)
                ej_db_destroy(p->idle[i]);
        p->n_idle = 0;
        p->closing = true;
        lent = p->n_lent > 0;
        pthread_mutex_unlock(&p->mu);
        if (!lent)
                pool_free(p);
}

enum ej_status ej_db_pool_take(struct ej_db_pool *p, struct ej_db **db, struct ej_err *err)
{
        enum ej_status st;

        *db = NULL;
        pthread_mutex_lock(&p->mu);
        if (p->closing) {
                pthread_mutex_unlock(&p->mu);
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "the service is stopping");
        }
        if (p->n_idle > 0)
                *db = p->idle[--p->n_idle];
        p->n_lent++;
        pthread_mutex_unlock(&p->mu);
        if (*db != NULL)
                return EJ_OK;
        /* Connect outside the lock: other borrowers need not wait for the server. */
        st = ej_db_connect(db, p->conninfo, p->schema, POOL_CONNECT_WAIT_MS, err);
        if (st != EJ_OK) {
                pthread_mutex_lock(&p->mu);
                p->n_lent--;
                pthread_mutex_unlock(&p->mu);
        }
        return st;
}

void ej_db_pool_put(struct ej_db_pool *p, struct ej_db *db)
{
        bool last = false;

        if (db == NULL)
                return;
        ej_db_rollback(db);
        pthread_mutex_lock(&p->mu);
        p->n_lent--;
        if (p->closing) {
                last = p->n_lent == 0;
        } else if (p->n_idle < p->max_idle) {
                p->idle[p->n_idle++] = db;
                db = NULL;
        }
        pthread_mutex_unlock(&p->mu);
        ej_db_destroy(db);
        if (last)
                pool_free(p);
}

void ej_db_pool_counts(struct ej_db_pool *p, int *idle, int *lent)
{
        pthread_mutex_lock(&p->mu);
        *idle = p->n_idle;
        *lent = p->n_lent;
        pthread_mutex_unlock(&p->mu);
}
