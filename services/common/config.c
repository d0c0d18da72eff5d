#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ej_env_str(const char *name, const char *def)
{
        const char *v = getenv(name);

        return (v && v[0]) ? v : def;
}

enum ej_status ej_env_long(const char *name, long def, long min, long max, long *out,
                           struct ej_err *err)
{
        const char *v = getenv(name);
        char *end = NULL;
        long n;

        if (v == NULL || v[0] == '\0') {
                *out = def;
                return EJ_OK;
        }
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0')
                return ej_err_set(err, EJ_ERR_INVALID, name, "%s=%s is not a whole number", name,
                                  v);
        if (n < min || n > max)
                return ej_err_set(err, EJ_ERR_INVALID, name, "%s=%ld is outside %ld..%ld", name, n,
                                  min, max);
        *out = n;
        return EJ_OK;
}

enum ej_status ej_env_bool(const char *name, bool def, bool *out, struct ej_err *err)
{
        static const char *const yes[] = {"1", "true", "yes", "on"};
        static const char *const no[] = {"0", "false", "no", "off"};
        const char *v = getenv(name);

        if (v == NULL || v[0] == '\0') {
                *out = def;
                return EJ_OK;
        }
        for (int i = 0; i < 4; i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *out = true;
                        return EJ_OK;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *out = false;
                        return EJ_OK;
                }
        }
        return ej_err_set(err, EJ_ERR_INVALID, name, "%s=%s is not a boolean (true/false)", name,
                          v);
}
