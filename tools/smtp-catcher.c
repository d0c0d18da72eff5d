/*
 * smtp-catcher: a small SMTP server for the local stack and the tests. It accepts every mail
 * sent to it on loopback, keeps the last EJ_CATCHER_MAX in memory (and, when EJ_CATCHER_DIR is
 * set, appends each to that directory as <id>.eml) and answers over NATS (proto/devmail.proto):
 *
 *   ej.devmail.list   DevmailListRequest -> DevmailListResponse (newest first)
 *   ej.devmail.clear  ej.common.Empty    -> ej.common.Empty
 *
 * Never used in production: it delivers nothing anywhere.
 *
 * Settings (environment):
 *   EJ_CATCHER_SMTP_ADDR  127.0.0.1:<port> to listen on (127.0.0.1:2525; port 0 = any free)
 *   EJ_NATS_URL           NATS server; unset = no NATS (read the directory instead)
 *   EJ_CATCHER_DIR        directory to append messages to (unset = memory only)
 *   EJ_CATCHER_MAX        messages kept in memory (500)
 *   EJ_CATCHER_SUBJECTS   subject prefix ("ej.devmail"): <prefix>.list and <prefix>.clear; a
 *                         test with a catcher of its own on a shared NATS picks its own
 *
 * It prints "smtp-catcher: listening on 127.0.0.1:<port>" on stdout once ready.
 *
 * For tests of failure handling, recipients whose local part starts with "reject-" are refused
 * with 550 (permanent) and those starting with "defer-" with 451 (try again later).
 *
 * Speaks EHLO/HELO, MAIL FROM, RCPT TO, DATA (dot-unstuffed), RSET, NOOP, VRFY, QUIT with the
 * 8BITMIME, SIZE and PIPELINING extensions. One thread per connection; the store is locked.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <unistd.h>

#include "bus.h"
#include "common.pb-c.h"
#include "config.h"
#include "devmail.pb-c.h"
#include "ids.h"
#include "log.h"
#include "mem.h"
#include "status.h"
#include "str.h"

#define CATCHER_LINE_MAX 1000               /* RFC 5321 text line, CRLF included */
#define CATCHER_DATA_MAX (10 * 1024 * 1024) /* SIZE we announce */
#define CATCHER_RCPT_MAX 100
#define CATCHER_LIST_DEF 50
#define CATCHER_LIST_MAX 500
#define CATCHER_IDLE_MS  60000

static volatile sig_atomic_t stop_flag;

struct caught {
        unsigned long long id;
        char *from;
        char *to; /* comma-separated */
        char *subject;
        char *body;
        char *raw;
        long long received_at_ms;
};

struct store {
        pthread_mutex_t mu;
        struct caught **ring; /* ring[0] oldest */
        size_t n;
        size_t max;
        unsigned long long next_id;
        const char *dir;
        struct ej_bus *bus;
        atomic_int conns; /* connection threads running */
};

/* A connection being served. */
struct conn {
        int fd;
        struct store *st;
        char in[8192];
        size_t in_n;
};

static void caught_free(struct caught *m)
{
        if (m == NULL)
                return;
        free(m->from);
        free(m->to);
        free(m->subject);
        free(m->body);
        free(m->raw);
        free(m);
}

/* ---- decoding what we keep ---- */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static int b64val(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static void b64_decode(struct ej_buf *out, const char *p, size_t n)
{
        unsigned v = 0;
        int bits = 0;

        for (size_t i = 0; i < n; i++) {
                int d = b64val(p[i]);

                if (d < 0)
                        continue;
                v = (v << 6) | (unsigned)d;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        ej_buf_append_char(out, (char)((v >> bits) & 0xFF));
                }
        }
}

/* Quoted-printable (RFC 2045); also used for RFC 2047 "Q" words when `q_word` ('_' = space). */
static void qp_decode(struct ej_buf *out, const char *p, size_t n, bool q_word)
{
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '=' && i + 1 < n && p[i + 1] == '\n') {
                        i++; /* soft line break */
                } else if (p[i] == '=' && i + 2 < n && hexval(p[i + 1]) >= 0 &&
                           hexval(p[i + 2]) >= 0) {
                        ej_buf_append_char(out, (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2])));
                        i += 2;
                } else if (q_word && p[i] == '_') {
                        ej_buf_append_char(out, ' ');
                } else {
                        ej_buf_append_char(out, p[i]);
                }
        }
}

/* Decodes RFC 2047 encoded words in a header value (white space between words dropped). */
static void header_decode(struct ej_buf *out, const char *v)
{
        bool last_was_word = false;

        while (*v != '\0') {
                const char *start = strstr(v, "=?");
                const char *q1, *q2, *end;

                if (start == NULL) {
                        ej_buf_append_c(out, v);
                        return;
                }
                q1 = strchr(start + 2, '?');
                q2 = q1 != NULL ? strchr(q1 + 1, '?') : NULL;
                end = q2 != NULL ? strstr(q2 + 1, "?=") : NULL;
                if (q1 == NULL || q2 == NULL || end == NULL || q2 != q1 + 2) {
                        ej_buf_append(out, v, (size_t)(start + 2 - v));
                        v = start + 2;
                        last_was_word = false;
                        continue;
                }
                {
                        bool gap_blank = true;

                        for (const char *g = v; g < start; g++)
                                if (*g != ' ' && *g != '\t')
                                        gap_blank = false;
                        if (!(last_was_word && gap_blank))
                                ej_buf_append(out, v, (size_t)(start - v));
                }
                if (q1[1] == 'B' || q1[1] == 'b')
                        b64_decode(out, q2 + 1, (size_t)(end - q2 - 1));
                else
                        qp_decode(out, q2 + 1, (size_t)(end - q2 - 1), true);
                last_was_word = true;
                v = end + 2;
        }
}

/* Splits the raw message (LF line ends) into the decoded subject and body. */
static void parse_message(const char *raw, char **subject, char **body)
{
        struct ej_buf subj = EJ_BUF_INIT;
        struct ej_buf hdr = EJ_BUF_INIT; /* the current unfolded header */
        struct ej_buf out = EJ_BUF_INIT;
        char cte[64] = "";
        const char *p = raw;
        const char *body_start = NULL;

        for (;;) {
                const char *eol = strchr(p, '\n');
                size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

                if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
                        ej_buf_append(&hdr, p, n); /* folded continuation */
                } else {
                        if (hdr.n > 0) {
                                if (strncasecmp(hdr.p, "Subject:", 8) == 0) {
                                        const char *v = hdr.p + 8;

                                        while (*v == ' ')
                                                v++;
                                        header_decode(&subj, v);
                                } else if (strncasecmp(hdr.p, "Content-Transfer-Encoding:", 26) ==
                                           0) {
                                        const char *v = hdr.p + 26;

                                        while (*v == ' ')
                                                v++;
                                        (void)snprintf(cte, sizeof(cte), "%s", v);
                                }
                        }
                        ej_buf_reset(&hdr);
                        if (n == 0) {
                                body_start = eol != NULL ? eol + 1 : p + n;
                                break;
                        }
                        ej_buf_append(&hdr, p, n);
                }
                if (eol == NULL) {
                        body_start = p + n;
                        break;
                }
                p = eol + 1;
        }
        if (strncasecmp(cte, "quoted-printable", 16) == 0)
                qp_decode(&out, body_start, strlen(body_start), false);
        else if (strncasecmp(cte, "base64", 6) == 0)
                b64_decode(&out, body_start, strlen(body_start));
        else
                ej_buf_append_c(&out, body_start);
        ej_buf_append_c(&subj, "");
        ej_buf_append_c(&out, "");
        *subject = ej_buf_steal(&subj);
        *body = ej_buf_steal(&out);
        ej_buf_free(&hdr);
}

/* ---- the store ---- */

static void store_add(struct store *st, const char *from, const char *to, const char *raw)
{
        struct caught *m = xcalloc(1, sizeof(*m));

        m->from = xstrdup(from);
        m->to = xstrdup(to);
        m->raw = xstrdup(raw);
        m->received_at_ms = ej_now_ms();
        parse_message(raw, &m->subject, &m->body);
        pthread_mutex_lock(&st->mu);
        m->id = ++st->next_id;
        if (st->n == st->max) {
                caught_free(st->ring[0]);
                memmove(st->ring, st->ring + 1, (st->n - 1) * sizeof(st->ring[0]));
                st->n--;
        }
        st->ring[st->n++] = m;
        if (st->dir != NULL) {
                char path[4096];
                int w = snprintf(path, sizeof(path), "%s/%llu.eml", st->dir, m->id);
                FILE *f = w > 0 && (size_t)w < sizeof(path) ? fopen(path, "w") : NULL;

                if (f != NULL) {
                        fprintf(f, "X-Catcher-From: %s\nX-Catcher-To: %s\n%s", from, to, raw);
                        fclose(f);
                } else {
                        ej_warn(NULL, "cannot write %s: %s", path, strerror(errno));
                }
        }
        ej_info(NULL, "caught mail %llu from %s to %s: %s", m->id, from, to, m->subject);
        pthread_mutex_unlock(&st->mu);
}

static bool rcpt_match(const char *list, const char *want)
{
        size_t n = strlen(want);
        const char *p = list;

        while (*p != '\0') {
                const char *comma = strchr(p, ',');
                size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

                if (len == n && strncasecmp(p, want, n) == 0)
                        return true;
                if (comma == NULL)
                        break;
                p = comma + 1;
        }
        return false;
}

static void on_list(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud)
{
        struct store *st = ud;
        struct ej_arena *a = ej_arena_create(0);
        ProtobufCAllocator alloc = ej_arena_pb_allocator(a);
        Ej__Devmail__DevmailListRequest *req = NULL;
        Ej__Devmail__DevmailListResponse resp = EJ__DEVMAIL__DEVMAIL_LIST_RESPONSE__INIT;
        struct ej_err err;
        enum ej_status s = EJ_OK;
        size_t limit;

        (void)nc;
        (void)sub;
        ej_err_clear(&err);
        req = ej__devmail__devmail_list_request__unpack(&alloc, (size_t)natsMsg_GetDataLength(msg),
                                                        (const uint8_t *)natsMsg_GetData(msg));
        if (req == NULL) {
                s = ej_err_set(&err, EJ_ERR_INVALID, NULL, "malformed DevmailListRequest");
                goto out;
        }
        limit = req->limit == 0 ? CATCHER_LIST_DEF : req->limit;
        if (limit > CATCHER_LIST_MAX)
                limit = CATCHER_LIST_MAX;
        pthread_mutex_lock(&st->mu);
        resp.messages = ej_arena_calloc(a, (st->n > 0 ? st->n : 1) * sizeof(*resp.messages));
        for (size_t i = st->n; i > 0 && resp.n_messages < limit; i--) {
                struct caught *m = st->ring[i - 1];
                Ej__Devmail__DevMessage *dm;

                if (req->to != NULL && req->to[0] != '\0' && !rcpt_match(m->to, req->to))
                        continue;
                dm = ej_arena_calloc(a, sizeof(*dm));
                ej__devmail__dev_message__init(dm);
                dm->id = ej_arena_printf(a, "%llu", m->id);
                dm->from = ej_arena_strdup(a, m->from);
                dm->to = ej_arena_strdup(a, m->to);
                dm->subject = ej_arena_strdup(a, m->subject);
                dm->body = ej_arena_strdup(a, m->body);
                dm->raw = ej_arena_strdup(a, m->raw);
                dm->received_at_ms = m->received_at_ms;
                resp.messages[resp.n_messages++] = dm;
        }
        pthread_mutex_unlock(&st->mu);
out:
        (void)ej_bus_respond(st->bus, msg, s, &err, s == EJ_OK ? &resp.base : NULL);
        natsMsg_Destroy(msg);
        ej_arena_destroy(a);
}

static void on_clear(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud)
{
        struct store *st = ud;
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;

        (void)nc;
        (void)sub;
        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < st->n; i++)
                caught_free(st->ring[i]);
        st->n = 0;
        pthread_mutex_unlock(&st->mu);
        (void)ej_bus_respond(st->bus, msg, EJ_OK, NULL, &empty.base);
        natsMsg_Destroy(msg);
}

/* ---- SMTP ---- */

static bool send_all(int fd, const char *s)
{
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return false;
                s += w;
                n -= (size_t)w;
        }
        return true;
}

/* Reads one line (without CR LF) into `line`. Returns its length, -1 on EOF/error/idle, -2
 * when it was longer than the buffer (the rest is discarded). */
static long read_line(struct conn *c, char *line, size_t size)
{
        bool too_long = false;
        size_t used = 0;

        for (;;) {
                char *nl = memchr(c->in, '\n', c->in_n);
                struct pollfd pfd = {c->fd, POLLIN, 0};
                ssize_t r;

                if (nl != NULL) {
                        size_t n = (size_t)(nl - c->in);
                        size_t keep = n;

                        if (keep > 0 && c->in[keep - 1] == '\r')
                                keep--;
                        if (!too_long && used + keep < size) {
                                memcpy(line + used, c->in, keep);
                                used += keep;
                        } else {
                                too_long = true;
                        }
                        memmove(c->in, nl + 1, c->in_n - n - 1);
                        c->in_n -= n + 1;
                        line[used] = '\0';
                        return too_long ? -2 : (long)used;
                }
                if (c->in_n == sizeof(c->in)) {
                        /* A line longer than our buffer: keep what fits, drop the rest. */
                        if (!too_long && used + c->in_n < size) {
                                memcpy(line + used, c->in, c->in_n);
                                used += c->in_n;
                        } else {
                                too_long = true;
                        }
                        c->in_n = 0;
                }
                if (poll(&pfd, 1, CATCHER_IDLE_MS) <= 0)
                        return -1;
                r = recv(c->fd, c->in + c->in_n, sizeof(c->in) - c->in_n, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                c->in_n += (size_t)r;
        }
}

/* The address inside "<...>" after a "MAIL FROM:"/"RCPT TO:" verb, copied into `out`. */
static bool parse_path(const char *arg, char *out, size_t size)
{
        const char *lt = strchr(arg, '<');
        const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
        size_t n;

        if (lt == NULL || gt == NULL)
                return false;
        n = (size_t)(gt - lt - 1);
        if (n >= size)
                return false;
        memcpy(out, lt + 1, n);
        out[n] = '\0';
        return true;
}

static void *serve(void *arg)
{
        struct conn *c = arg;
        char line[CATCHER_LINE_MAX + 8];
        char from[300] = "";
        struct ej_buf to = EJ_BUF_INIT;
        struct ej_buf data = EJ_BUF_INIT;
        bool have_from = false;
        size_t nrcpt = 0;

        if (!send_all(c->fd, "220 smtp-catcher ESMTP ready\r\n"))
                goto out;
        for (;;) {
                long n = read_line(c, line, sizeof(line));

                if (n == -1)
                        break;
                if (n == -2) {
                        send_all(c->fd, "500 5.5.2 line too long\r\n");
                        continue;
                }
                if (strncasecmp(line, "EHLO", 4) == 0) {
                        send_all(c->fd, "250-smtp-catcher\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
                                        "250-SIZE 10485760\r\n250 SMTPUTF8\r\n");
                        have_from = false;
                        nrcpt = 0;
                        ej_buf_reset(&to);
                } else if (strncasecmp(line, "HELO", 4) == 0) {
                        send_all(c->fd, "250 smtp-catcher\r\n");
                } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
                        if (!parse_path(line + 10, from, sizeof(from))) {
                                send_all(c->fd, "501 5.1.7 bad sender address\r\n");
                                continue;
                        }
                        have_from = true;
                        nrcpt = 0;
                        ej_buf_reset(&to);
                        send_all(c->fd, "250 2.1.0 ok\r\n");
                } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
                        char rcpt[300];

                        if (!have_from) {
                                send_all(c->fd, "503 5.5.1 MAIL first\r\n");
                        } else if (!parse_path(line + 8, rcpt, sizeof(rcpt)) || rcpt[0] == '\0') {
                                send_all(c->fd, "501 5.1.3 bad recipient address\r\n");
                        } else if (strncasecmp(rcpt, "reject-", 7) == 0) {
                                send_all(c->fd, "550 5.1.1 mailbox unavailable\r\n");
                        } else if (strncasecmp(rcpt, "defer-", 6) == 0) {
                                send_all(c->fd, "451 4.3.0 try again later\r\n");
                        } else if (nrcpt >= CATCHER_RCPT_MAX) {
                                send_all(c->fd, "452 4.5.3 too many recipients\r\n");
                        } else {
                                if (nrcpt > 0)
                                        ej_buf_append_char(&to, ',');
                                ej_buf_append_c(&to, rcpt);
                                nrcpt++;
                                send_all(c->fd, "250 2.1.5 ok\r\n");
                        }
                } else if (strcasecmp(line, "DATA") == 0) {
                        bool too_big = false;

                        if (!have_from || nrcpt == 0) {
                                send_all(c->fd, "503 5.5.1 need MAIL and RCPT first\r\n");
                                continue;
                        }
                        send_all(c->fd, "354 end data with <CR><LF>.<CR><LF>\r\n");
                        ej_buf_reset(&data);
                        for (;;) {
                                n = read_line(c, line, sizeof(line));
                                if (n == -1)
                                        goto out;
                                if (strcmp(line, ".") == 0)
                                        break;
                                if (data.n > CATCHER_DATA_MAX) {
                                        too_big = true;
                                        continue;
                                }
                                /* Dot-unstuffing (RFC 5321 4.5.2). */
                                ej_buf_append_c(&data, line[0] == '.' ? line + 1 : line);
                                ej_buf_append_char(&data, '\n');
                        }
                        if (too_big) {
                                send_all(c->fd, "552 5.3.4 message too big\r\n");
                        } else {
                                store_add(c->st, from, to.p != NULL ? to.p : "",
                                          data.p != NULL ? data.p : "");
                                send_all(c->fd, "250 2.0.0 ok: queued\r\n");
                        }
                        have_from = false;
                        nrcpt = 0;
                        ej_buf_reset(&to);
                } else if (strcasecmp(line, "RSET") == 0) {
                        have_from = false;
                        nrcpt = 0;
                        ej_buf_reset(&to);
                        send_all(c->fd, "250 2.0.0 ok\r\n");
                } else if (strncasecmp(line, "NOOP", 4) == 0) {
                        send_all(c->fd, "250 2.0.0 ok\r\n");
                } else if (strncasecmp(line, "VRFY", 4) == 0) {
                        send_all(c->fd, "252 2.1.5 cannot verify, but will accept\r\n");
                } else if (strcasecmp(line, "QUIT") == 0) {
                        send_all(c->fd, "221 2.0.0 bye\r\n");
                        break;
                } else {
                        send_all(c->fd, "502 5.5.1 command not implemented\r\n");
                }
        }
out:
        close(c->fd);
        ej_buf_free(&to);
        ej_buf_free(&data);
        atomic_fetch_sub(&c->st->conns, 1);
        free(c);
        return NULL;
}

static void on_signal(int sig)
{
        (void)sig;
        stop_flag = 1;
}

static int listen_on(const char *addr, int *port_out)
{
        char host[64];
        const char *colon = strrchr(addr, ':');
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        long port;
        char *end = NULL;
        int fd, one = 1;

        if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
                return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port < 0 || port > 65535)
                return -1;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
                close(fd);
                return -1;
        }
        *port_out = ntohs(sa.sin_port);
        return fd;
}

int main(void)
{
        struct store st;
        struct ej_err err;
        struct sigaction sa;
        natsSubscription *sub_list = NULL, *sub_clear = NULL;
        const char *addr;
        const char *nats_url;
        const char *prefix;
        char subj_list[128], subj_clear[128];
        long max = 0;
        int lfd = -1, port = 0, rc = 1;

        memset(&st, 0, sizeof(st));
        atomic_init(&st.conns, 0);
        pthread_mutex_init(&st.mu, NULL);
        ej_log_init("smtp-catcher", ej_env_str("EJ_LOG_LEVEL", "info"));
        ej_err_clear(&err);
        addr = ej_env_str("EJ_CATCHER_SMTP_ADDR", "127.0.0.1:2525");
        nats_url = ej_env_str("EJ_NATS_URL", NULL);
        st.dir = ej_env_str("EJ_CATCHER_DIR", NULL);
        prefix = ej_env_str("EJ_CATCHER_SUBJECTS", "ej.devmail");
        if (snprintf(subj_list, sizeof(subj_list), "%s.list", prefix) >= (int)sizeof(subj_list) ||
            snprintf(subj_clear, sizeof(subj_clear), "%s.clear", prefix) >=
                (int)sizeof(subj_clear)) {
                fprintf(stderr, "smtp-catcher: EJ_CATCHER_SUBJECTS is too long\n");
                goto out;
        }
        if (ej_env_long("EJ_CATCHER_MAX", 500, 1, 100000, &max, &err) != EJ_OK) {
                fprintf(stderr, "smtp-catcher: %s\n", err.msg);
                goto out;
        }
        st.max = (size_t)max;
        st.ring = xcalloc(st.max, sizeof(st.ring[0]));

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        lfd = listen_on(addr, &port);
        if (lfd < 0) {
                fprintf(stderr, "smtp-catcher: cannot listen on %s: %s\n", addr, strerror(errno));
                goto out;
        }
        if (nats_url != NULL) {
                struct ej_bus_options opt = {
                    .url = nats_url, .name = "smtp-catcher", .connect_wait_ms = 5000};
                natsStatus s;

                if (ej_bus_connect(&st.bus, &opt, &err) != EJ_OK) {
                        fprintf(stderr, "smtp-catcher: %s\n", err.msg);
                        goto out;
                }
                s = natsConnection_Subscribe(&sub_list, ej_bus_conn(st.bus), subj_list, on_list,
                                             &st);
                if (s == NATS_OK)
                        s = natsConnection_Subscribe(&sub_clear, ej_bus_conn(st.bus), subj_clear,
                                                     on_clear, &st);
                if (s == NATS_OK)
                        s = natsConnection_Flush(ej_bus_conn(st.bus));
                if (s != NATS_OK) {
                        fprintf(stderr, "smtp-catcher: subscribe: %s\n", natsStatus_GetText(s));
                        goto out;
                }
        }
        printf("smtp-catcher: listening on 127.0.0.1:%d\n", port);
        fflush(stdout);

        while (!stop_flag) {
                struct pollfd pfd = {lfd, POLLIN, 0};
                struct conn *c;
                pthread_t t;
                int fd;

                if (poll(&pfd, 1, 500) <= 0)
                        continue;
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                c = xcalloc(1, sizeof(*c));
                c->fd = fd;
                c->st = &st;
                atomic_fetch_add(&st.conns, 1);
                if (pthread_create(&t, NULL, serve, c) != 0) {
                        atomic_fetch_sub(&st.conns, 1);
                        close(fd);
                        free(c);
                        continue;
                }
                pthread_detach(t);
        }
        rc = 0;
out:
        natsSubscription_Destroy(sub_list);
        natsSubscription_Destroy(sub_clear);
        ej_bus_destroy(st.bus, 1000);
        if (lfd >= 0)
                close(lfd);
        /* Free the store once no connection thread can touch it (a client still connected
         * after a second keeps it: the process ends anyway). */
        for (int i = 0; i < 100 && atomic_load(&st.conns) > 0; i++)
                poll(NULL, 0, 10);
        if (atomic_load(&st.conns) == 0) {
                for (size_t i = 0; i < st.n; i++)
                        caught_free(st.ring[i]);
                free(st.ring);
        }
        return rc;
}
