#include "harness.h"

#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"

#define TH_START_WAIT_MS 20000

extern char **environ;

void th_sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

struct ej_bus *th_bus_connect(const char *name)
{
        const char *url = getenv("EJ_TEST_NATS_URL");
        struct ej_bus_options opt = {.url = url, .name = name, .connect_wait_ms = 3000};
        struct ej_bus *bus = NULL;
        struct ej_err err;

        if (url == NULL || url[0] == '\0') {
                fprintf(stderr, "%s: EJ_TEST_NATS_URL is not set (tests/run-all.sh unit sets it)\n",
                        name);
                return NULL;
        }
        ej_err_clear(&err);
        if (ej_bus_connect(&bus, &opt, &err) != EJ_OK) {
                fprintf(stderr, "%s: %s\n", name, err.msg);
                return NULL;
        }
        return bus;
}

enum ej_status th_call(struct ej_bus *bus, struct ej_arena *arena, const char *subject,
                       const ProtobufCMessage *req, const struct th_caller *from,
                       const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                       ProtobufCMessage **resp, int *retry_after, struct ej_err *err)
{
        size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;
        uint8_t *data = xmalloc(len + 1);
        natsMsg *msg = NULL;
        natsMsg *reply = NULL;
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        enum ej_status st;
        natsStatus s;

        *resp = NULL;
        if (retry_after)
                *retry_after = 0;
        ej_err_clear(err);
        if (req)
                protobuf_c_message_pack(req, data);
        s = natsMsg_Create(&msg, subject, NULL, (const char *)data, (int)len);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(msg, EJ_HDR_REQUEST_ID, "test");
        if (s == NATS_OK && from && from->user_id)
                s = natsMsgHeader_Set(msg, EJ_HDR_USER_ID, from->user_id);
        if (s == NATS_OK && from && from->roles)
                s = natsMsgHeader_Set(msg, EJ_HDR_ROLES, from->roles);
        if (s == NATS_OK && from && from->client_addr)
                s = natsMsgHeader_Set(msg, EJ_HDR_CLIENT_ADDR, from->client_addr);
        if (s == NATS_OK)
                s = natsConnection_RequestMsg(&reply, ej_bus_conn(bus), msg, timeout_ms);
        if (s != NATS_OK) {
                st = ej_err_set(err, s == NATS_TIMEOUT ? EJ_ERR_TIMEOUT : EJ_ERR_UNAVAILABLE, NULL,
                                "%s: %s", subject, natsStatus_GetText(s));
                goto out;
        }
        st = ej_bus_reply_status(reply, err);
        if (retry_after) {
                const char *v = NULL;

                if (natsMsgHeader_Get(reply, EJ_HDR_RETRY_AFTER, &v) == NATS_OK && v)
                        *retry_after = atoi(v);
        }
        if (st == EJ_OK) {
                *resp = protobuf_c_message_unpack(resp_desc, &alloc,
                                                  (size_t)natsMsg_GetDataLength(reply),
                                                  (const uint8_t *)natsMsg_GetData(reply));
                if (*resp == NULL)
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "%s: the reply is not a %s",
                                        subject, resp_desc->name);
        }
out:
        natsMsg_Destroy(reply);
        natsMsg_Destroy(msg);
        free(data);
        return st;
}

/* Adds "K=V" to env (n entries so far), replacing an earlier entry for the same K. */
static void env_put(char **env, size_t *n, char *kv)
{
        size_t klen = strcspn(kv, "=");

        for (size_t i = 0; i < *n; i++) {
                if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=') {
                        env[i] = kv;
                        return;
                }
        }
        env[(*n)++] = kv;
}

pid_t th_service_start(const char *argv0, const char *name, const char *const *env,
                       bool (*answers)(void))
{
        struct ej_arena *a = ej_arena_create(0);
        char self[PATH_MAX];
        char var[64];
        char path[PATH_MAX + 64];
        char *argv[] = {path, NULL};
        const char *bin;
        const char *log = getenv("EJ_TEST_LOG");
        char **envp;
        size_t n_env = 0, n_extra = 0, k = 0;
        pid_t pid = -1;
        long long deadline;

        snprintf(var, sizeof(var), "EJ_%s_BIN", name);
        for (char *c = var; *c; c++)
                if (*c >= 'a' && *c <= 'z')
                        *c = (char)(*c - 'a' + 'A');
        bin = getenv(var);
        snprintf(self, sizeof(self), "%s", argv0);
        if (bin && bin[0])
                snprintf(path, sizeof(path), "%s", bin);
        else
                snprintf(path, sizeof(path), "%s/../bin/ej-%s", dirname(self), name);
        while (environ[n_env])
                n_env++;
        while (env && env[n_extra])
                n_extra++;
        envp = xcalloc(n_env + n_extra + 8, sizeof(*envp));
        for (size_t i = 0; i < n_env; i++)
                if (strncmp(environ[i], "EJ_", 3) != 0)
                        envp[k++] = environ[i];
        env_put(envp, &k, ej_arena_printf(a, "EJ_NATS_URL=%s", getenv("EJ_TEST_NATS_URL")));
        env_put(envp, &k, ej_arena_printf(a, "EJ_DB_URL=%s", getenv("EJ_TEST_DB_URL")));
        env_put(envp, &k, ej_arena_printf(a, "EJ_LOG_LEVEL=%s", log && log[0] ? log : "error"));
        env_put(envp, &k, ej_arena_printf(a, "EJ_WORKERS=2"));
        for (size_t i = 0; i < n_extra; i++)
                env_put(envp, &k, ej_arena_strdup(a, env[i]));
        if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0) {
                fprintf(stderr, "harness: cannot start %s\n", path);
                pid = -1;
        }
        free(envp);
        ej_arena_destroy(a);
        deadline = ej_mono_ms() + TH_START_WAIT_MS;
        while (pid > 0 && !answers()) {
                if (ej_mono_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
                        fprintf(stderr, "harness: %s did not come up\n", path);
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        return -1;
                }
                th_sleep_ms(100);
        }
        return pid;
}

bool th_service_stop(pid_t pid, long wait_ms, long long *took_ms)
{
        long long t0 = ej_mono_ms();
        int status = 0;
        pid_t r = 0;

        if (took_ms)
                *took_ms = 0;
        if (pid <= 0)
                return true;
        kill(pid, SIGTERM);
        while ((r = waitpid(pid, &status, WNOHANG)) == 0 && ej_mono_ms() - t0 < wait_ms)
                th_sleep_ms(20);
        if (took_ms)
                *took_ms = ej_mono_ms() - t0;
        if (r != pid) {
                fprintf(stderr, "harness: pid %ld did not stop within %ld ms; killed\n", (long)pid,
                        wait_ms);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                return false;
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void th_run_tag(char *out, size_t size)
{
        char rnd[16];

        ej_random_token(rnd, sizeof(rnd), 6);
        for (char *p = rnd; *p; p++)
                if (*p == '-' || *p == '_')
                        *p = 'x';
        snprintf(out, size, "%ld%s", (long)getpid(), rnd);
}

int th_free_port(void)
{
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int port = -1;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
                port = ntohs(a.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}
