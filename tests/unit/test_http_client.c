/*
 * Unit tests of services/common/http_client.c: HTTP against a small server in this process
 * (one thread per connection, keep-alive, Content-Length and chunked request bodies) and SMTP
 * against tools/smtp-catcher started as a child process on a free loopback port (found
 * next to this binary: <dir>/../bin/smtp-catcher), writing caught mails to a temporary
 * directory.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "ids.h"
#include "log.h"

static int http_port;
static char base_url[64];
static atomic_int srv_active; /* server connection threads running */

/* ---- the test server ---- */

struct srv_conn {
        int fd;
        char buf[65536];
        size_t n;
};

static void srv_sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

static bool srv_fill(struct srv_conn *c)
{
        ssize_t r;

        if (c->n == sizeof(c->buf))
                return false;
        r = recv(c->fd, c->buf + c->n, sizeof(c->buf) - c->n, 0);
        if (r <= 0)
                return false;
        c->n += (size_t)r;
        return true;
}

static void srv_consume(struct srv_conn *c, size_t k)
{
        memmove(c->buf, c->buf + k, c->n - k);
        c->n -= k;
}

static bool srv_write(int fd, const void *p, size_t n)
{
        const char *s = p;

        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

                if (w <= 0)
                        return false;
                s += w;
                n -= (size_t)w;
        }
        return true;
}

/* Reads exactly `len` body bytes, counting them and summing them into *sum. */
static bool srv_read_body(struct srv_conn *c, size_t len, unsigned long long *sum)
{
        while (len > 0) {
                size_t k;

                if (c->n == 0 && !srv_fill(c))
                        return false;
                k = c->n < len ? c->n : len;
                for (size_t i = 0; i < k; i++)
                        *sum += (unsigned char)c->buf[i];
                srv_consume(c, k);
                len -= k;
        }
        return true;
}

/* Reads one CRLF-terminated line into `out`. */
static bool srv_line(struct srv_conn *c, char *out, size_t size)
{
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->n);

                if (nl != NULL) {
                        size_t k = (size_t)(nl - c->buf) + 1;
                        size_t m = k - 1;

                        if (m > 0 && c->buf[m - 1] == '\r')
                                m--;
                        if (m >= size)
                                m = size - 1;
                        memcpy(out, c->buf, m);
                        out[m] = '\0';
                        srv_consume(c, k);
                        return true;
                }
                if (!srv_fill(c))
                        return false;
        }
}

static void *srv_serve(void *arg)
{
        struct srv_conn *c = arg;

        for (;;) {
                char line[1024], method[16] = "", path[512] = "";
                long long clen = -1;
                bool chunked = false, expect = false;
                unsigned long long sum = 0, got = 0;
                struct ej_buf out = EJ_BUF_INIT;
                char x_echo[128] = "";

                if (!srv_line(c, line, sizeof(line)))
                        break;
                if (sscanf(line, "%15s %511s", method, path) != 2)
                        break;
                for (;;) {
                        if (!srv_line(c, line, sizeof(line)))
                                goto done;
                        if (line[0] == '\0')
                                break;
                        if (strncasecmp(line, "Content-Length:", 15) == 0)
                                clen = atoll(line + 15);
                        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                                 strstr(line, "chunked") != NULL)
                                chunked = true;
                        else if (strncasecmp(line, "Expect:", 7) == 0)
                                expect = true;
                        else if (strncasecmp(line, "X-Echo:", 7) == 0)
                                (void)snprintf(x_echo, sizeof(x_echo), "%.100s", line + 8);
                }
                if (chunked) {
                        for (;;) {
                                size_t sz;
                                unsigned long long before = sum;

                                if (!srv_line(c, line, sizeof(line)))
                                        goto done;
                                sz = (size_t)strtoull(line, NULL, 16);
                                if (sz == 0) {
                                        (void)srv_line(c, line, sizeof(line));
                                        break;
                                }
                                if (!srv_read_body(c, sz, &sum) || !srv_line(c, line, sizeof(line)))
                                        goto done;
                                (void)before;
                                got += sz;
                        }
                } else if (clen > 0) {
                        if (!srv_read_body(c, (size_t)clen, &sum))
                                goto done;
                        got = (unsigned long long)clen;
                }

                if (strcmp(path, "/hello") == 0) {
                        const char *body = "hello world";

                        ej_buf_appendf(&out,
                                       "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Test:  yes "
                                       "\r\nContent-Type: text/plain\r\n\r\n",
                                       strlen(body));
                        if (strcmp(method, "HEAD") != 0)
                                ej_buf_append_c(&out, body);
                } else if (strncmp(path, "/big/", 5) == 0) {
                        size_t n = (size_t)strtoull(path + 5, NULL, 10);

                        ej_buf_appendf(&out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
                        srv_write(c->fd, out.p, out.n);
                        ej_buf_reset(&out);
                        for (size_t i = 0; i < n; i++) {
                                ej_buf_append_char(&out, (char)('a' + i % 26));
                                if (out.n == 16384 || i + 1 == n) {
                                        if (!srv_write(c->fd, out.p, out.n))
                                                goto done_free;
                                        ej_buf_reset(&out);
                                }
                        }
                } else if (strcmp(path, "/echo") == 0) {
                        char body[160];
                        int n = snprintf(body, sizeof(body), "%s %llu %llu %s %s", method, got, sum,
                                         chunked ? "chunked" : "length",
                                         expect ? "expect" : "noexpect");

                        ej_buf_appendf(&out,
                                       "HTTP/1.1 201 Created\r\nContent-Length: %d\r\nX-Echo: "
                                       "%s\r\n\r\n%s",
                                       n, x_echo, body);
                } else if (strcmp(path, "/slow") == 0) {
                        srv_sleep_ms(1500);
                        ej_buf_append_c(&out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                } else if (strcmp(path, "/continue") == 0) {
                        ej_buf_append_c(&out, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                                              "HTTP/1.1 404 Not Found\r\nX-Final: 1\r\n"
                                              "Content-Length: 4\r\n\r\nnope");
                } else {
                        ej_buf_append_c(&out,
                                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
                if (out.n > 0 && !srv_write(c->fd, out.p, out.n))
                        goto done_free;
                ej_buf_free(&out);
                continue;
        done_free:
                ej_buf_free(&out);
                break;
        }
done:
        close(c->fd);
        free(c);
        atomic_fetch_sub(&srv_active, 1);
        return NULL;
}

static void *srv_accept(void *arg)
{
        int lfd = *(int *)arg;

        for (;;) {
                int fd = accept(lfd, NULL, NULL);
                struct srv_conn *c;
                pthread_t t;

                if (fd < 0)
                        continue;
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                atomic_fetch_add(&srv_active, 1);
                if (pthread_create(&t, NULL, srv_serve, c) != 0) {
                        atomic_fetch_sub(&srv_active, 1);
                        close(fd);
                        free(c);
                        continue;
                }
                pthread_detach(t);
        }
        return NULL;
}

/* Binds 127.0.0.1:0 and returns the socket (listening when `do_listen`) and its port. */
static int bind_free(int *port, bool do_listen)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            (do_listen && listen(fd, 16) != 0) ||
            getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
                return -1;
        *port = ntohs(sa.sin_port);
        return fd;
}

/* ---- HTTP tests ---- */

static void url(char *out, size_t size, const char *path)
{
        (void)snprintf(out, size, "%s%s", base_url, path);
}

static void test_get_and_headers(struct ej_http_client *c)
{
        struct ej_http_request req = {0};
        struct ej_http_response resp;
        struct ej_err err;
        char u[128], v[64];

        url(u, sizeof(u), "/hello");
        req.method = "GET";
        req.url = u;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.status == 200);
        CHECK(resp.body.n == 11 && strcmp(resp.body.p, "hello world") == 0);
        CHECK(ej_http_response_header(&resp, "x-test", v, sizeof(v)) && strcmp(v, "yes") == 0);
        CHECK(ej_http_response_header(&resp, "Content-Length", v, sizeof(v)) &&
              strcmp(v, "11") == 0);
        CHECK(!ej_http_response_header(&resp, "X-Absent", v, sizeof(v)));
        CHECK(!ej_http_response_header(&resp, "X-Tes", v, sizeof(v)));
        ej_http_response_free(&resp);

        /* Again on the same handle (the connection is reused). */
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK && resp.status == 200);
        ej_http_response_free(&resp);

        req.method = "HEAD";
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.status == 200 && resp.body.n == 0);
        CHECK(ej_http_response_header(&resp, "Content-Length", v, sizeof(v)) &&
              strcmp(v, "11") == 0);
        ej_http_response_free(&resp);

        /* An HTTP error status is an answer, not a failure. */
        url(u, sizeof(u), "/nothing");
        req.method = "GET";
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK && resp.status == 404);
        ej_http_response_free(&resp);

        /* Only the final response's headers are kept. */
        url(u, sizeof(u), "/continue");
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK && resp.status == 404);
        CHECK(ej_http_response_header(&resp, "X-Final", v, sizeof(v)));
        CHECK(!ej_http_response_header(&resp, "X-Interim", v, sizeof(v)));
        CHECK(strcmp(resp.body.p, "nope") == 0);
        ej_http_response_free(&resp);
}

static void test_put_post(struct ej_http_client *c)
{
        struct ej_http_request req = {0};
        struct ej_http_response resp;
        struct ej_err err;
        const char *hdrs[] = {"X-Echo: sent", NULL};
        char u[128], v[64];

        url(u, sizeof(u), "/echo");
        req.method = "PUT";
        req.url = u;
        req.body = "abc";
        req.body_len = 3;
        req.headers = hdrs;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.status == 201);
        CHECK(resp.body.p != NULL && strcmp(resp.body.p, "PUT 3 294 length noexpect") == 0);
        CHECK(ej_http_response_header(&resp, "X-Echo", v, sizeof(v)) && strcmp(v, "sent") == 0);
        ej_http_response_free(&resp);

        req.method = "POST";
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.body.p != NULL && strcmp(resp.body.p, "POST 3 294 length noexpect") == 0);
        ej_http_response_free(&resp);

        req.method = "DELETE";
        req.body = NULL;
        req.body_len = 0;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.body.p != NULL && strcmp(resp.body.p, "DELETE 0 0 length noexpect") == 0);
        ej_http_response_free(&resp);
}

struct gen {
        size_t total;
        size_t sent;
        int fail_at; /* abort when this many bytes were sent (-1: never) */
};

static long gen_read(void *ud, char *buf, size_t cap)
{
        struct gen *g = ud;
        size_t n = g->total - g->sent < cap ? g->total - g->sent : cap;

        if (g->fail_at >= 0 && g->sent >= (size_t)g->fail_at)
                return -1;
        for (size_t i = 0; i < n; i++)
                buf[i] = (char)('a' + (g->sent + i) % 26);
        g->sent += n;
        return (long)n;
}

static unsigned long long gen_sum(size_t total)
{
        unsigned long long s = 0;

        for (size_t i = 0; i < total; i++)
                s += (unsigned long long)('a' + i % 26);
        return s;
}

struct sink {
        size_t n;
        unsigned long long sum;
        size_t stop_after; /* return false past this many bytes (0: never) */
};

static bool sink_write(void *ud, const char *p, size_t n)
{
        struct sink *s = ud;

        for (size_t i = 0; i < n; i++)
                s->sum += (unsigned char)p[i];
        s->n += n;
        return s->stop_after == 0 || s->n <= s->stop_after;
}

static void test_streams(struct ej_http_client *c)
{
        struct ej_http_request req = {0};
        struct ej_http_response resp;
        struct ej_err err;
        struct gen g = {3u * 1024 * 1024 + 17, 0, -1};
        struct sink s = {0, 0, 0};
        char u[128], want[128];

        /* Streamed PUT of a known length. */
        url(u, sizeof(u), "/echo");
        req.method = "PUT";
        req.url = u;
        req.read_fn = gen_read;
        req.read_ud = &g;
        req.read_len = (long long)g.total;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        (void)snprintf(want, sizeof(want), "PUT %zu %llu length noexpect", g.total,
                       gen_sum(g.total));
        CHECK(resp.status == 201 && resp.body.p != NULL && strcmp(resp.body.p, want) == 0);
        ej_http_response_free(&resp);

        /* Streamed POST of unknown length goes chunked. */
        g.sent = 0;
        g.total = 100000;
        req.method = "POST";
        req.read_len = -1;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        (void)snprintf(want, sizeof(want), "POST %zu %llu chunked noexpect", g.total,
                       gen_sum(g.total));
        CHECK(resp.body.p != NULL && strcmp(resp.body.p, want) == 0);
        ej_http_response_free(&resp);

        /* A body source that fails aborts the transfer. */
        g.sent = 0;
        g.fail_at = 65536;
        req.read_len = (long long)g.total;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_INTERNAL);
        ej_http_response_free(&resp);

        /* Streamed download: bigger than the buffered cap, but the sink takes it all. */
        memset(&req, 0, sizeof(req));
        url(u, sizeof(u), "/big/2000000");
        req.method = "GET";
        req.url = u;
        req.write_fn = sink_write;
        req.write_ud = &s;
        req.max_response = 1000;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK);
        CHECK(resp.status == 200 && s.n == 2000000 && s.sum == gen_sum(2000000));
        CHECK(resp.body.n == 0);
        ej_http_response_free(&resp);

        /* A sink that says stop. */
        s.n = 0;
        s.stop_after = 100000;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_INTERNAL);
        ej_http_response_free(&resp);
}

static void test_limits(struct ej_http_client *c)
{
        struct ej_http_request req = {0};
        struct ej_http_response resp;
        struct ej_err err;
        char u[128];
        long long t0;
        int port;
        int fd;

        url(u, sizeof(u), "/big/5000");
        req.method = "GET";
        req.url = u;
        req.max_response = 4096;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_TOO_LARGE);
        CHECK(err.status == EJ_ERR_TOO_LARGE);
        ej_http_response_free(&resp);

        req.max_response = 5000; /* exactly at the cap is fine */
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK && resp.body.n == 5000);
        ej_http_response_free(&resp);

        /* The handle is still usable after an aborted transfer. */
        url(u, sizeof(u), "/hello");
        req.max_response = 0;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_OK && resp.status == 200);
        ej_http_response_free(&resp);

        url(u, sizeof(u), "/slow");
        req.timeout_ms = 300;
        t0 = ej_mono_ms();
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_TIMEOUT);
        CHECK(ej_mono_ms() - t0 < 1400);
        ej_http_response_free(&resp);

        /* A port nobody listens on (bound, not listening, so it stays ours). */
        fd = bind_free(&port, false);
        CHECK(fd >= 0);
        (void)snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", port);
        req.timeout_ms = 0;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_UNAVAILABLE);
        ej_http_response_free(&resp);
        close(fd);

        req.url = "ftp://127.0.0.1/x";
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_INVALID);
        ej_http_response_free(&resp);

        req.url = u;
        req.body = "x";
        req.body_len = 1;
        req.read_fn = gen_read;
        CHECK(ej_http_do(c, &req, &resp, &err) == EJ_ERR_INVALID);
        ej_http_response_free(&resp);
}

/* ---- SMTP tests ---- */

static pid_t catcher_pid;
static int catcher_port;
static char mail_dir[256];

static bool catcher_start(const char *self)
{
        char bin[1024], dir[1024], addr[64];
        int out[2];
        FILE *f;
        char line[256];

        (void)snprintf(dir, sizeof(dir), "%s", self);
        (void)snprintf(bin, sizeof(bin), "%s/../bin/smtp-catcher", dirname(dir));
        (void)snprintf(mail_dir, sizeof(mail_dir), "%s/ej-http-client-mail.XXXXXX",
                       getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (mkdtemp(mail_dir) == NULL || pipe(out) != 0)
                return false;
        catcher_pid = fork();
        if (catcher_pid == 0) {
                dup2(out[1], 1);
                close(out[0]);
                close(out[1]);
                setenv("EJ_CATCHER_SMTP_ADDR", "127.0.0.1:0", 1);
                setenv("EJ_CATCHER_DIR", mail_dir, 1);
                setenv("EJ_LOG_LEVEL", "warn", 1);
                unsetenv("EJ_NATS_URL");
                execl(bin, bin, (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        f = fdopen(out[0], "r");
        if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
                fprintf(stderr, "test_http_client: %s did not start\n", bin);
                return false;
        }
        fclose(f);
        if (sscanf(line, "smtp-catcher: listening on 127.0.0.1:%d", &catcher_port) != 1)
                return false;
        (void)addr;
        return true;
}

static void catcher_stop(void)
{
        char cmd[512];

        if (catcher_pid > 0) {
                kill(catcher_pid, SIGTERM);
                waitpid(catcher_pid, NULL, 0);
        }
        if (mail_dir[0] != '\0') {
                DIR *d = opendir(mail_dir);
                struct dirent *e;

                while (d != NULL && (e = readdir(d)) != NULL) {
                        if (e->d_name[0] == '.')
                                continue;
                        (void)snprintf(cmd, sizeof(cmd), "%s/%s", mail_dir, e->d_name);
                        unlink(cmd);
                }
                if (d != NULL)
                        closedir(d);
                rmdir(mail_dir);
        }
}

/* Reads caught mail number `id` into `out`; false when it is not there. */
static bool caught(int id, struct ej_buf *out)
{
        char path[512], buf[4096];
        FILE *f;
        size_t n;

        (void)snprintf(path, sizeof(path), "%s/%d.eml", mail_dir, id);
        f = fopen(path, "r");
        if (f == NULL)
                return false;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                ej_buf_append(out, buf, n);
        fclose(f);
        return true;
}

static void test_smtp(void)
{
        struct ej_smtp_config cfg = {0};
        struct ej_err err;
        struct ej_buf got = EJ_BUF_INIT;
        char u[64];
        int port, fd;
        const char *msg = "From: EasyJournal <no-reply@example.org>\r\n"
                          "To: ada@example.org\r\n"
                          "Subject: Hello\r\n"
                          "\r\n"
                          "First line\r\n"
                          ".a line that starts with a dot\r\n"
                          ".\r\n"
                          "last\r\n";

        (void)snprintf(u, sizeof(u), "smtp://127.0.0.1:%d", catcher_port);
        cfg.url = u;
        cfg.timeout_ms = 5000;
        CHECK(ej_smtp_send(&cfg, "EasyJournal <no-reply@example.org>", "ada@example.org", msg,
                           strlen(msg), &err) == EJ_OK);
        CHECK(caught(1, &got));
        CHECK(got.p != NULL && strstr(got.p, "X-Catcher-From: no-reply@example.org\n") != NULL);
        CHECK(got.p != NULL && strstr(got.p, "X-Catcher-To: ada@example.org\n") != NULL);
        /* Dot-stuffed by curl, unstuffed by the catcher: the lines arrive as written. */
        CHECK(got.p != NULL &&
              strstr(got.p, "\n.a line that starts with a dot\n.\nlast\n") != NULL);
        ej_buf_free(&got);

        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "reject-1@example.org", msg, strlen(msg),
                           &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "550") != NULL);
        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "defer-1@example.org", msg, strlen(msg),
                           &err) == EJ_ERR_UNAVAILABLE);
        CHECK(strstr(err.msg, "451") != NULL);
        CHECK(!caught(2, &got));

        /* Header injection through the envelope is refused before any connection. */
        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "a@example.org\r\nRCPT TO:<b@x>", msg,
                           strlen(msg), &err) == EJ_ERR_INVALID);

        /* STARTTLS required but the catcher has none: keep the mail, try later. */
        cfg.starttls = true;
        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "ada@example.org", msg, strlen(msg),
                           &err) == EJ_ERR_UNAVAILABLE);
        cfg.starttls = false;

        fd = bind_free(&port, false);
        (void)snprintf(u, sizeof(u), "smtp://127.0.0.1:%d", port);
        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "ada@example.org", msg, strlen(msg),
                           &err) == EJ_ERR_UNAVAILABLE);
        close(fd);

        /* A server that accepts the connection and never greets: timeout. */
        fd = bind_free(&port, true);
        (void)snprintf(u, sizeof(u), "smtp://127.0.0.1:%d", port);
        cfg.timeout_ms = 300;
        CHECK(ej_smtp_send(&cfg, "no-reply@example.org", "ada@example.org", msg, strlen(msg),
                           &err) == EJ_ERR_TIMEOUT);
        close(fd);
}

int main(int argc, char **argv)
{
        struct ej_err err;
        struct ej_http_client *c;
        pthread_t t;
        int lfd;

        (void)argc;
        signal(SIGPIPE, SIG_IGN);
        ej_log_init("test_http_client", getenv("EJ_TEST_LOG") ? getenv("EJ_TEST_LOG") : "error");
        CHECK(ej_http_global_init(&err) == EJ_OK);
        lfd = bind_free(&http_port, true);
        CHECK(lfd >= 0);
        if (lfd < 0)
                return check_report();
        (void)snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", http_port);
        pthread_create(&t, NULL, srv_accept, &lfd);
        pthread_detach(t);

        c = ej_http_client_create();
        test_get_and_headers(c);
        test_put_post(c);
        test_streams(c);
        test_limits(c);
        ej_http_client_destroy(c);
        ej_http_client_destroy(NULL);
        /* The client's connections are closed: let the server threads finish (the slow one
         * sleeps its 1.5 s out). */
        for (int i = 0; i < 300 && atomic_load(&srv_active) > 0; i++)
                srv_sleep_ms(10);

        if (catcher_start(argv[0])) {
                test_smtp();
        } else {
                CHECK(!"smtp-catcher started");
        }
        catcher_stop();
        return check_report();
}
