/*
 * framing.h: refuses requests whose framing or routing headers are ambiguous, before anything
 * reads their body (RFC 9112 sections 3.2 and 6.3, and what HAProxy and nginx refuse).
 *
 * A front proxy and the gateway must agree on where a request ends, or the rest of one body is
 * served as a second request (request smuggling). So a request is refused when it has:
 * more than one Content-Length, or one that is not all digits; Content-Length together with
 * Transfer-Encoding; a Transfer-Encoding other than exactly "chunked", or more than one; a header
 * name that is not an RFC 9110 token (a space before the colon, a folded line's remains); under
 * HTTP/1.1 no Host or several; a second copy of a header the gateway reads as one value.
 *
 * It also checks the head for bytes that would cut a string short: a NUL byte anywhere in the
 * request line or the headers, "%00" in the path or the query (libmicrohttpd decodes and cuts
 * there, so "/app.js%00.html" would serve "/app.js"). And it joins the copies of a list-valued
 * header, so no reader takes the first copy of a header that came twice.
 * Pure functions (gw_header_joined reads the connection's headers); thread-safe.
 */
#ifndef EJ_GW_FRAMING_H
#define EJ_GW_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "mem.h"

/* One request header as the server parsed it. */
struct gw_header {
        const char *name;
        const char *value; /* may be NULL (a header without a value) */
};

/* True when the headers `h` (n of them) of a request in HTTP `version` ("HTTP/1.1") frame it
 * unambiguously. Otherwise false, with *why (may be NULL) set to a static sentence naming the
 * problem. */
bool gw_framing_ok(const char *version, const struct gw_header *h, size_t n, const char **why);

/* A string the HTTP parser cut out of the request head: the method, the raw request target,
 * the version, a header's name or value. */
struct gw_span {
        const char *p;
        size_t n;
};

/* True when the request head [head, head + len) as the parser left it holds nothing but the
 * `n` spans and the blanks between them (NUL where the parser ended a string, space, tab).
 * Any other byte was cut off a string by a NUL the client sent; a span outside the head is a
 * folded line the parser rebuilt elsewhere. Sorts `spans` in place. */
bool gw_head_clean(const char *head, size_t len, struct gw_span *spans, size_t n);

/* True when the raw request target uri[0..n) holds "%00" or a NUL byte. Call it before the
 * parser cuts the query off or decodes the target in place (both write NULs into it). */
bool gw_uri_has_nul(const char *uri, size_t n);

/* The value of request header `name` on `conn`: NULL when absent, the one value when it came
 * once, else every copy joined with ", " in order (RFC 9110 5.3) in `arena`. Only for list-valued
 * headers; singletons are refused by gw_framing_ok when they repeat. The result lives as long
 * as the request or the arena. */
const char *gw_header_joined(struct MHD_Connection *conn, const char *name, struct ej_arena *arena);

#endif
