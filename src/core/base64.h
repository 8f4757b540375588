#ifndef HB_BASE64_H
#define HB_BASE64_H
#include "hb.h"
/* Standard base64 with padding. Encoded output is NUL-terminated. */
char *hb_base64_encode(const void *data, size_t len);
int hb_base64_decode(const char *s, hb_buf *out, hb_err *e); /* HARVBK_E_CORRUPT on bad input */
#endif
