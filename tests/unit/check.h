/*
 * check.h: the few lines every unit test binary shares.
 *
 * CHECK(cond) counts a pass or, when `cond` is false, a failure and prints file:line and the
 * expression to stderr; the test goes on either way. check_report() prints the final line
 * "N passed, N failed" and returns the exit status for main (0 only when nothing failed).
 * Meant for one test file per binary: the counters are static to that file. Not thread-safe:
 * call CHECK from the main thread only.
 */
#ifndef EJ_TEST_CHECK_H
#define EJ_TEST_CHECK_H

#include <stdio.h>

static int check_passed;
static int check_failed;

static inline void check_record(int ok, const char *file, int line, const char *expr)
{
        if (ok) {
                check_passed++;
                return;
        }
        check_failed++;
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
}

#define CHECK(cond) check_record((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

static inline int check_report(void)
{
        printf("%d passed, %d failed\n", check_passed, check_failed);
        return check_failed == 0 ? 0 : 1;
}

#endif
