#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "str.h"

/* Set once by ej_log_init before threads start; read-only afterwards. */
static char log_service[32] = "ej";
static enum ej_log_level log_min = EJ_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ej_log_init(const char *service, const char *level)
{
        snprintf(log_service, sizeof(log_service), "%s", service ? service : "ej");
        log_min = EJ_LOG_INFO;
        for (int i = 0; i < 4 && level; i++)
                if (strcmp(level, level_names[i]) == 0)
                        log_min = (enum ej_log_level)i;
}

int ej_log_enabled(enum ej_log_level lvl)
{
        return lvl >= log_min;
}

void ej_log(enum ej_log_level lvl, const char *rid, const char *fmt, ...)
{
        char msg[2048];
        char ts[40];
        struct timespec now;
        struct tm tm;
        struct ej_buf line = EJ_BUF_INIT;
        va_list ap;

        if (lvl < log_min)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        ej_buf_appendf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"svc\":", ts,
                       now.tv_nsec / 1000000, level_names[lvl]);
        ej_buf_append_json_str(&line, log_service, strlen(log_service));
        if (rid && rid[0]) {
                ej_buf_append_c(&line, ",\"rid\":");
                ej_buf_append_json_str(&line, rid, strlen(rid));
        }
        ej_buf_append_c(&line, ",\"msg\":");
        ej_buf_append_json_str(&line, msg, strlen(msg));
        ej_buf_append_c(&line, "}\n");
        /* One write per line keeps lines from different threads whole. */
        if (write(STDERR_FILENO, line.p, line.n) < 0) {
                /* Nowhere left to report a failing stderr. */
        }
        ej_buf_free(&line);
}
