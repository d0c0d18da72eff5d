/* Unit tests for config.c: settings read from environment variables. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

#define VAR "EJ_TEST_SETTING"

static void test_str(void)
{
        unsetenv(VAR);
        CHECK(strcmp(ej_env_str(VAR, "fallback"), "fallback") == 0);
        CHECK(ej_env_str(VAR, NULL) == NULL);
        setenv(VAR, "", 1);
        CHECK(strcmp(ej_env_str(VAR, "fallback"), "fallback") == 0);
        setenv(VAR, "nats://127.0.0.1:4222", 1);
        CHECK(strcmp(ej_env_str(VAR, "fallback"), "nats://127.0.0.1:4222") == 0);
}

/* Sets VAR to `value` (NULL unsets it) and parses it as a long in [min, max] with default 7. */
static enum ej_status parse_long(const char *value, long min, long max, long *out,
                                 struct ej_err *err)
{
        if (value == NULL)
                unsetenv(VAR);
        else
                setenv(VAR, value, 1);
        *out = -12345;
        ej_err_clear(err);
        return ej_env_long(VAR, 7, min, max, out, err);
}

static void test_long(void)
{
        struct ej_err err;
        long v;

        CHECK(parse_long(NULL, 0, 100, &v, &err) == EJ_OK && v == 7);
        CHECK(parse_long("", 0, 100, &v, &err) == EJ_OK && v == 7);
        CHECK(parse_long("42", 0, 100, &v, &err) == EJ_OK && v == 42);
        CHECK(parse_long("0", 0, 100, &v, &err) == EJ_OK && v == 0);
        CHECK(parse_long("100", 0, 100, &v, &err) == EJ_OK && v == 100);
        CHECK(parse_long("-5", -10, 10, &v, &err) == EJ_OK && v == -5);
        CHECK(parse_long("+8", 0, 10, &v, &err) == EJ_OK && v == 8);

        /* Not a number, or a number with trailing text. */
        CHECK(parse_long("abc", 0, 100, &v, &err) == EJ_ERR_INVALID);
        CHECK(err.status == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, VAR) == 0);
        CHECK(strstr(err.msg, VAR) != NULL && strstr(err.msg, "abc") != NULL);
        CHECK(v == -12345);
        CHECK(parse_long("12x", 0, 100, &v, &err) == EJ_ERR_INVALID && v == -12345);
        CHECK(parse_long("1.5", 0, 100, &v, &err) == EJ_ERR_INVALID);
        CHECK(parse_long("-", 0, 100, &v, &err) == EJ_ERR_INVALID);
        CHECK(parse_long("99999999999999999999999", 0, 100, &v, &err) == EJ_ERR_INVALID);

        /* Out of range on either side. */
        CHECK(parse_long("101", 0, 100, &v, &err) == EJ_ERR_INVALID && v == -12345);
        CHECK(strstr(err.msg, "101") != NULL);
        CHECK(parse_long("-1", 0, 100, &v, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, VAR) == 0);

        /* err may be NULL. */
        setenv(VAR, "oops", 1);
        CHECK(ej_env_long(VAR, 1, 0, 10, &v, NULL) == EJ_ERR_INVALID);
}

/* Sets VAR to `value` (NULL unsets it) and parses it as a boolean with default `def`. */
static enum ej_status parse_bool(const char *value, bool def, bool *out, struct ej_err *err)
{
        if (value == NULL)
                unsetenv(VAR);
        else
                setenv(VAR, value, 1);
        *out = !def;
        ej_err_clear(err);
        return ej_env_bool(VAR, def, out, err);
}

static void test_bool(void)
{
        static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
        static const char *const no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
        static const char *const bad[] = {"2", "maybe", "tru", "yess", " true", "-1"};
        struct ej_err err;
        bool b;

        CHECK(parse_bool(NULL, true, &b, &err) == EJ_OK && b == true);
        CHECK(parse_bool(NULL, false, &b, &err) == EJ_OK && b == false);
        CHECK(parse_bool("", true, &b, &err) == EJ_OK && b == true);
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                CHECK(parse_bool(yes[i], false, &b, &err) == EJ_OK && b == true);
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
                CHECK(parse_bool(no[i], true, &b, &err) == EJ_OK && b == false);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK(parse_bool(bad[i], true, &b, &err) == EJ_ERR_INVALID);
                CHECK(strcmp(err.field, VAR) == 0 && strstr(err.msg, VAR) != NULL);
        }
        setenv(VAR, "perhaps", 1);
        CHECK(ej_env_bool(VAR, true, &b, NULL) == EJ_ERR_INVALID);
}

int main(void)
{
        test_str();
        test_long();
        test_bool();
        unsetenv(VAR);
        return check_report();
}
