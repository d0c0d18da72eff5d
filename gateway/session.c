/*
 * session.c: the gateway's cache of resolved sessions, so a signed-in request usually costs no
 * ej.users.authenticate round trip. Keyed by the SHA-256 hex of the token (the raw token is
 * never stored). An entry lives at most ttl_ms and never past the session's own expiry; when
 * the cache is full the oldest entry goes. A revocation broadcast evicts at once. One mutex;
 * thread-safe.
 */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

#define SESSION_BUCKETS 4096u /* power of two */

struct entry {
        struct entry *next;          /* hash chain */
        struct entry *older, *newer; /* age list */
        char hash[EJ_SHA256_HEX_LEN];
        char *user_id;
        char *roles;
        long long expires_at_ms; /* realtime: the session's expiry, 0 when unknown */
        long long fresh_until;   /* monotonic: the cache's own limit */
};

struct gw_sessions {
        pthread_mutex_t mu;
        struct entry *buckets[SESSION_BUCKETS];
        struct entry *oldest, *newest;
        size_t count, max;
        int ttl_ms;
};

static size_t bucket_of(const char *hash)
{
        size_t h = 0;

        /* The key is already a uniform hash: its first characters spread well enough. */
        for (int i = 0; i < 8 && hash[i]; i++)
                h = h * 31 + (unsigned char)hash[i];
        return h & (SESSION_BUCKETS - 1);
}

static void entry_free(struct entry *e)
{
        free(e->user_id);
        free(e->roles);
        free(e);
}

/* Unlinks e from its chain and the age list and frees it. Caller holds mu. */
static void entry_drop(struct gw_sessions *s, struct entry *e)
{
        struct entry **link = &s->buckets[bucket_of(e->hash)];

        while (*link && *link != e)
                link = &(*link)->next;
        if (*link)
                *link = e->next;
        if (e->older)
                e->older->newer = e->newer;
        else
                s->oldest = e->newer;
        if (e->newer)
                e->newer->older = e->older;
        else
                s->newest = e->older;
        s->count--;
        entry_free(e);
}

static struct entry *entry_find(struct gw_sessions *s, const char *hash)
{
        for (struct entry *e = s->buckets[bucket_of(hash)]; e; e = e->next)
                if (strcmp(e->hash, hash) == 0)
                        return e;
        return NULL;
}

struct gw_sessions *gw_sessions_create(size_t max_entries, int ttl_ms)
{
        struct gw_sessions *s = xcalloc(1, sizeof(*s));

        pthread_mutex_init(&s->mu, NULL);
        s->max = max_entries ? max_entries : 1;
        s->ttl_ms = ttl_ms;
        return s;
}

void gw_sessions_destroy(struct gw_sessions *s)
{
        if (s == NULL)
                return;
        while (s->oldest)
                entry_drop(s, s->oldest);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

bool gw_sessions_get(struct gw_sessions *s, const char *hash, struct ej_arena *arena,
                     struct gw_principal *out)
{
        struct entry *e;
        bool found = false;

        if (s->ttl_ms <= 0)
                return false;
        pthread_mutex_lock(&s->mu);
        e = entry_find(s, hash);
        if (e && (e->fresh_until <= ej_mono_ms() ||
                  (e->expires_at_ms > 0 && e->expires_at_ms <= ej_now_ms()))) {
                entry_drop(s, e);
                e = NULL;
        }
        if (e) {
                out->user_id = ej_arena_strdup(arena, e->user_id);
                out->roles = ej_arena_strdup(arena, e->roles);
                out->expires_at_ms = e->expires_at_ms;
                found = true;
        }
        pthread_mutex_unlock(&s->mu);
        return found;
}

void gw_sessions_put(struct gw_sessions *s, const char *hash, const char *user_id,
                     const char *roles, long long expires_at_ms)
{
        struct entry *e;
        size_t b;

        if (s->ttl_ms <= 0 || strlen(hash) != EJ_SHA256_HEX_LEN - 1)
                return;
        e = xcalloc(1, sizeof(*e));
        memcpy(e->hash, hash, EJ_SHA256_HEX_LEN);
        e->user_id = xstrdup(user_id ? user_id : "");
        e->roles = xstrdup(roles ? roles : "");
        e->expires_at_ms = expires_at_ms;
        e->fresh_until = ej_mono_ms() + s->ttl_ms;
        b = bucket_of(hash);

        pthread_mutex_lock(&s->mu);
        {
                struct entry *old = entry_find(s, hash);

                if (old)
                        entry_drop(s, old);
        }
        while (s->count >= s->max && s->oldest)
                entry_drop(s, s->oldest);
        e->next = s->buckets[b];
        s->buckets[b] = e;
        e->older = s->newest;
        if (s->newest)
                s->newest->newer = e;
        else
                s->oldest = e;
        s->newest = e;
        s->count++;
        pthread_mutex_unlock(&s->mu);
}

void gw_sessions_evict(struct gw_sessions *s, const char *hash)
{
        struct entry *e;

        if (strlen(hash) != EJ_SHA256_HEX_LEN - 1)
                return;
        pthread_mutex_lock(&s->mu);
        e = entry_find(s, hash);
        if (e)
                entry_drop(s, e);
        pthread_mutex_unlock(&s->mu);
}

size_t gw_sessions_count(struct gw_sessions *s)
{
        size_t n;

        pthread_mutex_lock(&s->mu);
        n = s->count;
        pthread_mutex_unlock(&s->mu);
        return n;
}
