#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

/*
 * The registry is a list of families (one per metric name), each with a list of series (one per
 * label set). Both lists only grow, and a node is fully built before an atomic release store
 * links it in, so lookups walk them without the lock; the mutex only serialises creation (so a
 * series is never created twice) and render (so gauge callbacks run one at a time).
 *
 * Values that are doubles are kept as the bit pattern of the double in an atomic uint64 and
 * updated with a compare-and-swap loop; counts are plain atomic integers.
 */

enum metric_kind { KIND_COUNTER, KIND_HISTOGRAM, KIND_GAUGE };

static const char *const kind_names[] = {"counter", "histogram", "gauge"};

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

#define NBUCKETS (sizeof(default_buckets) / sizeof(default_buckets[0]))

struct ej_counter {
        _Atomic uint64_t bits; /* the value, as the bits of a double */
};

struct ej_histogram {
        /* Observations per bucket, not cumulative; the last slot counts those above every
         * bound. Render sums them, so +Inf and _count always agree. */
        _Atomic uint64_t counts[NBUCKETS + 1];
        _Atomic uint64_t sum_bits;
};

struct series {
        struct series *_Atomic next;
        char *labels;
        union {
                struct ej_counter counter;
                struct ej_histogram histogram;
        } u;
};

struct family {
        struct family *_Atomic next;
        char *name;
        char *help;
        enum metric_kind kind;
        /* Set when the name was first registered as another kind: such a family still takes
         * updates (its callers hold pointers) but is never rendered, so the output stays valid. */
        int shadowed;
        struct series *_Atomic series;
        struct series *series_tail;   /* under the mutex */
        double (*gauge_fn)(void *ud); /* under the mutex */
        void *gauge_ud;
};

struct ej_metrics {
        pthread_mutex_t mu;
        struct family *_Atomic families;
        struct family *families_tail; /* under the mutex */
};

static double bits_to_double(uint64_t bits)
{
        double d;

        memcpy(&d, &bits, sizeof(d));
        return d;
}

static uint64_t double_to_bits(double d)
{
        uint64_t bits;

        memcpy(&bits, &d, sizeof(bits));
        return bits;
}

static void atomic_add_double(_Atomic uint64_t *bits, double v)
{
        uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

        while (!atomic_compare_exchange_weak_explicit(bits, &old,
                                                      double_to_bits(bits_to_double(old) + v),
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

struct ej_metrics *ej_metrics_create(void)
{
        struct ej_metrics *m = xcalloc(1, sizeof(*m));

        pthread_mutex_init(&m->mu, NULL);
        atomic_init(&m->families, NULL);
        m->families_tail = NULL;
        return m;
}

void ej_metrics_destroy(struct ej_metrics *m)
{
        struct family *f, *fnext;
        struct series *s, *snext;

        if (m == NULL)
                return;
        for (f = atomic_load(&m->families); f != NULL; f = fnext) {
                fnext = atomic_load(&f->next);
                for (s = atomic_load(&f->series); s != NULL; s = snext) {
                        snext = atomic_load(&s->next);
                        free(s->labels);
                        free(s);
                }
                free(f->name);
                free(f->help);
                free(f);
        }
        pthread_mutex_destroy(&m->mu);
        free(m);
}

/* The family `name` of `kind`, or NULL. Safe without the lock. */
static struct family *family_find(struct ej_metrics *m, const char *name, enum metric_kind kind)
{
        struct family *f = atomic_load_explicit(&m->families, memory_order_acquire);

        for (; f != NULL; f = atomic_load_explicit(&f->next, memory_order_acquire))
                if (f->kind == kind && strcmp(f->name, name) == 0)
                        return f;
        return NULL;
}

/* Creates the family; the caller holds the lock and has checked it does not exist. */
static struct family *family_add_locked(struct ej_metrics *m, const char *name, const char *help,
                                        enum metric_kind kind)
{
        struct family *f = xcalloc(1, sizeof(*f));
        struct family *other;

        f->name = xstrdup(name);
        f->help = xstrdup(help ? help : "");
        f->kind = kind;
        atomic_init(&f->series, NULL);
        atomic_init(&f->next, NULL);
        for (other = atomic_load(&m->families); other != NULL; other = atomic_load(&other->next))
                if (strcmp(other->name, name) == 0 && !other->shadowed) {
                        f->shadowed = 1;
                        ej_error(NULL, "metric %s is already a %s; the %s of that name is dropped",
                                 name, kind_names[other->kind], kind_names[kind]);
                        break;
                }
        if (m->families_tail == NULL)
                atomic_store_explicit(&m->families, f, memory_order_release);
        else
                atomic_store_explicit(&m->families_tail->next, f, memory_order_release);
        m->families_tail = f;
        return f;
}

static struct series *series_find(struct family *f, const char *labels)
{
        struct series *s = atomic_load_explicit(&f->series, memory_order_acquire);

        for (; s != NULL; s = atomic_load_explicit(&s->next, memory_order_acquire))
                if (strcmp(s->labels, labels) == 0)
                        return s;
        return NULL;
}

/* The series of `name` + `labels`, created on first use. Lock-free when it already exists. */
static struct series *series_get(struct ej_metrics *m, const char *name, const char *help,
                                 const char *labels, enum metric_kind kind)
{
        struct family *f;
        struct series *s;

        if (labels == NULL)
                labels = "";
        f = family_find(m, name, kind);
        if (f != NULL) {
                s = series_find(f, labels);
                if (s != NULL)
                        return s;
        }
        pthread_mutex_lock(&m->mu);
        /* Another thread may have created either while we waited for the lock. */
        if (f == NULL) {
                f = family_find(m, name, kind);
                if (f == NULL)
                        f = family_add_locked(m, name, help, kind);
        }
        s = series_find(f, labels);
        if (s == NULL) {
                s = xcalloc(1, sizeof(*s));
                s->labels = xstrdup(labels);
                atomic_init(&s->next, NULL);
                if (kind == KIND_COUNTER) {
                        atomic_init(&s->u.counter.bits, double_to_bits(0.0));
                } else {
                        for (size_t i = 0; i <= NBUCKETS; i++)
                                atomic_init(&s->u.histogram.counts[i], 0);
                        atomic_init(&s->u.histogram.sum_bits, double_to_bits(0.0));
                }
                if (f->series_tail == NULL)
                        atomic_store_explicit(&f->series, s, memory_order_release);
                else
                        atomic_store_explicit(&f->series_tail->next, s, memory_order_release);
                f->series_tail = s;
        }
        pthread_mutex_unlock(&m->mu);
        return s;
}

struct ej_counter *ej_metrics_counter(struct ej_metrics *m, const char *name, const char *help,
                                      const char *labels)
{
        return &series_get(m, name, help, labels, KIND_COUNTER)->u.counter;
}

void ej_counter_add(struct ej_counter *c, double v)
{
        /* A counter only goes up; a negative or NaN step would make it useless to rate(). */
        if (!(v > 0))
                return;
        atomic_add_double(&c->bits, v);
}

struct ej_histogram *ej_metrics_histogram(struct ej_metrics *m, const char *name, const char *help,
                                          const char *labels)
{
        return &series_get(m, name, help, labels, KIND_HISTOGRAM)->u.histogram;
}

void ej_histogram_observe(struct ej_histogram *h, double v)
{
        size_t i = 0;

        if (isnan(v))
                return;
        while (i < NBUCKETS && v > default_buckets[i])
                i++;
        atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
        atomic_add_double(&h->sum_bits, v);
}

void ej_metrics_gauge_fn(struct ej_metrics *m, const char *name, const char *help,
                         double (*fn)(void *ud), void *ud)
{
        struct family *f;

        pthread_mutex_lock(&m->mu);
        f = family_find(m, name, KIND_GAUGE);
        if (f == NULL)
                f = family_add_locked(m, name, help, KIND_GAUGE);
        /* Registering the name again replaces the callback. */
        f->gauge_fn = fn;
        f->gauge_ud = ud;
        pthread_mutex_unlock(&m->mu);
}

/* Appends `v` as Prometheus writes a float: the shortest text that reads back as the same
 * double, and +Inf, -Inf, NaN spelt as the format wants. */
static void append_value(struct ej_buf *out, double v)
{
        char tmp[40];

        if (isnan(v)) {
                ej_buf_append_c(out, "NaN");
                return;
        }
        if (isinf(v)) {
                ej_buf_append_c(out, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        /* Whole numbers in full ("10", "400000"), as le labels and counts are expected. */
        if (v == floor(v) && fabs(v) < 9007199254740992.0) {
                ej_buf_appendf(out, "%.0f", v);
                return;
        }
        for (int prec = 1; prec <= 17; prec++) {
                (void)snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        ej_buf_append_c(out, tmp);
}

/* HELP text escapes backslash and newline, and nothing else. */
static void append_help(struct ej_buf *out, const char *help)
{
        for (const char *p = help; *p; p++) {
                if (*p == '\\')
                        ej_buf_append(out, "\\\\", 2);
                else if (*p == '\n')
                        ej_buf_append(out, "\\n", 2);
                else
                        ej_buf_append_char(out, *p);
        }
}

/* `name{labels}` or `name`, with `extra` (e.g. `le="0.5"`) after the series' labels. */
static void append_series_name(struct ej_buf *out, const char *name, const char *suffix,
                               const char *labels, const char *extra)
{
        int has_labels = labels[0] != '\0';
        int has_extra = extra != NULL && extra[0] != '\0';

        ej_buf_append_c(out, name);
        ej_buf_append_c(out, suffix);
        if (!has_labels && !has_extra)
                return;
        ej_buf_append_char(out, '{');
        ej_buf_append_c(out, labels);
        if (has_labels && has_extra)
                ej_buf_append_char(out, ',');
        if (has_extra)
                ej_buf_append_c(out, extra);
        ej_buf_append_char(out, '}');
}

static void render_histogram(struct ej_buf *out, const char *name, struct series *s)
{
        struct ej_histogram *h = &s->u.histogram;
        uint64_t cumulative = 0;
        struct ej_buf le = EJ_BUF_INIT;

        for (size_t i = 0; i <= NBUCKETS; i++) {
                cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
                ej_buf_reset(&le);
                ej_buf_append_c(&le, "le=\"");
                append_value(&le, i < NBUCKETS ? default_buckets[i] : INFINITY);
                ej_buf_append_char(&le, '"');
                append_series_name(out, name, "_bucket", s->labels, le.p);
                ej_buf_appendf(out, " %llu\n", (unsigned long long)cumulative);
        }
        ej_buf_free(&le);
        append_series_name(out, name, "_sum", s->labels, NULL);
        ej_buf_append_char(out, ' ');
        append_value(out, bits_to_double(atomic_load(&h->sum_bits)));
        ej_buf_append_char(out, '\n');
        append_series_name(out, name, "_count", s->labels, NULL);
        ej_buf_appendf(out, " %llu\n", (unsigned long long)cumulative);
}

void ej_metrics_render(struct ej_metrics *m, struct ej_buf *out)
{
        struct family *f;
        struct series *s;

        pthread_mutex_lock(&m->mu);
        for (f = atomic_load(&m->families); f != NULL; f = atomic_load(&f->next)) {
                if (f->shadowed)
                        continue;
                ej_buf_append_c(out, "# HELP ");
                ej_buf_append_c(out, f->name);
                ej_buf_append_char(out, ' ');
                append_help(out, f->help);
                ej_buf_append_c(out, "\n# TYPE ");
                ej_buf_append_c(out, f->name);
                ej_buf_append_char(out, ' ');
                ej_buf_append_c(out, kind_names[f->kind]);
                ej_buf_append_char(out, '\n');
                if (f->kind == KIND_GAUGE) {
                        ej_buf_append_c(out, f->name);
                        ej_buf_append_char(out, ' ');
                        append_value(out, f->gauge_fn ? f->gauge_fn(f->gauge_ud) : 0.0);
                        ej_buf_append_char(out, '\n');
                        continue;
                }
                for (s = atomic_load(&f->series); s != NULL; s = atomic_load(&s->next)) {
                        if (f->kind == KIND_HISTOGRAM) {
                                render_histogram(out, f->name, s);
                                continue;
                        }
                        append_series_name(out, f->name, "", s->labels, NULL);
                        ej_buf_append_char(out, ' ');
                        append_value(out, bits_to_double(atomic_load(&s->u.counter.bits)));
                        ej_buf_append_char(out, '\n');
                }
        }
        pthread_mutex_unlock(&m->mu);
}
