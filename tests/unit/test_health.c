/* Unit tests for health.c: the admin endpoint over real sockets on loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "health.h"

struct reply {
        int code;
        char content_type[128];
        char body[8192];
};

static int connect_to(int port)
{
        struct sockaddr_in sa;
        struct timeval tv = {5, 0};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Reads one response (headers, then Content-Length bytes of body) from `fd`. For HEAD
 * requests pass head = 1: no body follows. Returns 0 on success. */
static int read_reply(int fd, struct reply *r, int head)
{
        char buf[16384];
        size_t n = 0;
        char *end = NULL;
        const char *cl, *ct;
        long len;

        memset(r, 0, sizeof(*r));
        while (end == NULL) {
                ssize_t got;

                if (n + 1 >= sizeof(buf))
                        return -1;
                got = recv(fd, buf + n, 1, 0); /* byte by byte: never read past this reply */
                if (got <= 0)
                        return -1;
                n += (size_t)got;
                buf[n] = '\0';
                end = strstr(buf, "\r\n\r\n");
        }
        if (sscanf(buf, "HTTP/1.%*d %d", &r->code) != 1)
                return -1;
        ct = strcasestr(buf, "\r\nContent-Type: ");
        if (ct != NULL)
                sscanf(ct + 16, "%127[^\r]", r->content_type);
        cl = strcasestr(buf, "\r\nContent-Length: ");
        len = cl ? strtol(cl + 18, NULL, 10) : -1;
        if (head)
                return 0;
        if (len < 0 || (size_t)len >= sizeof(r->body))
                return -1;
        for (size_t have = 0; have < (size_t)len;) {
                ssize_t got = recv(fd, r->body + have, (size_t)len - have, 0);

                if (got <= 0)
                        return -1;
                have += (size_t)got;
        }
        r->body[len] = '\0';
        return 0;
}

/* One request on a fresh connection. Returns 0 on success. */
static int request(int port, const char *method, const char *path, struct reply *r)
{
        char req[256];
        int fd = connect_to(port);
        int rc;

        if (fd < 0)
                return -1;
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 method, path);
        rc = send_all(fd, req, strlen(req));
        if (rc == 0)
                rc = read_reply(fd, r, strcmp(method, "HEAD") == 0);
        close(fd);
        return rc;
}

static bool read_flag(void *ud)
{
        return atomic_load((_Atomic bool *)ud);
}

static void test_endpoints(void)
{
        struct ej_metrics *m = ej_metrics_create();
        struct ej_health *h = NULL;
        struct ej_err err;
        _Atomic bool ready = true;
        struct reply r;
        int port;

        ej_counter_add(ej_metrics_counter(m, "probe_total", "Probes.", "kind=\"test\""), 3);
        CHECK(ej_health_start(&h, "127.0.0.1:0", m, read_flag, &ready, &err) == EJ_OK);
        if (h == NULL) {
                fprintf(stderr, "  start failed: %s\n", err.msg);
                ej_metrics_destroy(m);
                return;
        }
        port = ej_health_port(h);
        CHECK(port > 0 && port < 65536);

        CHECK(request(port, "GET", "/healthz", &r) == 0);
        CHECK(r.code == 200);
        CHECK(strncmp(r.content_type, "application/json", 16) == 0);
        CHECK(strcmp(r.body, "{\"status\":\"ok\"}") == 0);

        CHECK(request(port, "GET", "/readyz", &r) == 0);
        CHECK(r.code == 200);
        CHECK(strstr(r.body, "\"status\"") != NULL);

        atomic_store(&ready, false);
        CHECK(request(port, "GET", "/readyz", &r) == 0);
        CHECK(r.code == 503);
        CHECK(strncmp(r.content_type, "application/json", 16) == 0);
        CHECK(strstr(r.body, "\"status\"") != NULL && strstr(r.body, "\"ok\"") == NULL);
        /* Liveness does not depend on readiness. */
        CHECK(request(port, "GET", "/healthz", &r) == 0 && r.code == 200);
        atomic_store(&ready, true);
        CHECK(request(port, "GET", "/readyz", &r) == 0 && r.code == 200);

        CHECK(request(port, "GET", "/metrics", &r) == 0);
        CHECK(r.code == 200);
        CHECK(strcmp(r.content_type, "text/plain; version=0.0.4; charset=utf-8") == 0);
        CHECK(strstr(r.body, "# TYPE probe_total counter\n") != NULL);
        CHECK(strstr(r.body, "\nprobe_total{kind=\"test\"} 3\n") != NULL);

        /* Metrics are rendered per scrape, not cached. */
        ej_counter_add(ej_metrics_counter(m, "probe_total", "Probes.", "kind=\"test\""), 1);
        CHECK(request(port, "GET", "/metrics", &r) == 0);
        CHECK(strstr(r.body, "\nprobe_total{kind=\"test\"} 4\n") != NULL);

        CHECK(request(port, "GET", "/nope", &r) == 0);
        CHECK(r.code == 404);
        CHECK(strstr(r.body, "not_found") != NULL);
        CHECK(request(port, "GET", "/healthz/extra", &r) == 0 && r.code == 404);

        CHECK(request(port, "POST", "/healthz", &r) == 0);
        CHECK(r.code == 405);
        CHECK(request(port, "HEAD", "/healthz", &r) == 0);
        CHECK(r.code == 200);

        ej_health_stop(h);
        /* Nothing listens after stop. */
        CHECK(connect_to(port) < 0);
        ej_metrics_destroy(m);
}

/* Several requests over one kept-alive connection: responses are queued on the second call of
 * the access handler, so libmicrohttpd must not close the connection after each one. */
static void test_keep_alive(void)
{
        struct ej_health *h = NULL;
        struct reply r;
        const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        int fd, ok = 1;

        CHECK(ej_health_start(&h, "127.0.0.1:0", NULL, NULL, NULL, NULL) == EJ_OK);
        if (h == NULL)
                return;
        fd = connect_to(ej_health_port(h));
        CHECK(fd >= 0);
        for (int i = 0; i < 5 && fd >= 0; i++) {
                ok = ok && send_all(fd, req, strlen(req)) == 0;
                ok = ok && read_reply(fd, &r, 0) == 0 && r.code == 200;
        }
        CHECK(ok);
        if (fd >= 0)
                close(fd);

        /* No readiness callback means ready; no registry means an empty scrape. */
        CHECK(request(ej_health_port(h), "GET", "/readyz", &r) == 0 && r.code == 200);
        CHECK(request(ej_health_port(h), "GET", "/metrics", &r) == 0 && r.code == 200);
        CHECK(r.body[0] == '\0');
        ej_health_stop(h);
}

static void test_bad_addresses(void)
{
        struct ej_health *h = NULL, *h2 = NULL;
        struct ej_err err;
        char addr[64];

        ej_err_clear(&err);
        CHECK(ej_health_start(&h, "127.0.0.1", NULL, NULL, NULL, &err) == EJ_ERR_INVALID);
        CHECK(h == NULL && err.msg[0] != '\0');
        CHECK(ej_health_start(&h, "127.0.0.1:notaport", NULL, NULL, NULL, &err) != EJ_OK);
        CHECK(h == NULL);
        CHECK(ej_health_start(&h, "256.1.1.1:0", NULL, NULL, NULL, &err) != EJ_OK);
        CHECK(h == NULL);

        /* A port already taken is a clear start-up failure. */
        CHECK(ej_health_start(&h, "127.0.0.1:0", NULL, NULL, NULL, &err) == EJ_OK);
        if (h != NULL) {
                snprintf(addr, sizeof(addr), "127.0.0.1:%d", ej_health_port(h));
                ej_err_clear(&err);
                CHECK(ej_health_start(&h2, addr, NULL, NULL, NULL, &err) == EJ_ERR_UNAVAILABLE);
                CHECK(h2 == NULL);
                CHECK(strstr(err.msg, addr) != NULL);
                ej_health_stop(h2);
        }
        ej_health_stop(h);
        ej_health_stop(NULL);
}

/* The database part of readiness: a server that refuses is not ready; one that answers is; the
 * answer is cached for the period, so a second call within it costs nothing. */
static void test_db_probe(void)
{
        const char *url = getenv("EJ_TEST_DB_URL");
        struct ej_db_probe *p = NULL;
        int port = th_free_port();
        char bad[128];

        snprintf(bad, sizeof(bad), "host=127.0.0.1 port=%d dbname=x connect_timeout=2", port);
        ej_db_probe_create(&p, bad, "public", 1000);
        CHECK(!ej_db_probe_ok(p));
        CHECK(!ej_db_probe_ok(p));
        ej_db_probe_destroy(p);
        ej_db_probe_destroy(NULL);
        if (url == NULL || url[0] == '\0')
                return;
        ej_db_probe_create(&p, url, "public", 60000);
        CHECK(ej_db_probe_ok(p));
        CHECK(ej_db_probe_ok(p)); /* cached */
        ej_db_probe_destroy(p);
}

int main(void)
{
        test_endpoints();
        test_keep_alive();
        test_bad_addresses();
        test_db_probe();
        return check_report();
}
