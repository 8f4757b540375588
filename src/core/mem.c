/* core/mem.c - allocation wrappers: NULL on failure, never abort. */
#include "hb.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Zero-size requests allocate one byte so that NULL always means failure. */
void *hb_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *hb_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size); /* calloc checks n * size for overflow */
}

void *hb_realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

char *hb_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *hb_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *hb_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = NULL;
    if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

void hb_free(void *p)
{
    free(p);
}

void hb_free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void harvbk_string_free(char *s)
{
    free(s);
}
