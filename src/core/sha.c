/* core/sha.c - SHA-256 (OpenSSL EVP), hex, zero detection. */
#include "hb.h"

#include <openssl/evp.h>
#include <string.h>

/* The digest implementation is fetched once: with OpenSSL 3 an explicit fetch
 * avoids a provider look-up (and its lock) on every call. EVP_Digest with a
 * const EVP_MD is thread-safe. The fetched object lives for the process. */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static const EVP_MD *sha_md;

static void sha_init(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif
    if (!sha_md)
        sha_md = EVP_sha256();
}

void hb_sha256(const void *data, size_t len, uint8_t out[HB_DIGEST_LEN])
{
    pthread_once(&sha_once, sha_init);
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, sha_md, NULL) == 1 && n == HB_DIGEST_LEN)
        return;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == HB_DIGEST_LEN)
        return;
    /* Only reachable when OpenSSL cannot allocate. The signature cannot report
     * it; never produce the all-zero id (it means "hole"): an all-0xff value is
     * a wrong id that every chunk read verifies and rejects. */
    memset(out, 0xff, HB_DIGEST_LEN);
}

void hb_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 2n hex digits followed by the end of the string. */
int hb_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (!hex)
        return HARVBK_E_INVALID;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]);
        if (hi < 0)
            return HARVBK_E_INVALID;
        int lo = hexval(hex[2 * i + 1]);
        if (lo < 0)
            return HARVBK_E_INVALID;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[2 * n] == '\0' ? 0 : HARVBK_E_INVALID;
}

/* The first 16 bytes are checked directly; then p[i] == p[i + 16] for every i
 * (one vectorised memcmp of the buffer against itself) proves all are zero. */
bool hb_is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t head = n < 16 ? n : 16;
    for (size_t i = 0; i < head; i++)
        if (b[i])
            return false;
    if (n <= 16)
        return true;
    return memcmp(b, b + 16, n - 16) == 0;
}
