/*
 * core/crypt.c - AES-256-GCM, HMAC-SHA-256, HKDF and scrypt through OpenSSL
 * EVP; secure memory for key material; user keys and key files.
 */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned hb_scrypt_log2n = HB_SCRYPT_LOG2N_DEFAULT;

/* ---- secure memory ---- */

static size_t page_round(size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t p = ps > 0 ? (size_t)ps : 4096u;
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - p)
        return 0;
    return (n + p - 1) / p * p;
}

void *hb_secure_alloc(size_t n)
{
    size_t len = page_round(n);
    if (!len)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* where possible: an unprivileged process may have a small RLIMIT_MEMLOCK */
    (void)mlock(p, len);
#ifdef MADV_DONTDUMP
    (void)madvise(p, len, MADV_DONTDUMP);
#endif
    return p; /* anonymous pages are zeroed */
}

void hb_secure_free(void *p, size_t n)
{
    if (!p)
        return;
    size_t len = page_round(n);
    OPENSSL_cleanse(p, len);
    (void)munlock(p, len);
    munmap(p, len);
}

char *hb_secure_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *out = hb_secure_alloc(n);
    if (out)
        memcpy(out, s, n);
    return out;
}

void hb_secure_strfree(char *s)
{
    if (s)
        hb_secure_free(s, strlen(s) + 1);
}

void hb_cleanse(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/* ---- user keys ---- */

const char *hb_key_kind_name(int kind)
{
    return kind == HB_KEY_PASSPHRASE ? "passphrase" : "key file";
}

static int key_check(int kind, const void *data, size_t len, hb_err *e)
{
    if (kind == HB_KEY_RAW) {
        if (len < HB_KEY_RAW_MIN || len > HB_KEY_RAW_MAX)
            return hb_seterr(e, HARVBK_E_INVALID,
                             "a key must be %u to %u bytes (a key file holds random bytes, e.g. "
                             "32 bytes of /dev/urandom), got %zu",
                             HB_KEY_RAW_MIN, HB_KEY_RAW_MAX, len);
        return 0;
    }
    if (kind == HB_KEY_PASSPHRASE) {
        if (len == 0 || len > HB_PASSPHRASE_MAX)
            return hb_seterr(e, HARVBK_E_INVALID, "a passphrase must be 1 to %u bytes, got %zu",
                             HB_PASSPHRASE_MAX, len);
        if (memchr(data, '\0', len))
            return hb_seterr(e, HARVBK_E_INVALID, "a passphrase must not contain a NUL byte");
        return 0;
    }
    return hb_seterr(e, HARVBK_E_INVALID, "unknown key kind %d", kind);
}

bool hb_key_ok(const hb_key *k)
{
    return k && k->magic == HB_KEY_MAGIC && k->data;
}

static hb_key *key_alloc(void)
{
    hb_key *k = hb_calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->magic = HB_KEY_MAGIC;
    if (!(k->data = hb_secure_alloc(HB_KEY_RAW_MAX))) {
        hb_free(k);
        return NULL;
    }
    return k;
}

int hb_key_new(hb_key **out, int kind, const void *data, size_t len, hb_err *e)
{
    *out = NULL;
    int rc = key_check(kind, data, len, e);
    if (rc)
        return rc;
    hb_key *k = key_alloc();
    if (!k)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate memory for a key");
    k->kind = kind;
    k->len = len;
    memcpy(k->data, data, len);
    *out = k;
    return 0;
}

int hb_key_dup(hb_key **out, const hb_key *k)
{
    *out = NULL;
    if (!k)
        return 0;
    hb_key *c = key_alloc();
    if (!c)
        return HARVBK_E_NOMEM;
    c->kind = k->kind;
    c->len = k->len;
    memcpy(c->data, k->data, k->len);
    *out = c;
    return 0;
}

void hb_key_free(hb_key *k)
{
    if (!k)
        return;
    hb_secure_free(k->data, HB_KEY_RAW_MAX);
    memset(k, 0, sizeof *k); /* a second free finds no magic */
    hb_free(k);
}

int hb_secret_file_check(int fd, const char *path, const char *what, hb_err *e)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return hb_seterr(e, hb_errno_code(errno), "cannot stat %s '%s': %s", what, path,
                         strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return hb_seterr(e, HARVBK_E_INVALID, "%s '%s' is not a regular file", what, path);
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        return hb_seterr(e, HARVBK_E_PERM,
                         "%s '%s' is accessible by group or others (mode %04o); it must be "
                         "private to its owner: chmod 600 '%s'",
                         what, path, (unsigned)(sb.st_mode & 07777), path);
    return 0;
}

int hb_key_load_file(hb_key **out, int kind, const char *path, hb_err *e)
{
    *out = NULL;
    const char *what = kind == HB_KEY_PASSPHRASE ? "passphrase file" : "key file";
    if (!path || !*path)
        return hb_seterr(e, HARVBK_E_INVALID, "no %s given", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return hb_seterr(e, hb_errno_code(errno), "cannot open %s '%s': %s", what, path,
                         strerror(errno));
    int rc = hb_secret_file_check(fd, path, what, e);
    hb_key *k = rc ? NULL : key_alloc();
    if (!rc && !k)
        rc = hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate memory for a key");
    size_t len = 0;
    while (rc == 0) {
        if (len == HB_KEY_RAW_MAX) { /* one byte more than a key may have? */
            uint8_t extra;
            ssize_t x = read(fd, &extra, 1);
            if (x > 0)
                rc = hb_seterr(e, HARVBK_E_INVALID, "%s '%s' is larger than %u bytes", what,
                               path, HB_KEY_RAW_MAX);
            hb_cleanse(&extra, 1);
            break;
        }
        ssize_t r = read(fd, k->data + len, HB_KEY_RAW_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = hb_seterr(e, hb_errno_code(errno), "cannot read %s '%s': %s", what, path,
                           strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc == 0 && kind == HB_KEY_PASSPHRASE) {
        /* the first line: `echo pass > file` and editors add a newline */
        uint8_t *nl = memchr(k->data, '\n', len);
        if (nl)
            len = (size_t)(nl - k->data);
        if (len && k->data[len - 1] == '\r')
            len--;
        hb_cleanse(k->data + len, HB_KEY_RAW_MAX - len);
        if (len > HB_PASSPHRASE_MAX)
            rc = hb_seterr(e, HARVBK_E_INVALID, "the passphrase in '%s' is longer than %u bytes",
                           path, HB_PASSPHRASE_MAX);
    }
    if (rc == 0 && len == 0)
        rc = hb_seterr(e, HARVBK_E_INVALID, "%s '%s' is empty", what, path);
    if (rc == 0) {
        rc = key_check(kind, k->data, len, e);
        if (rc)
            hb_err_prefix(e, "%s '%s'", what, path);
    }
    if (rc) {
        hb_key_free(k);
        return rc;
    }
    k->kind = kind;
    k->len = len;
    *out = k;
    return 0;
}

/* ---- primitives ---- */

static pthread_once_t evp_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher;
static EVP_MAC *hmac_mac;

static void evp_init(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static const EVP_CIPHER *gcm(void)
{
    pthread_once(&evp_once, evp_init);
    return gcm_cipher ? gcm_cipher : EVP_aes_256_gcm();
}

static int gcm_aad(EVP_CIPHER_CTX *c, const void *a, size_t n)
{
    int outl = 0;
    while (n > 0) {
        int step = n > INT32_MAX ? INT32_MAX : (int)n;
        if (EVP_CipherUpdate(c, NULL, &outl, a, step) != 1)
            return -1;
        a = (const uint8_t *)a + step;
        n -= (size_t)step;
    }
    return 0;
}

static int gcm_data(EVP_CIPHER_CTX *c, const void *in, size_t len, void *out)
{
    const uint8_t *i = in;
    uint8_t *o = out;
    while (len > 0) {
        int step = len > (1u << 30) ? (1 << 30) : (int)len, outl = 0;
        if (EVP_CipherUpdate(c, o, &outl, i, step) != 1 || outl != step)
            return -1;
        i += step;
        o += step;
        len -= (size_t)step;
    }
    return 0;
}

static int gcm_run(bool enc, const uint8_t key[HB_AES_KEY_LEN],
                   const uint8_t nonce[HB_GCM_NONCE_LEN], const void *aad1, size_t aad1_len,
                   const void *aad2, size_t aad2_len, const void *in, size_t len, void *out,
                   uint8_t tag[HB_GCM_TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return HARVBK_E_NOMEM;
    int rc = HARVBK_E_NOMEM, outl = 0;
    uint8_t fin[16];
    if (EVP_CipherInit_ex(c, gcm(), NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, HB_GCM_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc ? 1 : 0) != 1)
        goto out;
    if ((aad1_len && gcm_aad(c, aad1, aad1_len)) || (aad2_len && gcm_aad(c, aad2, aad2_len)))
        goto out;
    if (len && gcm_data(c, in, len, out))
        goto out;
    if (enc) {
        if (EVP_CipherFinal_ex(c, fin, &outl) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, HB_GCM_TAG_LEN, tag) != 1)
            goto out;
        rc = 0;
    } else {
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, HB_GCM_TAG_LEN, tag) != 1)
            goto out;
        /* the tag is checked here: a mismatch is tampering or another key */
        rc = EVP_CipherFinal_ex(c, fin, &outl) == 1 ? 0 : HARVBK_E_CHUNK;
        if (rc && len)
            hb_cleanse(out, len);
    }
out:
    EVP_CIPHER_CTX_free(c); /* cleanses the key schedule */
    return rc;
}

int hb_gcm_seal(const uint8_t key[HB_AES_KEY_LEN], const uint8_t nonce[HB_GCM_NONCE_LEN],
                const void *aad1, size_t aad1_len, const void *aad2, size_t aad2_len,
                const void *in, size_t len, void *out, uint8_t tag[HB_GCM_TAG_LEN])
{
    return gcm_run(true, key, nonce, aad1, aad1_len, aad2, aad2_len, in, len, out, tag);
}

int hb_gcm_open(const uint8_t key[HB_AES_KEY_LEN], const uint8_t nonce[HB_GCM_NONCE_LEN],
                const void *aad1, size_t aad1_len, const void *aad2, size_t aad2_len,
                const void *in, size_t len, const uint8_t tag[HB_GCM_TAG_LEN], void *out)
{
    uint8_t t[HB_GCM_TAG_LEN];
    memcpy(t, tag, sizeof t);
    return gcm_run(false, key, nonce, aad1, aad1_len, aad2, aad2_len, in, len, out, t);
}

void hb_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[HB_DIGEST_LEN])
{
    pthread_once(&evp_once, evp_init);
    EVP_MAC_CTX *c = hmac_mac ? EVP_MAC_CTX_new(hmac_mac) : NULL;
    size_t n = 0;
    OSSL_PARAM params[2] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                              (char *)"SHA256", 0),
                             OSSL_PARAM_construct_end() };
    if (c && EVP_MAC_init(c, key, key_len, params) == 1 && EVP_MAC_update(c, data, len) == 1 &&
        EVP_MAC_final(c, out, &n, HB_DIGEST_LEN) == 1 && n == HB_DIGEST_LEN) {
        EVP_MAC_CTX_free(c);
        return;
    }
    EVP_MAC_CTX_free(c);
    memset(out, 0xff, HB_DIGEST_LEN);
}

int hb_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                   const char *info, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!c)
        return HARVBK_E_NOMEM;
    OSSL_PARAM p[5], *q = p;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *q = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(c, out, out_len, p) == 1;
    EVP_KDF_CTX_free(c);
    return ok ? 0 : HARVBK_E_NOMEM;
}

int hb_scrypt(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
              uint64_t n, uint64_t r, uint64_t p, uint8_t *out, size_t out_len)
{
    /* memory scrypt needs: 128 * r * (n + p + 2) bytes; allow exactly that */
    uint64_t maxmem = 128u * r * (n + p + 2) + (1u << 20);
    return EVP_PBE_scrypt(pass, pass_len, salt, salt_len, n, r, p, maxmem, out, out_len) == 1
               ? 0
               : HARVBK_E_NOMEM;
}

/* ---- public: harvbk/key.h ---- */

int harvbk_key_from_file(harvbk_key **out, const char *path)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_key_from_file: out is NULL");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_key_load_file(out, HB_KEY_RAW, path, &e);
    return hb_fail_rc(rc, &e);
}

int harvbk_key_from_passphrase_file(harvbk_key **out, const char *path)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "harvbk_key_from_passphrase_file: out is NULL");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_key_load_file(out, HB_KEY_PASSPHRASE, path, &e);
    return hb_fail_rc(rc, &e);
}

int harvbk_key_from_bytes(harvbk_key **out, const void *data, size_t len)
{
    if (!out || (!data && len))
        return hb_fail(HARVBK_E_INVALID, "harvbk_key_from_bytes: %s is NULL",
                       out ? "data" : "out");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_key_new(out, HB_KEY_RAW, data, len, &e);
    return hb_fail_rc(rc, &e);
}

int harvbk_key_from_passphrase(harvbk_key **out, const char *passphrase)
{
    if (!out || !passphrase)
        return hb_fail(HARVBK_E_INVALID, "harvbk_key_from_passphrase: %s is NULL",
                       out ? "passphrase" : "out");
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_key_new(out, HB_KEY_PASSPHRASE, passphrase, strlen(passphrase), &e);
    return hb_fail_rc(rc, &e);
}

void harvbk_key_free(harvbk_key *key)
{
    if (hb_key_ok(key))
        hb_key_free(key);
}
