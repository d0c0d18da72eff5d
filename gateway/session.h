/*
 * session.h: the gateway's cache of resolved sessions (keyed by the token's SHA-256 hex), the
 * access rules a principal meets (roles, consent owed), and the client's address.
 *
 * Ownership: main() owns struct gw_sessions; strings handed in are copied, strings handed out
 * live in the caller's arena. Thread safety: every function may be called from any thread.
 */
#ifndef EJ_GW_SESSION_H
#define EJ_GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "gateway.h"
#include "mem.h"
#include "status.h"

struct gw_principal {
        const char *user_id;
        const char *roles;
        bool consent_required;
        bool verified;
        long long expires_at_ms;
};

struct gw_sessions *gw_sessions_create(size_t max_entries, int ttl_ms);
void gw_sessions_destroy(struct gw_sessions *s); /* accepts NULL */

/* True and *out filled (strings copied into `arena`) when `hash` is cached and fresh. */
bool gw_sessions_get(struct gw_sessions *s, const char *hash, struct ej_arena *arena,
                     struct gw_principal *out);

/* The generation of the latest eviction: take it before an ej.users.authenticate leaves and
 * give it to gw_sessions_put with the answer. */
uint64_t gw_sessions_generation(struct gw_sessions *s);

/* Caches `p` (strings copied) for the token whose SHA-256 hex is `hash`, looked up when the
 * generation was `since`. False, caching nothing, when the answer may be stale: the token, its
 * user or everyone was evicted after `since` (the principal may have changed meanwhile). An
 * anonymous `p` is never cached (true). */
bool gw_sessions_put(struct gw_sessions *s, const char *hash, const struct gw_principal *p,
                     uint64_t since);

void gw_sessions_evict(struct gw_sessions *s, const char *hash);

/* Drops every cached session of `user_id` (its roles, consent or state changed), or of everyone
 * when `user_id` is "*" (a newly required consent version); returns how many. */
size_t gw_sessions_evict_user(struct gw_sessions *s, const char *user_id);

/* Subscribes to "ej.bcast.session.>" ("revoked": one token's hash; "user_changed": a user id,
 * or "*" for everyone), whose every message evicts at once; lives until
 * gw_sessions_unsubscribe (NULL ok). */
enum ej_status gw_sessions_subscribe(struct gw_sessions *s, natsConnection *nc, struct ej_err *err);
void gw_sessions_unsubscribe(struct gw_sessions *s);

size_t gw_sessions_count(struct gw_sessions *s);

/* Decides whether the signed-in principal in `req` may call its route: the roles of a
 * GW_AUTH_ROLE route, then the consent owed. */
enum gw_access gw_access_check(const struct gw_req *req);

/* Sets req->client_addr from the connection's peer address, or from X-Forwarded-For when the
 * peer is one of EJ_TRUSTED_PROXIES (see gw_client_addr_pick). */
void gw_req_client_addr(struct gw_req *req);

#endif
