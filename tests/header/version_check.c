/*
 * tests/header/version_check.c - the version a program is compiled with is
 * the version it runs with: the header macros agree with each other, with
 * harvbk_version()/harvbk_version_number() of the loaded shared library, with
 * the project version in CMakeLists.txt and with the SONAME's major version.
 *
 * Built with -DHARVBK_EXPECT_VERSION="x.y.z" -DHARVBK_EXPECT_SOVERSION=n.
 */
#include <harvbk.h>

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

int main(void)
{
    char composed[64];

    snprintf(composed, sizeof composed, "%d.%d.%d", HARVBK_VERSION_MAJOR, HARVBK_VERSION_MINOR,
             HARVBK_VERSION_PATCH);
    printf("header %s (%d), library %s (%u), project %s, soversion %d\n",
           HARVBK_VERSION_STRING, HARVBK_VERSION_NUMBER, harvbk_version(),
           harvbk_version_number(), HARVBK_EXPECT_VERSION, HARVBK_EXPECT_SOVERSION);

    check(strcmp(composed, HARVBK_VERSION_STRING) == 0,
          "HARVBK_VERSION_STRING == MAJOR.MINOR.PATCH");
    check(HARVBK_VERSION_NUMBER ==
              HARVBK_VERSION_MAJOR * 10000 + HARVBK_VERSION_MINOR * 100 + HARVBK_VERSION_PATCH,
          "HARVBK_VERSION_NUMBER == MAJOR*10000 + MINOR*100 + PATCH");
    check(HARVBK_VERSION_MINOR < 100 && HARVBK_VERSION_PATCH < 100,
          "minor and patch fit the version number");
    check(harvbk_version() != NULL && strcmp(harvbk_version(), HARVBK_VERSION_STRING) == 0,
          "harvbk_version() == HARVBK_VERSION_STRING");
    check(harvbk_version_number() == (unsigned int)HARVBK_VERSION_NUMBER,
          "harvbk_version_number() == HARVBK_VERSION_NUMBER");
    check(strcmp(HARVBK_VERSION_STRING, HARVBK_EXPECT_VERSION) == 0,
          "header version == project(VERSION) in CMakeLists.txt");
    check(HARVBK_VERSION_MAJOR == HARVBK_EXPECT_SOVERSION,
          "major version == SOVERSION (libharvbk.so.MAJOR)");
    return failures ? 1 : 0;
}
