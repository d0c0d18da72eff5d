/*
 * main.c: the gateway process: settings from the environment, wiring, waiting for a signal and
 * a clean stop. No request logic lives here.
 */
#include "gateway.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "conns.h"
#include "health.h"
#include "http.h"
#include "ids.h"
#include "log.h"
#include "openapi.h"
#include "session.h"
#include "static.h"
#include "stream_core.h"
#include "stream_upload.h"
#include "upstream.h"

/* Upload chunks and window: measured (stream_upload.h). */
#define UPLOAD_CHUNK_DEFAULT  (64L << 10)
#define UPLOAD_CHUNK_MAX      (4L << 20)
#define UPLOAD_WINDOW_DEFAULT 8
#define UPLOAD_WINDOW_MAX     64

static enum ej_status load_config(struct gw_config *c, struct ej_err *err)
{
        long v;
        enum ej_status st;

        c->http_addr = ej_env_str("EJ_HTTP_ADDR", "127.0.0.1:8080");
        c->nats_url = ej_env_str("EJ_NATS_URL", "nats://127.0.0.1:4222");
        c->site_name = ej_env_str("EJ_SITE_NAME", "EasyJournal Demo Journal");
        c->web_root = ej_env_str("EJ_WEB_ROOT", "gateway/web");
        if ((st = ej_env_long("EJ_HTTP_THREADS", 2, 1, 64, &v, err)) != EJ_OK)
                return st;
        c->http_threads = (int)v;
        if ((st = ej_env_long("EJ_NATS_CONNECT_WAIT_MS", 5000, 0, 600000, &v, err)) != EJ_OK)
                return st;
        c->nats_connect_wait_ms = (int)v;
        if ((st = ej_env_bool("EJ_NATS_SEND_ASAP", false, &c->nats_send_asap, err)) != EJ_OK)
                return st;
        if ((st = ej_env_long("EJ_REQUEST_TIMEOUT_MS", 5000, 10, 600000, &v, err)) != EJ_OK)
                return st;
        c->request_timeout_ms = (int)v;
        if ((st = ej_env_long("EJ_BODY_LIMIT", 1048576, 0, 1L << 30, &v, err)) != EJ_OK)
                return st;
        c->body_limit = (size_t)v;
        if ((st = ej_env_bool("EJ_COOKIE_SECURE", false, &c->cookie_secure, err)) != EJ_OK)
                return st;
        /* The __Host- prefix makes browsers insist on Secure, Path=/ and no Domain. */
        c->cookie_name = c->cookie_secure ? "__Host-ej_session" : "ej_session";
        if ((st = ej_env_long("EJ_SESSION_CACHE_MS", 30000, 0, 86400000, &v, err)) != EJ_OK)
                return st;
        c->session_cache_ms = (int)v;
        if ((st = ej_env_long("EJ_SESSION_CACHE_SIZE", 100000, 1, 10000000, &v, err)) != EJ_OK)
                return st;
        c->session_cache_size = (size_t)v;
        if ((st = ej_env_bool("EJ_ACCESS_LOG", true, &c->access_log, err)) != EJ_OK)
                return st;
        c->trusted_proxies = ej_env_str("EJ_TRUSTED_PROXIES", "");
        if ((st = ej_env_bool("EJ_DEV_MAIL", false, &c->dev_mail, err)) != EJ_OK)
                return st;
        if ((st = ej_env_long("EJ_FILES_UPLOAD_CHUNK", UPLOAD_CHUNK_DEFAULT, 0, UPLOAD_CHUNK_MAX,
                              &v, err)) != EJ_OK)
                return st;
        c->upload_chunk = (uint32_t)v;
        if ((st = ej_env_long("EJ_FILES_UPLOAD_WINDOW", UPLOAD_WINDOW_DEFAULT, 0, UPLOAD_WINDOW_MAX,
                              &v, err)) != EJ_OK)
                return st;
        c->upload_window = (uint32_t)v;
        if ((st = ej_env_long("EJ_FILES_UPLOAD_ACK_MS", 1000, 100, 600000, &v, err)) != EJ_OK)
                return st;
        c->upload_ack_ms = (int)v;
        c->admin_addr = ej_env_str("EJ_ADMIN_ADDR", "127.0.0.1:0");
        if ((st = ej_env_long("EJ_HTTP_MAX_CONNECTIONS", 0, 0, 1000000, &v, err)) != EJ_OK)
                return st;
        c->max_connections = (int)v;
        if ((st = ej_env_long("EJ_HTTP_PER_IP_CONNECTIONS", 256, 0, 1000000, &v, err)) != EJ_OK)
                return st;
        c->per_ip_connections = (int)v;
        if ((st = ej_env_long("EJ_HTTP_HEAD_TIMEOUT_MS", 10000, 100, 600000, &v, err)) != EJ_OK)
                return st;
        c->head_timeout_ms = v;
        return EJ_OK;
}

static double gauge_pending(void *ud)
{
        struct gw *gw = ud;

        return gw->up ? (double)gw_upstream_pending(gw->up) : 0.0;
}

static double gauge_connected(void *ud)
{
        struct gw *gw = ud;

        return ej_bus_connected(gw->bus) ? 1.0 : 0.0;
}

static double gauge_connections(void *ud)
{
        struct gw *gw = ud;

        return gw->conns ? (double)gw_conns_count(gw->conns) : 0.0;
}

/* The admin listener's readiness: the same rule as the public /readyz. */
static bool admin_ready(void *ud)
{
        struct gw *gw = ud;

        return ej_bus_connected(gw->bus);
}

/* "host:0" (the default) means no admin listener, as for the services. */
static bool admin_wanted(const char *addr)
{
        const char *colon = strrchr(addr, ':');
        const char *port = colon ? colon + 1 : addr;

        return port[0] != '\0' && strcmp(port, "0") != 0;
}

static double gauge_sessions(void *ud)
{
        struct gw *gw = ud;

        return (double)gw_sessions_count(gw->sessions);
}

/* Broadcasts sent while NATS was away (revocations, role changes) were missed: nothing cached
 * before the outage can be trusted. */
static void forget_sessions(void *ud)
{
        gw_sessions_evict_user(ud, "*");
}

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

/* Stops accepting, lets requests in flight finish within their deadline, fails the rest. */
static void stop_gracefully(struct gw *gw)
{
        long long give_up = ej_mono_ms() + gw->cfg->request_timeout_ms + 1000;

        atomic_store(&gw->stopping, true);
        gw_http_quiesce(gw);
        while (gw->up && gw_upstream_pending(gw->up) > 0 && ej_mono_ms() < give_up)
                sleep_ms(10);
        if (gw->up)
                gw_upstream_fail_all(gw->up, "the gateway is shutting down");
        gw_streams_fail_all(gw->streams);
        /* Let the resumed connections write their answers. */
        sleep_ms(100);
        gw_http_stop(gw);
}

int main(void)
{
        struct gw_config cfg = {0};
        struct gw gw = {0};
        struct ej_err err = {0};
        struct ej_bus_options bo = {0};
        sigset_t sigs;
        int sig = 0;
        int rc = 1;

        ej_log_init("gateway", ej_env_str("EJ_LOG_LEVEL", "info"));
        /* Each route names its operation; its subject and message types come from the
         * service descriptors, before any thread reads the table. */
        if (gw_routes_resolve(&err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: cannot start: %s\n", err.msg);
                return 1;
        }
        if (load_config(&cfg, &err) != EJ_OK || ej_ids_init(&err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                return 1;
        }
        /* Signals are taken by sigwait below; every thread started after this inherits the
         * mask. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);

        gw.cfg = &cfg;
        atomic_init(&gw.stopping, false);
        {
                /* After the route table is final: the description is built from it. */
                char title[160];
                struct gw_openapi_opts oo = {
                    .title = title, .cookie_name = cfg.cookie_name, .dev_mail = cfg.dev_mail};

                snprintf(title, sizeof(title), "%s API", cfg.site_name);
                if (gw_openapi_create(&gw.api, gw_routes, gw_routes_count, &oo, &err) != EJ_OK) {
                        fprintf(stderr, "ej-gateway: %s\n", err.msg);
                        return 1;
                }
                /* Building it took a JSON tree some ten times the document's size, freed now:
                 * give those pages back, or they stay resident for the process's life (the
                 * request threads allocate from arenas of their own and never reuse them). */
                malloc_trim(0);
        }
        bo.url = cfg.nats_url;
        bo.name = "ej-gateway";
        bo.connect_wait_ms = cfg.nats_connect_wait_ms;
        bo.send_asap = cfg.nats_send_asap;
        gw.sessions = gw_sessions_create(cfg.session_cache_size, cfg.session_cache_ms);
        bo.on_reconnect = forget_sessions;
        bo.on_reconnect_ud = gw.sessions;
        if (ej_bus_connect(&gw.bus, &bo, &err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                goto out;
        }
        gw.metrics = ej_metrics_create();
        gw.web = gw_static_open(cfg.web_root);
        if (gw_sessions_subscribe(gw.sessions, ej_bus_conn(gw.bus), &err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                goto out;
        }
        if (gw_upstream_create(&gw.up, &gw, &err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                goto out;
        }
        if (gw_streams_create(&gw.streams, &gw, gw_upload_orphan, &err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                goto out;
        }
        ej_metrics_gauge_fn(gw.metrics, "gateway_pending_requests",
                            "Requests waiting for a service's reply.", gauge_pending, &gw);
        ej_metrics_gauge_fn(gw.metrics, "gateway_nats_connected",
                            "1 while the gateway is connected to NATS.", gauge_connected, &gw);
        ej_metrics_gauge_fn(gw.metrics, "gateway_session_cache_entries",
                            "Sessions held in the gateway's cache.", gauge_sessions, &gw);
        ej_metrics_gauge_fn(gw.metrics, "gateway_http_connections", "Open HTTP connections.",
                            gauge_connections, &gw);
        if (gw_http_start(&gw, &err) != EJ_OK) {
                fprintf(stderr, "ej-gateway: %s\n", err.msg);
                goto out;
        }
        /* /metrics is for the operator: never on the public listener. */
        if (admin_wanted(cfg.admin_addr)) {
                if (ej_health_start(&gw.admin, cfg.admin_addr, gw.metrics, admin_ready, &gw,
                                    &err) != EJ_OK) {
                        fprintf(stderr, "ej-gateway: EJ_ADMIN_ADDR: %s\n", err.msg);
                        goto out;
                }
                ej_info(NULL, "admin endpoint (/metrics, /healthz, /readyz) on port %d",
                        ej_health_port(gw.admin));
        }
        ej_info(NULL, "listening on %s (port %d), %d HTTP threads, NATS %s", cfg.http_addr,
                gw_http_port(&gw), cfg.http_threads, cfg.nats_url);

        if (sigwait(&sigs, &sig) != 0)
                sig = SIGTERM;
        ej_info(NULL, "signal %d: stopping", sig);
        stop_gracefully(&gw);
        rc = 0;
out:
        ej_health_stop(gw.admin);
        gw_http_stop(&gw);
        gw_upstream_destroy(gw.up);
        gw_streams_destroy(gw.streams);
        gw_sessions_unsubscribe(gw.sessions);
        ej_bus_destroy(gw.bus, 2000);
        gw_sessions_destroy(gw.sessions);
        gw_static_close(gw.web);
        gw_openapi_destroy(gw.api);
        ej_metrics_destroy(gw.metrics);
        if (rc == 0)
                ej_info(NULL, "stopped");
        return rc;
}
