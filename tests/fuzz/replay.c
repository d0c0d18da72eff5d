/*
 * replay.c: runs a fuzz target over its committed seeds, as a unit test (see fuzz.h).
 *
 * Usage: test_fuzz_<target> [dir...]; without arguments the directory is tests/fuzz/<target>
 * (the program's name tells the target), relative to the repository root where the unit suite
 * runs.
 * Every regular file is one input. A broken property aborts (the suite counts a crash); a
 * directory with no file is a failure. Ends with "N passed, N failed".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Runs the target on the file at `path`; false when it cannot be read. */
static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *data;
        long n;

        if (f == NULL)
                return 0;
        if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
                fclose(f);
                return 0;
        }
        /* A copy of exactly n bytes, as libFuzzer gives it (reads past it are caught by ASan). */
        data = malloc(n > 0 ? (size_t)n : 1);
        if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) {
                free(data);
                fclose(f);
                return 0;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        free(data);
        return 1;
}

int main(int argc, char **argv)
{
        const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        char own[512];
        const char *fallback[] = {own};
        const char *const *dirs = argc > 1 ? (const char *const *)(argv + 1) : fallback;
        int n_dirs = argc > 1 ? argc - 1 : 1;
        int passed = 0, failed = 0;

        if (strncmp(base, "test_fuzz_", 10) == 0)
                base += 10;
        snprintf(own, sizeof(own), "tests/fuzz/%s", base);

        for (int i = 0; i < n_dirs; i++) {
                DIR *d = opendir(dirs[i]);
                struct dirent *e;
                int files = 0;

                if (d == NULL) {
                        fprintf(stderr, "%s: cannot open\n", dirs[i]);
                        failed++;
                        continue;
                }
                while ((e = readdir(d)) != NULL) {
                        char path[4096];
                        struct stat st;

                        snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
                        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                                continue;
                        files++;
                        if (replay_file(path)) {
                                passed++;
                        } else {
                                fprintf(stderr, "%s: cannot read\n", path);
                                failed++;
                        }
                }
                closedir(d);
                if (files == 0) {
                        fprintf(stderr, "%s: no seed\n", dirs[i]);
                        failed++;
                }
        }
        printf("%d passed, %d failed\n", passed, failed);
        return failed == 0 ? 0 : 1;
}
