/*
 * auth.h: who calls: the one path from a session cookie to a principal, for JSON routes and
 * file streams alike. The cookie's token is looked up in the session cache (session.c); on a
 * miss, ej.users.authenticate goes out through upstream.c and its answer is cached, unless an
 * eviction raced the lookup, in which case it is asked once more (session.h). A caller that may
 * be anonymous goes on anonymously when the cookie is unusable or its session is dead, and the
 * cookie is marked to be cleared (req->drop_cookie).
 *
 * Ownership: what is resolved lives in req's arena (req->token, token_hash, user_id, roles,
 * consent_required, verified). Thread safety: one request is resolved by one thread at a time;
 * the completion runs on a NATS or sweeper thread, or at once on the asking thread when the
 * lookup cannot go out.
 */
#ifndef EJ_GW_AUTH_H
#define EJ_GW_AUTH_H

#include <stdbool.h>

#include "gateway.h"
#include "status.h"

enum gw_who {
        GW_WHO_KNOWN = 0, /* req holds the principal (from the cache), or the caller is anonymous */
        GW_WHO_ASK,       /* the cache does not know the token: gw_auth_ask */
        GW_WHO_MISSING,   /* `required`, but there is no usable cookie: 401 */
};

/* Resolves the caller of `req` from its session cookie without leaving the gateway. */
enum gw_who gw_auth_resolve(struct gw_req *req, bool required);

/* After GW_WHO_ASK, with req's connection suspended: asks the users service. done(req, st) is
 * called exactly once: EJ_OK with the principal in req (or, when not required, anonymous);
 * otherwise gw_upstream_status(req) says why (unauthenticated for a dead session). */
void gw_auth_ask(struct gw_req *req, void (*done)(struct gw_req *req, enum ej_status st));

#endif
