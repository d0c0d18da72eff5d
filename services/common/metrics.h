/*
 * metrics.h: Prometheus counters and histograms, rendered in the text exposition format.
 *
 * A process owns one struct ej_metrics (created in main, shared by every thread). Series are
 * created on first use by name + label values; updates are lock-free after creation (atomic
 * adds). Render takes a lock to walk the series list. Thread-safe.
 */
#ifndef EJ_METRICS_H
#define EJ_METRICS_H

#include "str.h"

struct ej_metrics;
struct ej_counter;
struct ej_histogram;

struct ej_metrics *ej_metrics_create(void);
void ej_metrics_destroy(struct ej_metrics *m); /* accepts NULL */

/* The counter `name` with the given `labels` text (already in Prometheus form, e.g.
 * `route="/api/me",code="200"`, or "" for none), created on first use with `help`. The pointer
 * lives as long as `m`. */
struct ej_counter *ej_metrics_counter(struct ej_metrics *m, const char *name, const char *help,
                                      const char *labels);
void ej_counter_add(struct ej_counter *c, double v);

/* A histogram with the default latency buckets in seconds (0.0005 .. 10). */
struct ej_histogram *ej_metrics_histogram(struct ej_metrics *m, const char *name, const char *help,
                                          const char *labels);
void ej_histogram_observe(struct ej_histogram *h, double v);

/* A gauge whose value is read by calling `fn(ud)` at render time. */
void ej_metrics_gauge_fn(struct ej_metrics *m, const char *name, const char *help,
                         double (*fn)(void *ud), void *ud);

/* Appends the whole registry in text format 0.0.4. */
void ej_metrics_render(struct ej_metrics *m, struct ej_buf *out);

#endif
