/*
 * fuzz.h: what every fuzz target under tests/fuzz shares.
 *
 * A target defines LLVMFuzzerTestOneInput. It is built twice: with libFuzzer (`make fuzz`,
 * clang -fsanitize=fuzzer,address,undefined), and with replay.c as a unit test binary
 * ($(BUILD)/tests/test_fuzz_<target>) that runs it over its committed seeds, so that every
 * target compiles and runs in the unit suite. A target reports a broken property with
 * FUZZ_CHECK, which aborts: libFuzzer saves the input, the replay counts a crash.
 */
#ifndef EJ_FUZZ_H
#define EJ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__,        \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#endif
