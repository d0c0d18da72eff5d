/* Unit tests for status.c: status names both ways and the error detail helpers. */
#include <string.h>

#include "check.h"
#include "status.h"

static void test_names(void)
{
        CHECK(strcmp(ej_status_name(EJ_OK), "ok") == 0);
        CHECK(strcmp(ej_status_name(EJ_ERR_INVALID), "invalid_argument") == 0);
        CHECK(strcmp(ej_status_name(EJ_ERR_NOT_FOUND), "not_found") == 0);
        CHECK(strcmp(ej_status_name(EJ_ERR_UNAVAILABLE), "unavailable") == 0);
        CHECK(strcmp(ej_status_name(EJ_ERR_TOO_MANY), "too_many_requests") == 0);
        CHECK(strcmp(ej_status_name(EJ_STATUS_COUNT), "internal") == 0);
        CHECK(strcmp(ej_status_name((enum ej_status) - 1), "internal") == 0);

        /* Every status has a distinct name that maps back to it. */
        for (int i = 0; i < EJ_STATUS_COUNT; i++) {
                const char *name = ej_status_name((enum ej_status)i);

                CHECK(name != NULL && name[0] != '\0');
                CHECK(ej_status_from_name(name) == (enum ej_status)i);
                for (int j = 0; j < i; j++)
                        CHECK(strcmp(name, ej_status_name((enum ej_status)j)) != 0);
        }
        CHECK(ej_status_from_name("no_such_status") == EJ_ERR_INTERNAL);
        CHECK(ej_status_from_name("") == EJ_ERR_INTERNAL);
        CHECK(ej_status_from_name(NULL) == EJ_ERR_INTERNAL);
}

static void test_err_set(void)
{
        struct ej_err err;
        char long_text[600];

        ej_err_clear(&err);
        CHECK(err.status == EJ_OK && err.field[0] == '\0' && err.msg[0] == '\0');

        CHECK(ej_err_set(&err, EJ_ERR_NOT_FOUND, "email", "no user with id %d", 42) ==
              EJ_ERR_NOT_FOUND);
        CHECK(err.status == EJ_ERR_NOT_FOUND);
        CHECK(strcmp(err.field, "email") == 0);
        CHECK(strcmp(err.msg, "no user with id 42") == 0);

        CHECK(ej_err_set(&err, EJ_ERR_CONFLICT, NULL, "taken") == EJ_ERR_CONFLICT);
        CHECK(err.field[0] == '\0');

        /* A NULL err is allowed and the status still comes back. */
        CHECK(ej_err_set(NULL, EJ_ERR_TIMEOUT, "x", "late") == EJ_ERR_TIMEOUT);

        /* Over-long texts are cut, never overflow, and stay terminated. */
        memset(long_text, 'a', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        ej_err_set(&err, EJ_ERR_INVALID, long_text, "%s", long_text);
        CHECK(strlen(err.field) == sizeof(err.field) - 1);
        CHECK(strlen(err.msg) == sizeof(err.msg) - 1);

        ej_err_clear(&err);
        CHECK(err.status == EJ_OK && err.field[0] == '\0' && err.msg[0] == '\0');
        ej_err_clear(NULL);
}

static void test_err_prefix(void)
{
        struct ej_err err;
        char long_text[600];

        ej_err_set(&err, EJ_ERR_UNAVAILABLE, "db", "connection refused");
        ej_err_prefix(&err, "users store");
        CHECK(strcmp(err.msg, "users store: connection refused") == 0);
        CHECK(err.status == EJ_ERR_UNAVAILABLE);
        CHECK(strcmp(err.field, "db") == 0);

        ej_err_prefix(&err, "register");
        CHECK(strcmp(err.msg, "register: users store: connection refused") == 0);

        ej_err_prefix(&err, NULL);
        CHECK(strcmp(err.msg, "register: users store: connection refused") == 0);
        ej_err_prefix(NULL, "ignored");

        /* A long prefix and a long message are both cut to fit. */
        memset(long_text, 'b', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        ej_err_set(&err, EJ_ERR_INTERNAL, NULL, "%s", long_text);
        ej_err_prefix(&err, "ctx");
        CHECK(strncmp(err.msg, "ctx: bbb", 8) == 0);
        CHECK(strlen(err.msg) == sizeof(err.msg) - 1);
        ej_err_prefix(&err, long_text);
        CHECK(strlen(err.msg) == sizeof(err.msg) - 1);
        CHECK(err.msg[0] == 'b');
}

static void test_log_only(void)
{
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(!err.log_only);
        ej_err_set(&err, EJ_ERR_INVALID, "users_email_key",
                   "database 22008: interval out of range");
        ej_err_mark_log_only(&err);
        CHECK(err.log_only);
        /* Context added by a layer above keeps the mark; its own sentence clears it. */
        ej_err_prefix(&err, "listing");
        CHECK(err.log_only);
        ej_err_set(&err, EJ_ERR_CONFLICT, "email", "this e-mail address is taken");
        CHECK(!err.log_only);
        ej_err_mark_log_only(&err);
        ej_err_clear(&err);
        CHECK(!err.log_only);
        ej_err_mark_log_only(NULL);

        /* Each status has a sentence for people, stable and free of the database's words. */
        for (int st = 0; st <= EJ_STATUS_COUNT; st++) {
                const char *m = ej_status_public_message((enum ej_status)st);

                CHECK(m != NULL && m[0] != '\0');
                CHECK(strstr(m, "database") == NULL && strstr(m, "SQL") == NULL);
        }
        CHECK(strcmp(ej_status_public_message(EJ_STATUS_COUNT),
                     ej_status_public_message(EJ_ERR_INTERNAL)) == 0);
        CHECK(strcmp(ej_status_public_message(EJ_ERR_INVALID),
                     ej_status_public_message(EJ_ERR_INTERNAL)) != 0);
}

int main(void)
{
        test_log_only();
        test_names();
        test_err_set();
        test_err_prefix();
        return check_report();
}
