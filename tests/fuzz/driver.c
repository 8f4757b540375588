/*
 * tests/fuzz/driver.c - main() of a fuzz target built without libFuzzer: the
 * regression runner. Feeds LLVMFuzzerTestOneInput() every regular file named
 * on the command line or found (not recursively) in a directory named there,
 * in sorted order, and prints how many it ran (a path that does not exist
 * is skipped; no input at all is a failure). A target that crashes or fails
 * a check aborts, so the test fails naming the input (printed before it runs
 * when FUZZ_VERBOSE is set in the environment).
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path, bool verbose)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, FUZZ_MAX_INPUT, f);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "cannot read %s\n", path);
        free(buf);
        return -1;
    }
    if (verbose)
        fprintf(stderr, "running %s (%zu bytes)\n", path, n);
    /* an exact-size copy, so reads past the input are caught (ASan, valgrind) */
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        abort();
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    bool verbose = getenv("FUZZ_VERBOSE") != NULL;
    unsigned long ran = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (argv[i][0] == '-')
            continue; /* libFuzzer options: ignored here */
        if (stat(argv[i], &st) != 0) {
            if (errno == ENOENT) { /* e.g. no regression input for this target yet */
                printf("%s: absent, no inputs from there\n", argv[i]);
                continue;
            }
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i], verbose) == 0)
                ran++;
            else
                failed = 1;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                names = realloc(names, cap * sizeof *names);
                if (!names)
                    abort();
            }
            if (asprintf(&names[n++], "%s/%s", argv[i], de->d_name) < 0)
                abort();
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            if (stat(names[k], &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(names[k], verbose) == 0)
                    ran++;
                else
                    failed = 1;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("%s: %lu inputs run\n", argv[0], ran);
    if (ran == 0) {
        fprintf(stderr, "%s: no input found\n", argv[0]);
        return 1;
    }
    return failed;
}
