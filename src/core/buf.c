/* core/buf.c - growable byte buffer. The content is kept NUL-terminated after
 * every append (the NUL is not counted in len) so text can be used directly. */
#include "hb.h"

#include <stdlib.h>
#include <string.h>

int hb_buf_reserve(hb_buf *b, size_t cap)
{
    if (cap <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < cap) {
        if (ncap > SIZE_MAX / 2) {
            ncap = cap;
            break;
        }
        ncap *= 2;
    }
    uint8_t *p = realloc(b->data, ncap);
    if (!p)
        return HARVBK_E_NOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int hb_buf_append(hb_buf *b, const void *p, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return HARVBK_E_NOMEM;
    if (hb_buf_reserve(b, b->len + n + 1) != 0)
        return HARVBK_E_NOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int hb_buf_append_str(hb_buf *b, const char *s)
{
    return hb_buf_append(b, s ? s : "", s ? strlen(s) : 0);
}

void hb_buf_reset(hb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void hb_buf_free(hb_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
