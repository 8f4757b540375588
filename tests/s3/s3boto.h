/*
 * tests/s3/s3boto.h - the independent client's (boto3) view of the S3 test
 * server, for tests/s3/test_s3_*.c: runs tests/s3/check_boto3.py and
 * tests/s3/boto3_mirror.py with the python that tests/s3/s3env.sh found
 * (HARVBK_TEST_S3_PYTHON in the env file), and compares what boto3 sees with
 * what the library's target layer sees.
 */
#ifndef HARVBK_S3BOTO_H
#define HARVBK_S3BOTO_H

#include "s3test.h"

#include <cjson/cJSON.h>

/* Run argv (NULL-terminated; argv[0] a path) with extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL), stdin /dev/null, stderr
 * inherited, stdout captured into *out (malloc'd, NUL-terminated; may be NULL
 * to discard). Killed after timeout_s. Returns the exit status (-1 killed). */
int s3b_run(const char *const *argv, const char *const *env, unsigned timeout_s, char **out);

/* The JSON text check_boto3.py prints for mode m and the literal key prefix
 * (e.g. "<store prefix>/"): {"KEY": {"size": N, "sha256": "HEX"|null}, ...},
 * keys sorted. Fails the test when the script fails. download=false: list only.
 * page_size 0: the default (1000). malloc'd. */
char *s3b_view_text(const s3t_mode *m, const char *prefix, bool download, unsigned page_size);
/* The same, parsed (asserts it parses). */
cJSON *s3b_view(const s3t_mode *m, const char *prefix, bool download, unsigned page_size);

/* tests/s3/boto3_mirror.py down|up: copy every object under "<store_prefix>/"
 * to dir (down; dir must not exist or be empty), or every file below dir to
 * "<store_prefix>/<relative path>" (up). Returns the number of objects. */
size_t s3b_mirror(const s3t_mode *m, const char *store_prefix, const char *dir, bool down);

/* Hex SHA-256 of len bytes into out (65 bytes). */
void s3b_sha256_hex(const void *data, size_t len, char out[65]);

/* The library's view of everything under the store prefix of cfg: every
 * object listed with hb_target_list and read back with hb_target_get, as
 * {"KEY": {"size": N, "sha256": "HEX"}} with keys relative to the prefix.
 * When chunks_ok is not NULL it receives the number of chunk objects
 * (chunks/aa/bb/<id>) whose bytes decode (hb_chunk_decode) to data whose
 * SHA-256 is <id>. */
cJSON *s3b_library_view(const harvbk_target_config *cfg, size_t *chunks, size_t *chunks_ok);

/* Assert boto3's view (full keys "<store_prefix>/KEY") equals the library's
 * (keys relative to the store prefix): same key set, sizes, SHA-256s.
 * Returns the number of objects. */
size_t s3b_assert_views_equal(const cJSON *boto, const cJSON *lib, const char *store_prefix);

/* The secret appears in none of the servers' logs (proxy.log, proxy.out,
 * s3rver.log in HARVBK_TEST_S3_DIR) so far. */
void s3b_assert_server_logs_clean(void);

#endif
