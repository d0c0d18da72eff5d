/*
 * session.c: the gateway's cache of resolved sessions, so a signed-in request usually costs no
 * ej.users.authenticate round trip. Keyed by the SHA-256 hex of the token (the raw token is
 * never stored). An entry lives at most ttl_ms and never past the session's own expiry; when
 * the cache is full the oldest entry goes. A revocation broadcast evicts one token at once; a
 * user_changed broadcast (logout everywhere, password, roles, consent, deactivation) evicts all
 * of a user's sessions at once through a second index by user id, so it costs the user's own
 * entries, not a scan of the cache. Both arrive on one subscription (ej.bcast.session.>); while
 * it holds a broadcast not yet applied, lookups miss, so a request that follows a revocation
 * never meets the stale entry. One mutex; thread-safe.
 *
 * Evictions race with lookups: an ej.users.authenticate that left before an eviction may come
 * back after it carrying the old principal. So every eviction (one token, one user, or "*")
 * takes the next value of a generation counter and is remembered in a ring of the most recent
 * ones; a lookup notes the generation when it leaves (gw_sessions_generation) and its result is
 * cached only when no eviction of that token, of that user, or of everyone has happened since
 * (gw_sessions_put). An eviction that has fallen out of the ring could be any: every lookup
 * older than it is refused. Memory stays bounded and a refusal costs only one more lookup.
 *
 * The cache refuses the result as a whole; what to do with the request in hand is the
 * caller's choice (auth.c asks again once).
 *
 * Also here: who the caller is beyond the session (the client address, from the socket peer
 * or, behind a trusted proxy, from X-Forwarded-For) and whether the principal may call its
 * route (roles, consent owed).
 */
#include "session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "ids.h"
#include "log.h"

#define SESSION_BUCKETS 65536u /* power of two: ~2 entries a chain at 100k */
#define USER_BUCKETS    65536u /* power of two */
/* Broadcasts from the users service: "revoked" carries one session's token hash,
 * "user_changed" a user id whose sessions all go ("*": everyone's). */
#define BCAST_SUBJECTS   "ej.bcast.session.>"
#define BCAST_REVOKED    "ej.bcast.session.revoked"
#define RECENT_EVICTIONS 256u /* evictions remembered for lookups in flight */

/* One eviction: of one token (key = its hash), of one user (key = the id), or of everyone. */
enum evict_kind { EVICT_TOKEN = 1, EVICT_USER, EVICT_ALL };

struct eviction {
        uint64_t gen;
        enum evict_kind kind;
        char key[128];
};

struct entry {
        struct entry *next;          /* hash chain */
        struct entry *older, *newer; /* age list */
        struct entry *unext;         /* chain of the user index bucket */
        struct entry **uprev;        /* the link pointing at this entry in that chain */
        char hash[EJ_SHA256_HEX_LEN];
        char *user_id;
        char *roles;
        bool consent_required;
        bool verified;
        long long expires_at_ms; /* realtime: the session's expiry, 0 when unknown */
        long long fresh_until;   /* monotonic: the cache's own limit */
};

struct gw_sessions {
        pthread_mutex_t mu;
        struct entry *buckets[SESSION_BUCKETS];
        struct entry *users[USER_BUCKETS];
        struct entry *oldest, *newest;
        size_t count, max;
        int ttl_ms;
        natsSubscription *bcast;
        uint64_t gen;                             /* of the latest eviction */
        uint64_t forgotten;                       /* the latest generation fallen out of recent */
        struct eviction recent[RECENT_EVICTIONS]; /* ring; recent[gen % N] holds gen */
};

static size_t bucket_of(const char *hash)
{
        size_t h = 0;

        /* The key is already a uniform hash: its first characters spread well enough. */
        for (int i = 0; i < 8 && hash[i]; i++)
                h = h * 31 + (unsigned char)hash[i];
        return h & (SESSION_BUCKETS - 1);
}

/* FNV-1a over the whole id: user ids are not uniformly random text. */
static size_t user_bucket_of(const char *user_id)
{
        uint32_t h = 2166136261u;

        for (const unsigned char *p = (const unsigned char *)user_id; *p; p++)
                h = (h ^ *p) * 16777619u;
        return h & (USER_BUCKETS - 1);
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
        *e->uprev = e->unext;
        if (e->unext)
                e->unext->uprev = e->uprev;
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

/* Records an eviction of `key` (truncated keys are never matched, so they count as
 * forgotten). Caller holds mu. */
static void eviction_note(struct gw_sessions *s, enum evict_kind kind, const char *key)
{
        struct eviction *v = &s->recent[++s->gen % RECENT_EVICTIONS];
        int n;

        if (v->gen > s->forgotten)
                s->forgotten = v->gen;
        v->gen = s->gen;
        v->kind = kind;
        n = snprintf(v->key, sizeof(v->key), "%s", key);
        if (n < 0 || (size_t)n >= sizeof(v->key)) {
                v->kind = EVICT_ALL; /* cannot compare it: treat it as covering everyone */
                v->key[0] = '\0';
        }
}

/* True when an eviction newer than `since` covers the token `hash` of `user_id`. Caller holds
 * mu. */
static bool evicted_since(const struct gw_sessions *s, uint64_t since, const char *hash,
                          const char *user_id)
{
        if (s->forgotten > since)
                return true;
        for (uint64_t g = s->gen; g > since; g--) {
                const struct eviction *v = &s->recent[g % RECENT_EVICTIONS];

                if (v->kind == EVICT_ALL || (v->kind == EVICT_TOKEN && strcmp(v->key, hash) == 0) ||
                    (v->kind == EVICT_USER && strcmp(v->key, user_id) == 0))
                        return true;
        }
        return false;
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
        gw_sessions_unsubscribe(s);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

bool gw_sessions_get(struct gw_sessions *s, const char *hash, struct ej_arena *arena,
                     struct gw_principal *out)
{
        struct entry *e;
        bool found = false;
        int pending = 0;

        if (s->ttl_ms <= 0)
                return false;
        /* A revocation that has arrived but is not applied yet may concern this session: until
         * it is, trust the users service rather than the cache. */
        if (s->bcast != NULL && natsSubscription_GetPending(s->bcast, &pending, NULL) == NATS_OK &&
            pending > 0)
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
                out->consent_required = e->consent_required;
                out->verified = e->verified;
                out->expires_at_ms = e->expires_at_ms;
                found = true;
        }
        pthread_mutex_unlock(&s->mu);
        return found;
}

uint64_t gw_sessions_generation(struct gw_sessions *s)
{
        uint64_t g;

        pthread_mutex_lock(&s->mu);
        g = s->gen;
        pthread_mutex_unlock(&s->mu);
        return g;
}

bool gw_sessions_put(struct gw_sessions *s, const char *hash, const struct gw_principal *p,
                     uint64_t since)
{
        struct entry *e;
        struct entry **uhead;
        size_t b;

        if (p->user_id == NULL || p->user_id[0] == '\0')
                return true;
        if (s->ttl_ms <= 0 || strlen(hash) != EJ_SHA256_HEX_LEN - 1) {
                bool stale;

                pthread_mutex_lock(&s->mu);
                stale = evicted_since(s, since, hash, p->user_id);
                pthread_mutex_unlock(&s->mu);
                return !stale;
        }
        e = xcalloc(1, sizeof(*e));
        memcpy(e->hash, hash, EJ_SHA256_HEX_LEN);
        e->user_id = xstrdup(p->user_id);
        e->roles = xstrdup(p->roles ? p->roles : "");
        e->consent_required = p->consent_required;
        e->verified = p->verified;
        e->expires_at_ms = p->expires_at_ms;
        e->fresh_until = ej_mono_ms() + s->ttl_ms;
        b = bucket_of(hash);
        uhead = &s->users[user_bucket_of(e->user_id)];

        pthread_mutex_lock(&s->mu);
        if (evicted_since(s, since, hash, e->user_id)) {
                pthread_mutex_unlock(&s->mu);
                entry_free(e);
                return false;
        }
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
        e->unext = *uhead;
        if (*uhead)
                (*uhead)->uprev = &e->unext;
        e->uprev = uhead;
        *uhead = e;
        s->count++;
        pthread_mutex_unlock(&s->mu);
        return true;
}

void gw_sessions_evict(struct gw_sessions *s, const char *hash)
{
        struct entry *e;

        if (strlen(hash) != EJ_SHA256_HEX_LEN - 1)
                return;
        pthread_mutex_lock(&s->mu);
        eviction_note(s, EVICT_TOKEN, hash);
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

size_t gw_sessions_evict_user(struct gw_sessions *s, const char *user_id)
{
        size_t n = 0;
        struct entry *e;

        if (user_id == NULL || user_id[0] == '\0')
                return 0;
        pthread_mutex_lock(&s->mu);
        if (strcmp(user_id, "*") == 0) {
                eviction_note(s, EVICT_ALL, "");
                n = s->count;
                while (s->oldest)
                        entry_drop(s, s->oldest);
                pthread_mutex_unlock(&s->mu);
                return n;
        }
        eviction_note(s, EVICT_USER, user_id);
        e = s->users[user_bucket_of(user_id)];
        while (e) {
                struct entry *next = e->unext;

                if (strcmp(e->user_id, user_id) == 0) {
                        entry_drop(s, e);
                        n++;
                }
                e = next;
        }
        pthread_mutex_unlock(&s->mu);
        return n;
}

static void on_bcast(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
        struct gw_sessions *s = closure;
        char key[128];
        int n = natsMsg_GetDataLength(msg);

        (void)nc;
        (void)sub;
        if (n > 0 && (size_t)n < sizeof(key)) {
                memcpy(key, natsMsg_GetData(msg), (size_t)n);
                key[n] = '\0';
                if (strcmp(natsMsg_GetSubject(msg), BCAST_REVOKED) == 0)
                        gw_sessions_evict(s, key);
                else
                        gw_sessions_evict_user(s, key);
        }
        natsMsg_Destroy(msg);
}

enum ej_status gw_sessions_subscribe(struct gw_sessions *s, natsConnection *nc, struct ej_err *err)
{
        natsStatus ns = natsConnection_Subscribe(&s->bcast, nc, BCAST_SUBJECTS, on_bcast, s);

        if (ns == NATS_OK)
                ns = natsSubscription_SetPendingLimits(s->bcast, -1, -1);
        if (ns == NATS_OK)
                ns = natsConnection_Flush(nc);
        if (ns != NATS_OK)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot subscribe to %s: %s",
                                  BCAST_SUBJECTS, natsStatus_GetText(ns));
        return EJ_OK;
}

void gw_sessions_unsubscribe(struct gw_sessions *s)
{
        if (s == NULL || s->bcast == NULL)
                return;
        natsSubscription_Unsubscribe(s->bcast);
        natsSubscription_Destroy(s->bcast);
        s->bcast = NULL;
}

enum gw_access gw_access_check(const struct gw_req *req)
{
        const struct gw_route *r = req->route;

        if (r->auth == GW_AUTH_ROLE && !gw_roles_allow(req->roles, r->roles))
                return GW_ACCESS_ROLE;
        if (gw_consent_blocks(r, req->consent_required))
                return GW_ACCESS_CONSENT;
        return GW_ACCESS_OK;
}

void gw_req_client_addr(struct gw_req *req)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char peer[INET6_ADDRSTRLEN] = "";
        const char *xff;

        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;

                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET,
                                  &((const struct sockaddr_in *)(const void *)sa)->sin_addr, peer,
                                  sizeof(peer));
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6,
                                  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, peer,
                                  sizeof(peer));
        }
        /* A proxy may add its own line rather than extend the client's: read them all. */
        xff = gw_header_joined(req->conn, "X-Forwarded-For", req->arena);
        gw_client_addr_pick(peer, xff, req->gw->cfg->trusted_proxies, req->client_addr,
                            sizeof(req->client_addr));
}
