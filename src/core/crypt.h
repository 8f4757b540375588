/*
 * core/crypt.h - the cryptographic primitives of encryption at rest
 * (docs/FORMAT.md section 10), all through OpenSSL EVP, and the memory that
 * holds key material.
 *
 * Key material lives in "secure" memory: whole pages of its own (mmap),
 * locked in RAM with mlock() where the process may (RLIMIT_MEMLOCK; a refusal
 * is not an error: "where possible"), excluded from core dumps
 * (MADV_DONTDUMP), and wiped with OPENSSL_cleanse() before it is unmapped.
 * OpenSSL's own contexts (the expanded AES key, HMAC pads) are freed with
 * EVP_*_free(), which cleanses them.
 *
 * A key given by a user (hb_key) is either the bytes of a key file (raw key
 * material, 32..4096 bytes, turned into a key-encryption key with HKDF) or a
 * passphrase (1..1024 bytes, turned into one with scrypt). Which one it is
 * decides the key-derivation function, so it travels with the bytes.
 */
#ifndef HB_CRYPT_H
#define HB_CRYPT_H

#include "hb.h"

#define HB_AES_KEY_LEN 32
#define HB_GCM_NONCE_LEN 12
#define HB_GCM_TAG_LEN 16

/* ---- secure memory ---- */
/* n zeroed bytes on pages of their own, locked where possible, not dumped.
 * NULL when out of memory. */
void *hb_secure_alloc(size_t n);
/* Wipe and release what hb_secure_alloc(n) returned (same n); NULL ok. */
void hb_secure_free(void *p, size_t n);
/* OPENSSL_cleanse: wipe n bytes (the compiler cannot drop it). */
void hb_cleanse(void *p, size_t n);
/* A copy of the string s (an S3 secret key) in secure memory; NULL for NULL
 * or when out of memory. Released only by hb_secure_strfree. */
char *hb_secure_strdup(const char *s);
/* Wipe and release what hb_secure_strdup returned (unchanged since); NULL ok. */
void hb_secure_strfree(char *s);

/* ---- user keys ---- */
enum hb_key_kind { HB_KEY_RAW = 1, HB_KEY_PASSPHRASE = 2 };
#define HB_KEY_RAW_MIN 32u
#define HB_KEY_RAW_MAX 4096u
#define HB_PASSPHRASE_MAX 1024u
/* The public harvbk_key (harvbk/key.h) is this struct. */
#define HB_KEY_MAGIC 0x68624b79u /* "hbKy" */
struct harvbk_key {
    uint32_t magic;
    int kind;       /* enum hb_key_kind */
    size_t len;
    uint8_t *data;  /* secure memory of HB_KEY_RAW_MAX bytes */
};
typedef struct harvbk_key hb_key;
/* A valid key handle (not NULL, not freed). */
bool hb_key_ok(const hb_key *k);

/* A key of `kind` holding a copy of data[0..len). HARVBK_E_INVALID for a
 * length out of range (a raw key of fewer than 32 bytes, an empty or too long
 * passphrase, a passphrase with a NUL byte). */
int hb_key_new(hb_key **out, int kind, const void *data, size_t len, hb_err *e);
int hb_key_dup(hb_key **out, const hb_key *k); /* k NULL: *out NULL, 0 */
void hb_key_free(hb_key *k);                   /* wipes; NULL ok */
/* "key file" / "passphrase", for messages. */
const char *hb_key_kind_name(int kind);
/* Read a key of `kind` from the file at path: a key file's bytes as they
 * are; a passphrase file's first line (what follows a newline is ignored,
 * so is a trailing "\r"). The file must be a regular file that neither its
 * group nor others may read or write (HARVBK_E_PERM: "... is readable by
 * group or others (mode 0644): chmod 600 ..."); a symbolic link is followed and
 * the file it names is checked. HARVBK_E_NOTFOUND, HARVBK_E_PERM, HARVBK_E_INVALID
 * (empty, too long or too short), HARVBK_E_IO. The bytes read pass only
 * through secure memory. */
int hb_key_load_file(hb_key **out, int kind, const char *path, hb_err *e);
/* The check of hb_key_load_file on an open file: regular, no group/other
 * access. `what` names the file in the message ("key file"). */
int hb_secret_file_check(int fd, const char *path, const char *what, hb_err *e);

/* ---- primitives (0 or HARVBK_E_NOMEM when OpenSSL fails to allocate) ---- */
/* AES-256-GCM: out = E(in), tag; the additional data is aad1 || aad2 (either
 * may be NULL with length 0). out may equal in. */
int hb_gcm_seal(const uint8_t key[HB_AES_KEY_LEN], const uint8_t nonce[HB_GCM_NONCE_LEN],
                const void *aad1, size_t aad1_len, const void *aad2, size_t aad2_len,
                const void *in, size_t len, void *out, uint8_t tag[HB_GCM_TAG_LEN]);
/* The inverse: 0, HARVBK_E_CHUNK when the tag does not authenticate (out is
 * then wiped), HARVBK_E_NOMEM. out may equal in. */
int hb_gcm_open(const uint8_t key[HB_AES_KEY_LEN], const uint8_t nonce[HB_GCM_NONCE_LEN],
                const void *aad1, size_t aad1_len, const void *aad2, size_t aad2_len,
                const void *in, size_t len, const uint8_t tag[HB_GCM_TAG_LEN], void *out);
/* HMAC-SHA-256. On an OpenSSL failure the result is all 0xff (never the
 * all-zero "hole" id; every reader then rejects it as a wrong id). */
void hb_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[HB_DIGEST_LEN]);
/* HKDF-SHA-256 (RFC 5869) of ikm with salt and the label `info`. */
int hb_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                   const char *info, uint8_t *out, size_t out_len);
/* scrypt (RFC 7914) through EVP_PBE_scrypt; the caller bounds n, r, p. */
int hb_scrypt(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
              uint64_t n, uint64_t r, uint64_t p, uint8_t *out, size_t out_len);

/* scrypt cost of new passphrase slots: N = 2^hb_scrypt_log2n (default 15:
 * 32 MiB and about 0.1 s per derivation), r 8, p 1. Internal; lowered only by
 * tests. */
#define HB_SCRYPT_LOG2N_DEFAULT 15
extern unsigned hb_scrypt_log2n;

#endif
