/* tests/install/consumer/consumer.c - a program built against an installed
 * libharvbk: prints "harvbk <run-time version>" and fails when the headers it
 * was compiled with and the library it runs with disagree on the version. */
#include <harvbk.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    if (strcmp(harvbk_version(), HARVBK_VERSION_STRING) != 0 ||
        harvbk_version_number() != HARVBK_VERSION_NUMBER) {
        fprintf(stderr, "header %s, library %s\n", HARVBK_VERSION_STRING, harvbk_version());
        return 1;
    }
    /* one real call through the library: a context needs nothing but a path */
    if (strcmp(harvbk_strerror(HARVBK_E_NOTFOUND), "not found") != 0) {
        fprintf(stderr, "unexpected strerror\n");
        return 1;
    }
    printf("harvbk %s\n", harvbk_version());
    return 0;
}
