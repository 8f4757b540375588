/* core/names.c - DNS-1123 label names for namespaces, VMs, volumes. */
#include "hb.h"

#include <string.h>

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool hb_name_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum_lower(s[i]) && s[i] != '-')
            return false;
    return is_alnum_lower(s[0]) && is_alnum_lower(s[n - 1]);
}

bool hb_capture_name_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n >= HB_CAPTURE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

int hb_check_name(const char *what, const char *s, hb_err *e)
{
    if (!what)
        what = "name";
    if (!s || !*s)
        return hb_seterr(e, HARVBK_E_INVALID, "%s must not be empty", what);
    if (hb_name_valid(s))
        return 0;
    if (strlen(s) > 63)
        return hb_seterr(e, HARVBK_E_INVALID, "%s '%.40s...' is longer than 63 characters", what,
                         s);
    return hb_seterr(e, HARVBK_E_INVALID,
                     "%s '%s' is not a valid DNS-1123 label (lower-case letters, digits and "
                     "'-', starting and ending with a letter or digit)",
                     what, s);
}

int harvbk_name_is_valid(const char *name)
{
    return hb_name_valid(name) ? 1 : 0;
}
