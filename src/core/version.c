/* core/version.c - run-time version of the library. */
#include "hb.h"

const char *harvbk_version(void)
{
    return HARVBK_VERSION_STRING;
}

unsigned int harvbk_version_number(void)
{
    return HARVBK_VERSION_NUMBER;
}
