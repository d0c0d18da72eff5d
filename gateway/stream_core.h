/*
 * stream_core.h: what file uploads (stream_upload.c) and downloads (stream_download.c) share:
 * the registry of live streams, their reply inbox, the deadline sweeper, sending a request on
 * behalf of a stream, holding and waking its connection, recording its failure and queueing
 * its answer. The directions hold their own protocol state; this layer calls them only through
 * the struct gw_stream_ops they register (never by name).
 *
 * Every exchange has its own reply subject "<inbox>.<stream id>.<tag><n>" on one subscription;
 * a sweeper thread fails streams past EJ_REQUEST_TIMEOUT_MS (504) or, while NATS is away, at
 * once (503), and resumes their connections. No thread waits on NATS. The caller's principal is
 * resolved by auth.c, as for every other route.
 *
 * The connection of a stream (enum gw_conn) moves like this:
 *
 *   from           event                                          to
 *   FIRST          gw_stream_hold in the first call               FIRST_HELD
 *   FIRST_HELD     gw_stream_wake                                 FIRST
 *   FIRST          body data, or the repeated first call goes on  BODY
 *   FIRST          the first call ends without holding            BODY
 *   BODY           gw_stream_hold                                 HELD
 *   HELD           gw_stream_wake                                 BODY
 *   FIRST, BODY    an answer queued (MHD thread)                  ANSWERED
 *   FIRST_HELD     an answer queued (NATS thread: an early error) ANSWERED_HELD
 *   ANSWERED       gw_stream_hold (a download waits for a chunk)  ANSWERED_HELD
 *   ANSWERED_HELD  gw_stream_wake                                 ANSWERED
 *   any            the request completed                          GONE
 *
 * A failure is recorded once (st->fail.status != EJ_OK), in any state; the direction is told
 * (ops->on_fail) and the connection woken so that it answers it.
 *
 * Locking: ss->mu guards the registry only; st->mu guards one stream. Order: ss->mu before
 * st->mu, never the reverse. The connection is suspended only with st->mu held, and resumed
 * only by whoever moves it out of a *_HELD state under st->mu.
 *
 * Ownership: main() owns struct gw_streams. A stream is created by the first call of the access
 * handler for a file route, hangs off its struct gw_req, and is freed when the last of (the
 * request, an in-flight content reader, a reply being handled) lets go of it.
 */
#ifndef EJ_GW_STREAM_CORE_H
#define EJ_GW_STREAM_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>
#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>

#include "gateway.h"
#include "metrics.h"
#include "status.h"

#define GW_STREAM_TABLE_BUCKETS 256u /* power of two */

enum gw_conn {
        GW_CONN_FIRST = 0,     /* MHD runs it; its first call (a call without data repeats it) */
        GW_CONN_FIRST_HELD,    /* suspended during the first call */
        GW_CONN_BODY,          /* MHD runs it; past the first call */
        GW_CONN_HELD,          /* suspended past the first call */
        GW_CONN_ANSWERED,      /* an answer is queued; MHD runs it */
        GW_CONN_ANSWERED_HELD, /* an answer is queued; suspended */
        GW_CONN_GONE,          /* the request completed: nobody to answer */
};

struct gw_stream;
struct gw_streams;

/* What a direction does on the events of its streams. Each is called with st->mu held. */
struct gw_stream_ops {
        const char *what; /* "upload", "download": for the log */
        /* The reply `m` (now the direction's: kept or destroyed) to the exchange tagged `tag`
         * number `n`. Only while the request is alive. */
        void (*on_reply)(struct gw_stream *st, char tag, uint64_t n, natsMsg *m);
        /* The stream has just failed (st->fail). */
        void (*on_fail)(struct gw_stream *st);
        /* The exchange outstanding passed its deadline (`bus_lost` false) or the bus went away
         * while one was outstanding (true): the direction fails the stream as fits the phase
         * it is in. NULL: fail with timeout, or unavailable when the bus is lost. */
        void (*on_late)(struct gw_stream *st, bool bus_lost);
        /* The request is over; the stream may live on a little (a reply being handled). */
        void (*completed)(struct gw_stream *st, enum MHD_RequestTerminationCode toe);
        /* Frees the direction's state (the last reference went; st->mu not held). */
        void (*destroy)(struct gw_stream *st);
};

/* One stream's shared part, embedded first in the direction's own struct. */
struct gw_stream {
        struct gw_streams *ss;
        const struct gw_stream_ops *ops;
        struct MHD_Connection *conn;
        struct gw_req *req; /* NULL once the request completed */
        uint64_t sid;
        struct gw_stream *next; /* registry chain */
        atomic_int refs;
        pthread_mutex_t mu;
        enum gw_conn state;
        long long deadline_ms; /* 0: no exchange outstanding */
        struct ej_err fail;    /* status EJ_OK until the stream fails */
        /* The caller, as the headers of every request of the stream name it (copies: the
         * stream may outlive its request). */
        char rid[68];
        char client_addr[64];
        char *user_id; /* NULL: anonymous */
        char *roles;
};

struct gw_streams {
        struct gw *gw;
        natsConnection *nc;
        natsSubscription *sub;
        char prefix[96];
        size_t prefix_n;
        pthread_mutex_t mu;
        struct gw_stream *buckets[GW_STREAM_TABLE_BUCKETS];
        atomic_uint_fast64_t next_sid;
        pthread_t sweeper;
        bool sweeper_started;
        atomic_bool stop;
        /* A reply for a stream already gone (e.g. upload_begin answered after the client
         * left), to undo what it started; `m` stays the caller's. */
        void (*orphan)(struct gw_streams *ss, char tag, natsMsg *m);
        struct ej_counter *bytes_up;
        struct ej_counter *bytes_down;
        struct ej_counter *aborted;
};

/* Subscribes the streams' reply inbox and starts the sweeper; `orphan` (may be NULL) takes the
 * replies of streams already gone. */
enum ej_status gw_streams_create(struct gw_streams **out, struct gw *gw,
                                 void (*orphan)(struct gw_streams *ss, char tag, natsMsg *m),
                                 struct ej_err *err);

/* Fails every stream still waiting (their connections are resumed and answer 503 or close).
 * Call before stopping MHD: a suspended connection must not outlive the daemon. */
void gw_streams_fail_all(struct gw_streams *ss);

/* Stops the sweeper, unsubscribes, frees. Streams still alive must have been failed. NULL ok. */
void gw_streams_destroy(struct gw_streams *ss);

/* Registers `st` (zeroed by the caller, embedded in the direction's struct) for `req`, with one
 * reference held by the request; sets req->stream. */
void gw_stream_start(struct gw_stream *st, struct gw_req *req, const struct gw_stream_ops *ops);

/* Takes and drops a reference; the last drop frees the stream (ops->destroy). */
void gw_stream_ref(struct gw_stream *st);
void gw_stream_unref(struct gw_stream *st);

/* Copies req's principal (user id, roles) into the stream's caller. */
void gw_stream_take_caller(struct gw_stream *st, const struct gw_req *req);

/* Suspends the connection unless it already is; wakes it (resumes) when it is held. */
void gw_stream_hold(struct gw_stream *st);
void gw_stream_wake(struct gw_stream *st);

/* True once an answer is queued (or nobody is left to answer). */
bool gw_stream_answered(const struct gw_stream *st);

/* An exchange is out: the sweeper fails the stream after the request timeout. */
void gw_stream_arm(struct gw_stream *st);

/* Like gw_stream_arm with a deadline `ms` from now. */
void gw_stream_arm_ms(struct gw_stream *st, int ms);

/* Records the first failure (later ones are dropped), tells the direction, wakes the
 * connection so that it answers. */
void gw_stream_fail(struct gw_stream *st, enum ej_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with what the error reply `m` (borrowed) says; `what` names the service. */
void gw_stream_fail_reply(struct gw_stream *st, natsMsg *m, const char *what);

/* Publishes `msg` to `subject` with the caller's headers; its reply comes to the direction as
 * (tag, n). False (and the stream failed) when it cannot go out. */
bool gw_stream_send(struct gw_stream *st, const char *subject, char tag, uint64_t n,
                    const ProtobufCMessage *msg);

/* Publishes `len` bytes already packed, without headers (upload chunks). Same contract. */
bool gw_stream_send_raw(struct gw_stream *st, const char *subject, char tag, uint64_t n,
                        const void *data, size_t len);

/* Queues `r` (destroyed here) as the answer: downloads say their own Cache-Control unless
 * `no_store` (every other answer is no-store). */
enum MHD_Result gw_stream_answer(struct gw_stream *st, unsigned status, struct MHD_Response *r,
                                 bool no_store);

/* Queues the JSON answer `out`. */
enum MHD_Result gw_stream_answer_out(struct gw_stream *st, struct gw_out *out);

/* Queues the recorded failure as the answer (or the refusal in req->denied). */
enum MHD_Result gw_stream_answer_failure(struct gw_stream *st);

/* Answers the recorded failure in the middle of the request body, where libmicrohttpd 0.9.75
 * queues no response, and ends the connection: the JSON answer (with Connection: close) is
 * written to the socket directly, the sending side shut, and MHD_NO returned for the access
 * handler to return, so MHD closes the connection instead of reading the rest of the body.
 * For a failure on the service's side, where reading on would only delay the answer. Called
 * from the access handler (MHD's thread for the connection), nothing queued yet. */
enum MHD_Result gw_stream_answer_close(struct gw_stream *st);

/* The request is over (MHD's completion callback; req->stream may be NULL): tells the
 * direction, drops the request's hold on the stream. */
void gw_stream_completed(struct gw_req *req, enum MHD_RequestTerminationCode toe);

#endif
