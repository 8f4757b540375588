/*
 * target/config.h - the internal form of harvbk_target_config and its
 * persistence in the state directory.
 */
#ifndef HB_TARGET_CONFIG_H
#define HB_TARGET_CONFIG_H

#include "../core/crypt.h"
#include "../core/hb.h"

enum hb_codec { HB_CODEC_NONE = 0, HB_CODEC_ZSTD = 1, HB_CODEC_LZ4 = 2, HB_CODEC_GZIP = 3 };

typedef struct hb_target_cfg {
    char *url;
    char *endpoint;
    char *region;
    char *access_key_id;
    char *secret_access_key; /* wiped on free */
    char *ca_cert_file;
    bool virtual_hosted;
    uint32_t refresh_interval;
    int codec;              /* enum hb_codec; -1 = store default (zstd) */
    uint32_t chunk_size;    /* 0 = default (hb_target_cfg_default_chunk_size) */
    uint32_t timeout_ms;    /* default 10000 */
    uint32_t parallel;      /* 0 = automatic */
    bool store_secret;
    bool read_only;         /* every write to the target is refused (HARVBK_E_READ_ONLY) */
    /* encryption at rest (FORMAT.md section 10): the store must be encrypted
     * (implied by any key); where its key comes from: the paths are
     * persisted, the key itself (a session key) never is */
    bool encrypt;
    char *key_file;
    char *passphrase_file;
    hb_key *key;            /* session key (secure memory); wiped on free */
    /* never persisted: a local directory target creates its directories
     * 0700 and files 0600 (the snapshot store: the state directory's rule)
     * whatever the store's config allows (HB_STORE_CONFIG_NAME) */
    bool private_files;
} hb_target_cfg;

/* The store's config object, at the root of a target (docs/FORMAT.md). A
 * directory target (file://, nfs://) creates what it adds with the group and
 * others' read access this object has: private (0600 / 0700) for a new store
 * or one whose config is private, 0644 / 0755 for one whose config is, as an
 * earlier version made them. */
#define HB_STORE_CONFIG_NAME "harvbk-store.json"

/* The modes of what a directory target adds: private (0600 / 0700), plus the
 * group's and others' read access (and search, for directories) the store's
 * config grants; cfg_mode 0: private. */
static inline void hb_store_modes(unsigned cfg_mode, unsigned *file_mode, unsigned *dir_mode)
{
    unsigned r = cfg_mode & 0044u;
    *file_mode = 0600u | r;
    *dir_mode = 0700u | r | (r >> 2);
}

/* Encryption is wanted: set, or a key is given. */
static inline bool hb_target_cfg_encrypted(const hb_target_cfg *c)
{
    return c->encrypt || c->key || c->key_file || c->passphrase_file;
}
/* The key the configuration gives (a copy, caller frees with hb_key_free):
 * the session key, else the key file's, else the passphrase file's, read
 * now (HARVBK_E_PERM for a file group or others may access). *out NULL
 * without any. */
int hb_target_cfg_load_key(const hb_target_cfg *c, hb_key **out, hb_err *e);

/* The public opaque type is this struct. */
struct harvbk_target_config {
    hb_target_cfg cfg;
};

void hb_target_cfg_init(hb_target_cfg *c);
void hb_target_cfg_clear(hb_target_cfg *c);
int hb_target_cfg_copy(hb_target_cfg *dst, const hb_target_cfg *src);
/* Set by public key from a string (validates). */
int hb_target_cfg_set(hb_target_cfg *c, int key, const char *value, hb_err *e);
/* Parse "zstd"/"lz4"/"gzip"/"none"; -1 if unknown. Name of a codec. */
int hb_codec_parse(const char *s);
const char *hb_codec_name(int codec);
/* Serialize to JSON (secret included only if store_secret) / parse back. */
char *hb_target_cfg_to_json(const hb_target_cfg *c);
int hb_target_cfg_from_json(hb_target_cfg *c, const void *data, size_t len, hb_err *e);
/* The URL with any credentials removed, for messages (new string). */
char *hb_target_cfg_display(const hb_target_cfg *c);

/* Default chunk size of a new store: 1 MiB on local directories (a small
 * guest write re-hashes, recompresses and stores less; measured in
 * bench/RESULTS.md), 4 MiB on S3 and NFS, where every object costs round
 * trips (S3: a request; NFS: create, writes, rename and a server-side sync). */
#define HB_DEFAULT_CHUNK_SIZE (1u * 1024u * 1024u)
#define HB_DEFAULT_CHUNK_SIZE_REMOTE (4u * 1024u * 1024u)
uint32_t hb_target_cfg_default_chunk_size(const hb_target_cfg *c);
#define HB_MIN_CHUNK_SIZE (64u * 1024u)
#define HB_MAX_CHUNK_SIZE (64u * 1024u * 1024u)
/* The chunk sizes writers use and readers accept (the target setting, store
 * configs and manifests alike; docs/FORMAT.md sections 3 and 6): a power of
 * two from HB_MIN_CHUNK_SIZE to HB_MAX_CHUNK_SIZE. */
static inline bool hb_chunk_size_valid(uint64_t cs)
{
    return cs >= HB_MIN_CHUNK_SIZE && cs <= HB_MAX_CHUNK_SIZE && (cs & (cs - 1)) == 0;
}
#define HB_DEFAULT_TIMEOUT_MS 10000u

#endif
