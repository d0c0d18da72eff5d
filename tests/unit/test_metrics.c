/* Unit tests for metrics.c: rendering in the Prometheus text format 0.0.4 and concurrent
 * updates. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metrics.h"

/* The registry rendered into a fresh heap string with a leading newline, so that a whole line
 * can be found with strstr("\n<line>\n"). */
static char *render(struct ej_metrics *m)
{
        struct ej_buf b = EJ_BUF_INIT;

        ej_buf_append_char(&b, '\n');
        ej_metrics_render(m, &b);
        return ej_buf_steal(&b);
}

static int has_line(const char *text, const char *line)
{
        size_t n = strlen(line);
        const char *p = text;

        while ((p = strstr(p, line)) != NULL) {
                if (p > text && p[-1] == '\n' && p[n] == '\n')
                        return 1;
                p++;
        }
        fprintf(stderr, "  missing line [%s]\n", line);
        return 0;
}

static int count_of(const char *text, const char *needle)
{
        int n = 0;

        for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
                n++;
        return n;
}

/* True when every sample line belongs to the family announced by the last # TYPE line (name,
 * or name_bucket/_sum/_count for a histogram), and each # HELP comes right before its # TYPE. */
static int well_formed(const char *text)
{
        char family[128] = "";
        char kind[32] = "";
        char help_name[128] = "";
        const char *line = text;

        while (*line) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t)(end - line) : strlen(line);
                char buf[512];

                if (n >= sizeof(buf))
                        return 0;
                memcpy(buf, line, n);
                buf[n] = '\0';
                if (n == 0) {
                        /* only the leading newline added by render() */
                } else if (strncmp(buf, "# HELP ", 7) == 0) {
                        if (sscanf(buf + 7, "%127s", help_name) != 1)
                                return 0;
                } else if (strncmp(buf, "# TYPE ", 7) == 0) {
                        if (sscanf(buf + 7, "%127s %31s", family, kind) != 2)
                                return 0;
                        if (strcmp(family, help_name) != 0)
                                return 0;
                } else {
                        size_t fl = strlen(family);
                        const char *rest = buf + fl;
                        const char *space;

                        if (fl == 0 || strncmp(buf, family, fl) != 0)
                                return 0;
                        if (strcmp(kind, "histogram") == 0) {
                                if (strncmp(rest, "_bucket", 7) == 0)
                                        rest += 7;
                                else if (strncmp(rest, "_sum", 4) == 0)
                                        rest += 4;
                                else if (strncmp(rest, "_count", 6) == 0)
                                        rest += 6;
                                else
                                        return 0;
                        }
                        if (*rest == '{') {
                                rest = strchr(rest, '}');
                                if (rest == NULL)
                                        return 0;
                                rest++;
                        }
                        space = rest;
                        if (*space != ' ' || space[1] == '\0' || strchr(space + 1, ' ') != NULL)
                                return 0;
                }
                line += n + (end ? 1 : 0);
        }
        return 1;
}

static void test_counter(void)
{
        struct ej_metrics *m = ej_metrics_create();
        struct ej_counter *a, *b, *c, *plain;
        char *out;

        a = ej_metrics_counter(m, "http_requests_total", "HTTP requests answered.",
                               "route=\"/api/me\",code=\"200\"");
        b = ej_metrics_counter(m, "http_requests_total", "HTTP requests answered.",
                               "route=\"/api/me\",code=\"401\"");
        c = ej_metrics_counter(m, "http_requests_total", "HTTP requests answered.",
                               "route=\"/api/me\",code=\"200\"");
        plain = ej_metrics_counter(m, "jobs_done_total", "Jobs done.", "");
        CHECK(a != NULL && b != NULL && a != b);
        CHECK(a == c); /* same name and labels: the same series */
        CHECK(ej_metrics_counter(m, "jobs_done_total", "Jobs done.", NULL) == plain);

        ej_counter_add(a, 1);
        ej_counter_add(c, 2);
        ej_counter_add(b, 1);
        ej_counter_add(plain, 0.25);
        ej_counter_add(plain, 1);
        ej_counter_add(plain, -5); /* counters never go down */

        out = render(m);
        CHECK(count_of(out, "# HELP http_requests_total ") == 1);
        CHECK(count_of(out, "# TYPE http_requests_total ") == 1);
        CHECK(has_line(out, "# HELP http_requests_total HTTP requests answered."));
        CHECK(has_line(out, "# TYPE http_requests_total counter"));
        CHECK(has_line(out, "http_requests_total{route=\"/api/me\",code=\"200\"} 3"));
        CHECK(has_line(out, "http_requests_total{route=\"/api/me\",code=\"401\"} 1"));
        CHECK(has_line(out, "# TYPE jobs_done_total counter"));
        CHECK(has_line(out, "jobs_done_total 1.25"));
        CHECK(well_formed(out));
        /* HELP and TYPE come before the family's samples. */
        CHECK(strstr(out, "# TYPE http_requests_total") < strstr(out, "http_requests_total{"));
        free(out);
        ej_metrics_destroy(m);
        ej_metrics_destroy(NULL);
}

static void test_histogram(void)
{
        struct ej_metrics *m = ej_metrics_create();
        struct ej_histogram *h, *bare;
        char *out;

        h = ej_metrics_histogram(m, "http_request_duration_seconds", "Request latency.",
                                 "route=\"/api/me\"");
        CHECK(ej_metrics_histogram(m, "http_request_duration_seconds", "Request latency.",
                                   "route=\"/api/me\"") == h);
        ej_histogram_observe(h, 0.0003);
        ej_histogram_observe(h, 0.003);
        ej_histogram_observe(h, 0.5); /* on a bound: counted in le="0.5" */
        ej_histogram_observe(h, 20);  /* above every bound: only +Inf */
        bare = ej_metrics_histogram(m, "queue_wait_seconds", "Wait.", "");

        out = render(m);
        CHECK(count_of(out, "# HELP http_request_duration_seconds ") == 1);
        CHECK(has_line(out, "# TYPE http_request_duration_seconds histogram"));
        CHECK(has_line(out,
                       "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.0005\"} 1"));
        CHECK(has_line(out,
                       "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.001\"} 1"));
        CHECK(has_line(out,
                       "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.0025\"} 1"));
        CHECK(has_line(out,
                       "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.005\"} 2"));
        CHECK(
            has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.25\"} 2"));
        CHECK(
            has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"0.5\"} 3"));
        CHECK(has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"1\"} 3"));
        CHECK(
            has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"2.5\"} 3"));
        CHECK(has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"10\"} 3"));
        CHECK(
            has_line(out, "http_request_duration_seconds_bucket{route=\"/api/me\",le=\"+Inf\"} 4"));
        CHECK(has_line(out, "http_request_duration_seconds_sum{route=\"/api/me\"} 20.5033"));
        CHECK(has_line(out, "http_request_duration_seconds_count{route=\"/api/me\"} 4"));
        /* Fourteen bounds plus +Inf. */
        CHECK(count_of(out, "http_request_duration_seconds_bucket{") == 15);

        CHECK(has_line(out, "queue_wait_seconds_bucket{le=\"0.0005\"} 0"));
        CHECK(has_line(out, "queue_wait_seconds_bucket{le=\"+Inf\"} 0"));
        CHECK(has_line(out, "queue_wait_seconds_sum 0"));
        CHECK(has_line(out, "queue_wait_seconds_count 0"));
        CHECK(well_formed(out));
        free(out);
        (void)bare;
        ej_metrics_destroy(m);
}

static double read_double(void *ud)
{
        return *(const double *)ud;
}

static void test_gauge_and_help(void)
{
        struct ej_metrics *m = ej_metrics_create();
        double value = 7;
        double other = 1.5;
        char *out;

        ej_metrics_gauge_fn(m, "workers_busy", "Workers busy now.", read_double, &value);
        ej_metrics_counter(m, "odd_help_total", "Line one\nback\\slash", "");
        out = render(m);
        CHECK(has_line(out, "# TYPE workers_busy gauge"));
        CHECK(has_line(out, "workers_busy 7"));
        CHECK(has_line(out, "# HELP odd_help_total Line one\\nback\\\\slash"));
        CHECK(well_formed(out));
        free(out);

        /* The callback is read at every render; registering again replaces it. */
        value = 3;
        out = render(m);
        CHECK(has_line(out, "workers_busy 3"));
        free(out);
        ej_metrics_gauge_fn(m, "workers_busy", "Workers busy now.", read_double, &other);
        out = render(m);
        CHECK(has_line(out, "workers_busy 1.5"));
        CHECK(count_of(out, "# TYPE workers_busy") == 1);
        free(out);

        /* A name reused with another type is not rendered twice with conflicting types. */
        ej_counter_add(ej_metrics_counter(m, "clash", "First.", ""), 1);
        ej_histogram_observe(ej_metrics_histogram(m, "clash", "Second.", ""), 1);
        out = render(m);
        CHECK(count_of(out, "# TYPE clash ") == 1);
        CHECK(has_line(out, "# TYPE clash counter"));
        CHECK(has_line(out, "clash 1"));
        CHECK(strstr(out, "clash_bucket") == NULL);
        CHECK(well_formed(out));
        CHECK(!well_formed("\n# HELP a x\n# TYPE a counter\nb 1\n")); /* the checker can fail */
        free(out);
        ej_metrics_destroy(m);
}

#define THREADS 4
#define ROUNDS  100000

struct worker {
        struct ej_metrics *m;
        int id;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        struct ej_counter *shared =
            ej_metrics_counter(w->m, "race_total", "Shared counter.", "kind=\"shared\"");
        struct ej_histogram *h = ej_metrics_histogram(w->m, "race_seconds", "Shared.", "");
        char labels[32];

        snprintf(labels, sizeof(labels), "worker=\"%d\"", w->id);
        for (int i = 0; i < ROUNDS; i++) {
                ej_counter_add(shared, 1);
                ej_counter_add(ej_metrics_counter(w->m, "race_half_total", "Halves.", ""), 0.5);
                ej_counter_add(ej_metrics_counter(w->m, "race_total", "Shared counter.", labels),
                               1);
                /* Both values are exact in binary, so the sum is exact in any order. */
                ej_histogram_observe(h, (i % 2) ? 0.0009765625 : 3.0);
                /* Series created while others update and render. */
                if (i % 20000 == 0) {
                        char fresh[48];
                        struct ej_buf b = EJ_BUF_INIT;

                        snprintf(fresh, sizeof(fresh), "worker=\"%d\",round=\"%d\"", w->id, i);
                        ej_counter_add(
                            ej_metrics_counter(w->m, "race_total", "Shared counter.", fresh), 1);
                        ej_metrics_render(w->m, &b);
                        ej_buf_free(&b);
                }
        }
        return NULL;
}

static void test_concurrent(void)
{
        struct ej_metrics *m = ej_metrics_create();
        pthread_t th[THREADS];
        struct worker w[THREADS];
        char *out;
        char line[128];

        for (int i = 0; i < THREADS; i++) {
                w[i].m = m;
                w[i].id = i;
                CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
        }
        for (int i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);

        out = render(m);
        snprintf(line, sizeof(line), "race_total{kind=\"shared\"} %d", THREADS * ROUNDS);
        CHECK(has_line(out, line));
        snprintf(line, sizeof(line), "race_half_total %d", THREADS * ROUNDS / 2);
        CHECK(has_line(out, line));
        for (int i = 0; i < THREADS; i++) {
                snprintf(line, sizeof(line), "race_total{worker=\"%d\"} %d", i, ROUNDS);
                CHECK(has_line(out, line));
                snprintf(line, sizeof(line), "race_total{worker=\"%d\",round=\"20000\"} 1", i);
                CHECK(has_line(out, line));
        }
        snprintf(line, sizeof(line), "race_seconds_bucket{le=\"0.001\"} %d", THREADS * ROUNDS / 2);
        CHECK(has_line(out, line));
        snprintf(line, sizeof(line), "race_seconds_count %d", THREADS * ROUNDS);
        CHECK(has_line(out, line));
        CHECK(has_line(out, "race_seconds_sum 600195.3125"));
        CHECK(count_of(out, "# TYPE race_total ") == 1);
        CHECK(count_of(out, "race_total{") == 1 + THREADS + THREADS * (ROUNDS / 20000));
        CHECK(well_formed(out));
        free(out);
        ej_metrics_destroy(m);
}

int main(void)
{
        test_counter();
        test_histogram();
        test_gauge_and_help();
        test_concurrent();
        return check_report();
}
