/*
 * health.h: the small admin HTTP endpoint of a service process (libmicrohttpd), separate from
 * the public gateway: GET /healthz (200 while the process runs), GET /readyz (200 when the
 * `ready` callback says so, else 503), GET /metrics (the process's registry). Bound to loopback
 * by default; Kubernetes probes and Prometheus scrape it. Runs its own thread; thread-safe.
 */
#ifndef EJ_HEALTH_H
#define EJ_HEALTH_H

#include <stdbool.h>

#include "metrics.h"
#include "status.h"

struct ej_health;

/* Listens on `addr` ("127.0.0.1:9101"; port 0 picks a free one). `metrics` and `ud` are
 * borrowed and must outlive the endpoint. */
enum ej_status ej_health_start(struct ej_health **out, const char *addr, struct ej_metrics *metrics,
                               bool (*ready)(void *ud), void *ud, struct ej_err *err);

/* The port actually bound. */
int ej_health_port(const struct ej_health *h);

void ej_health_stop(struct ej_health *h); /* accepts NULL */

/* ---- The database part of a service's readiness ----------------------------------------------
 * A cheap check that PostgreSQL answers ("SELECT 1" on a connection of the probe's own, made on
 * first use and remade after a loss), cached for `cache_ms` so probes and scrapes cost at most
 * one round trip per period. Readiness (can this replica serve now?) includes it; liveness
 * (/healthz: is the process running?) does not, so an outage of the database takes replicas out
 * of the load balancer without restarting them. Thread-safe. */
struct ej_db_probe;

/* `conninfo` and `schema` are copied. Connects lazily: never fails but for memory. */
void ej_db_probe_create(struct ej_db_probe **out, const char *conninfo, const char *schema,
                        int cache_ms);

/* True when the database answered at the last check, made now when the last one is older than
 * the cache period. */
bool ej_db_probe_ok(struct ej_db_probe *p);

void ej_db_probe_destroy(struct ej_db_probe *p); /* accepts NULL */

#endif
