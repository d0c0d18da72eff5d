/* Unit tests for gateway/conns.c: the connection limit from the file-descriptor limit, and the
 * header deadline on a real libmicrohttpd daemon: a head trickled a line at a time is cut off
 * at its deadline with a 408, while a connection whose head arrived is left alone. */
#include "../../gateway/conns.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include "check.h"

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        static const char ok[] = "ok";
        struct MHD_Response *r;
        enum MHD_Result ret;

        (void)cls;
        (void)url;
        (void)method;
        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        if (*con_cls == NULL) {
                *con_cls = conn;
                gw_conns_head_done(conn);
                return MHD_YES;
        }
        r = MHD_create_response_from_buffer(2, (void *)(uintptr_t)ok, MHD_RESPMEM_PERSISTENT);
        ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
        (void)toe;
        *con_cls = NULL;
        gw_conns_rearm(cls, conn);
}

static int dial(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Reads what arrives within `ms`; true when the peer closed. */
static bool read_for(int fd, long ms, char *buf, size_t cap)
{
        long long until = ej_mono_ms() + ms;
        size_t n = 0;

        buf[0] = '\0';
        while (ej_mono_ms() < until) {
                struct pollfd p = {fd, POLLIN, 0};
                ssize_t k;

                if (poll(&p, 1, 20) <= 0)
                        continue;
                k = recv(fd, buf + n, cap - 1 - n, 0);
                if (k <= 0)
                        return true;
                n += (size_t)k;
                buf[n] = '\0';
        }
        return false;
}

static void test_deadline(void)
{
        struct gw_conns *c = NULL;
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *di;
        char buf[1024];
        int slow, fast, port;
        long long t0;

        CHECK(gw_conns_create(&c, 400, NULL, NULL) == EJ_OK);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, answer,
                             NULL, MHD_OPTION_NOTIFY_CONNECTION, gw_conns_notify, c,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, c,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
        CHECK(d != NULL);
        if (d == NULL)
                return;
        di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        port = di->port;

        /* One header line every 150 ms: the idle timeout (60 s) would never fire. */
        slow = dial(port);
        fast = dial(port);
        CHECK(slow >= 0 && fast >= 0);
        t0 = ej_mono_ms();
        CHECK(send(slow, "GET / HTTP/1.1\r\n", 16, 0) == 16);
        CHECK(send(fast, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27, 0) == 27);
        CHECK(!read_for(fast, 100, buf, sizeof(buf)));
        CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        /* A request sent in time on a kept-alive connection is served. */
        CHECK(send(fast, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27, 0) == 27);
        CHECK(!read_for(fast, 100, buf, sizeof(buf)));
        CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        for (int i = 0; i < 20; i++) {
                if (send(slow, "X-A: b\r\n", 8, MSG_NOSIGNAL) != 8)
                        break;
                if (read_for(slow, 150, buf, sizeof(buf)))
                        break;
        }
        CHECK(strncmp(buf, "HTTP/1.1 408", 12) == 0);
        CHECK(strstr(buf, "\"request_timeout\"") != NULL);
        CHECK(ej_mono_ms() - t0 < 1500); /* 400 ms, a sweep period and scheduling */
        CHECK(ej_mono_ms() - t0 >= 390);

        /* The answered connection was due again 400 ms after its answer: an idle keep-alive
         * connection is closed too. */
        CHECK(read_for(fast, 1500, buf, sizeof(buf)));
        close(slow);
        close(fast);
        /* Each entry goes with libmicrohttpd's CLOSED notification. */
        for (int i = 0; i < 100 && gw_conns_count(c) != 0; i++)
                usleep(10000);
        CHECK(gw_conns_count(c) == 0);
        MHD_stop_daemon(d);
        gw_conns_destroy(c);
}

static void test_limit(void)
{
        struct rlimit rl;

        CHECK(gw_conns_limit(123) == 123);
        CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max >= 2048) {
                struct rlimit low = {1024, rl.rlim_max};
                rlim_t hard = rl.rlim_max > 1000000 ? 1000000 : rl.rlim_max;

                /* The soft limit is raised to the hard one before it is used. */
                CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
                CHECK(gw_conns_limit(0) == (unsigned)(hard - hard / 10));
                CHECK(getrlimit(RLIMIT_NOFILE, &low) == 0);
                CHECK(low.rlim_cur == rl.rlim_max);
        }
        rl.rlim_cur = rl.rlim_max = 500;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
        CHECK(gw_conns_limit(0) == 500 - 64); /* at least 64 kept back */
}

int main(void)
{
        test_deadline();
        test_limit();
        return check_report();
}
