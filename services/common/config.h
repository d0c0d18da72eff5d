/*
 * config.h: reading settings from environment variables.
 *
 * Each binary keeps its settings in one const struct filled once in main() with these helpers;
 * nothing reads the environment after start-up. A bad value is a start-up failure: the helpers
 * return a status and say which variable and why in `err`. Not thread-safe (getenv): call them
 * before starting threads.
 */
#ifndef EJ_CONFIG_H
#define EJ_CONFIG_H

#include <stdbool.h>

#include "status.h"

/* The variable's value, or `def` when it is unset or empty. The pointer lives as long as the
 * environment (the process). */
const char *ej_env_str(const char *name, const char *def);

/* Parses the variable as a decimal integer in [min, max]; unset or empty gives `def`. */
enum ej_status ej_env_long(const char *name, long def, long min, long max, long *out,
                           struct ej_err *err);

/* Parses the variable as a boolean (1/0, true/false, yes/no, on/off); unset gives `def`. */
enum ej_status ej_env_bool(const char *name, bool def, bool *out, struct ej_err *err);

#endif
