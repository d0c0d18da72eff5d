#include "health.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "db.h"
#include "ids.h"
#include "log.h"
#include "mem.h"
#include "str.h"

struct ej_health {
        struct MHD_Daemon *daemon;
        struct ej_metrics *metrics;
        bool (*ready)(void *ud);
        void *ud;
        int port;
        /* The last message libmicrohttpd logged, so a failed start can say why. */
        char last_log[256];
};

/* Routes libmicrohttpd's own messages into our log. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
        struct ej_health *h = cls;
        size_t n;

        (void)vsnprintf(h->last_log, sizeof(h->last_log), fmt, ap);
        n = strlen(h->last_log);
        while (n > 0 && (h->last_log[n - 1] == '\n' || h->last_log[n - 1] == '\r'))
                h->last_log[--n] = '\0';
        ej_warn(NULL, "health endpoint: %s", h->last_log);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
                             const char *content_type, const char *body, size_t n)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        /* The body is copied, so callers may pass stack or soon-freed memory. */
        resp = MHD_create_response_from_buffer(n, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
        if (resp == NULL)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        ret = MHD_queue_response(conn, code, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned int code, const char *body)
{
        return reply(conn, code, "application/json", body, strlen(body));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        struct ej_health *h = cls;
        struct ej_buf body = EJ_BUF_INIT;
        enum MHD_Result ret;

        (void)version;
        (void)upload_data;
        /* Queueing a response on the first call makes libmicrohttpd close the connection
         * instead of keeping it alive, so the first call only marks the request as seen. */
        if (*con_cls == NULL) {
                *con_cls = h;
                return MHD_YES;
        }
        if (*upload_data_size != 0) {
                /* No endpoint takes a body: drop it and answer once it has all arrived. */
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_json(
                    conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                    "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use GET\"}}");
        if (strcmp(url, "/healthz") == 0)
                return reply_json(conn, MHD_HTTP_OK, "{\"status\":\"ok\"}");
        if (strcmp(url, "/readyz") == 0) {
                if (h->ready == NULL || h->ready(h->ud))
                        return reply_json(conn, MHD_HTTP_OK, "{\"status\":\"ok\"}");
                return reply_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "{\"status\":\"unavailable\"}");
        }
        if (strcmp(url, "/metrics") == 0) {
                if (h->metrics != NULL)
                        ej_metrics_render(h->metrics, &body);
                ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                            body.p ? body.p : "", body.n);
                ej_buf_free(&body);
                return ret;
        }
        return reply_json(conn, MHD_HTTP_NOT_FOUND,
                          "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}");
}

/* Splits "host:port" or "[v6]:port" into its parts and resolves it to one socket address. */
static enum ej_status resolve(const char *addr, struct addrinfo **res, struct ej_err *err)
{
        char host[256];
        const char *colon = strrchr(addr, ':');
        const char *h = addr;
        size_t hn;
        struct addrinfo hints;
        int rc;

        if (colon == NULL || colon[1] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "health address \"%s\" is not host:port", addr);
        hn = (size_t)(colon - addr);
        if (hn >= 2 && addr[0] == '[' && addr[hn - 1] == ']') {
                h = addr + 1;
                hn -= 2;
        }
        if (hn >= sizeof(host))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "health address host is too long");
        memcpy(host, h, hn);
        host[hn] = '\0';

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        rc = getaddrinfo(hn ? host : NULL, colon + 1, &hints, res);
        if (rc != 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "health address \"%s\": %s", addr,
                                  gai_strerror(rc));
        return EJ_OK;
}

static uint16_t sockaddr_port(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
}

enum ej_status ej_health_start(struct ej_health **out, const char *addr, struct ej_metrics *metrics,
                               bool (*ready)(void *ud), void *ud, struct ej_err *err)
{
        struct ej_health *h = NULL;
        struct addrinfo *ai = NULL;
        const union MHD_DaemonInfo *info;
        unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
        enum ej_status st;

        *out = NULL;
        st = resolve(addr ? addr : "", &ai, err);
        if (st != EJ_OK)
                goto out;
        h = xcalloc(1, sizeof(*h));
        h->metrics = metrics;
        h->ready = ready;
        h->ud = ud;
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* The port is passed as well so that libmicrohttpd's messages name it. */
        h->daemon = MHD_start_daemon(
            flags, sockaddr_port(ai->ai_addr), NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_logger, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned int)30, MHD_OPTION_END);
        if (h->daemon == NULL) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL,
                                "health endpoint cannot listen on %s: %s", addr,
                                h->last_log[0] ? h->last_log : "libmicrohttpd failed to start");
                goto out;
        }
        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (info == NULL || info->port == 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                "health endpoint on %s: cannot read the bound port", addr);
                goto out;
        }
        h->port = info->port;
        *out = h;
        h = NULL;
out:
        ej_health_stop(h);
        if (ai != NULL)
                freeaddrinfo(ai);
        return st;
}

int ej_health_port(const struct ej_health *h)
{
        return h->port;
}

void ej_health_stop(struct ej_health *h)
{
        if (h == NULL)
                return;
        if (h->daemon != NULL)
                MHD_stop_daemon(h->daemon);
        free(h);
}

struct ej_db_probe {
        pthread_mutex_t mu;
        char *conninfo;
        char *schema;
        int cache_ms;
        struct ej_db *db; /* NULL until the first check connects */
        long long checked_ms;
        bool ok;
};

void ej_db_probe_create(struct ej_db_probe **out, const char *conninfo, const char *schema,
                        int cache_ms)
{
        struct ej_db_probe *p = xcalloc(1, sizeof(*p));

        pthread_mutex_init(&p->mu, NULL);
        p->conninfo = xstrdup(conninfo);
        p->schema = xstrdup(schema);
        p->cache_ms = cache_ms;
        p->checked_ms = -(long long)cache_ms - 1;
        *out = p;
}

bool ej_db_probe_ok(struct ej_db_probe *p)
{
        static const char sql_ping[] = "SELECT 1";
        long long now = ej_mono_ms();
        bool ok;

        pthread_mutex_lock(&p->mu);
        if (now - p->checked_ms >= p->cache_ms) {
                struct ej_err err;

                /* One attempt, no waiting: a server that refuses is not ready now. */
                if (p->db == NULL)
                        (void)ej_db_connect(&p->db, p->conninfo, p->schema, 0, &err);
                p->ok = p->db != NULL && ej_db_exec(p->db, sql_ping, 0, NULL, NULL, &err) == EJ_OK;
                if (!p->ok)
                        ej_warn(NULL, "readiness: the database does not answer: %s", err.msg);
                p->checked_ms = ej_mono_ms();
        }
        ok = p->ok;
        pthread_mutex_unlock(&p->mu);
        return ok;
}

void ej_db_probe_destroy(struct ej_db_probe *p)
{
        if (p == NULL)
                return;
        ej_db_destroy(p->db);
        pthread_mutex_destroy(&p->mu);
        free(p->conninfo);
        free(p->schema);
        free(p);
}
