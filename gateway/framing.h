/*
 * framing.h: refuses requests whose framing or routing headers are ambiguous, before anything
 * reads their body (RFC 9112 sections 3.2 and 6.3, and what HAProxy and nginx refuse).
 *
 * A front proxy and the gateway must agree on where a request ends, or the rest of one body is
 * served as a second request (request smuggling). So a request is refused when it has:
 * more than one Content-Length, or one that is not all digits; Content-Length together with
 * Transfer-Encoding; a Transfer-Encoding other than exactly "chunked", or more than one; a header
 * name that is not an RFC 9110 token (a space before the colon, a folded line's remains); under
 * HTTP/1.1 no Host or several. Pure functions over the header list; thread-safe.
 */
#ifndef EJ_GW_FRAMING_H
#define EJ_GW_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

/* One request header as the server parsed it. */
struct gw_header {
        const char *name;
        const char *value; /* may be NULL (a header without a value) */
};

/* True when the headers `h` (n of them) of a request in HTTP `version` ("HTTP/1.1") frame it
 * unambiguously. Otherwise false, with *why (may be NULL) set to a static sentence naming the
 * problem. */
bool gw_framing_ok(const char *version, const struct gw_header *h, size_t n, const char **why);

#endif
