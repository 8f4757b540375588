/*
 * tests/nfs/nfstest.h - helpers of the NFS target tests (public API only).
 *
 * The tests run inside the network namespace of the ganesha server that
 * tests/nfs/nfsenv.sh started (tests/nfs/in-netns.sh sets that up and exports
 * HARVBK_TEST_NFS_* from the fixture's env file).
 */
#ifndef HARVBK_NFSTEST_H
#define HARVBK_NFSTEST_H

#include <harvbk.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#define NFST_MiB (1024ull * 1024ull)
#define NFST_CHUNK (4u * 1024u * 1024u) /* the store's default chunk size */

typedef struct nfst_env {
    const char *url;        /* nfs://127.0.0.1/export */
    const char *ro_url;     /* nfs://127.0.0.1/readonly (writes refused) */
    const char *export_dir; /* the directory ganesha serves (server side) */
    const char *env_dir;    /* nfsenv.sh's DIR */
    const char *script;     /* nfsenv.sh */
} nfst_env;

/* The fixture's settings; fails the test when they are missing. */
const nfst_env *nfst_get_env(void);

/* printf into a new string (never NULL; aborts the test on OOM). */
char *nfst_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A new empty directory for this test run. */
char *nfst_mkdtemp(const char *tag);
void nfst_rmrf(const char *path);

/* Run a shell command line; returns its exit status (-1 when it did not exit
 * normally); its output (stdout+stderr) in *out when out is not NULL. */
int nfst_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Deterministic disk images: random bytes, with the chunks listed in
 * zero_chunks (indexes, terminated by -1) all zero. */
void nfst_write_disk(const char *path, uint64_t size, uint64_t seed, const int *zero_chunks);
/* Overwrite 4 KiB at chunk index `chunk` (offset 1000 into it) with new bytes. */
void nfst_touch_chunk(const char *path, unsigned chunk, uint64_t seed);
void nfst_assert_same_file(const char *a, const char *b);

/* Sorted hex ids of the distinct non-zero 4 MiB chunks of a file. */
char **nfst_chunk_ids(const char *path, size_t *n);
/* Regular files below dir (recursive), sorted relative paths; inode numbers
 * in *inos when not NULL (parallel array). */
char **nfst_list_files(const char *dir, size_t *n, uint64_t **inos);
/* Names (last path component) of the chunk files of the store in dir. */
char **nfst_store_chunks(const char *store_dir, size_t *n, uint64_t **inos);
void nfst_free_strv(char **v, size_t n);

/* A context on state_dir with the target url (timeout_ms 0 = default).
 * Returns the harvbk code; *msg (caller frees) gets the context's message. */
int nfst_ctx(harvbk_ctx **out, const char *state_dir, const char *url, unsigned timeout_ms,
             char **msg);
/* nfst_ctx that fails the test when the target cannot be set. */
harvbk_ctx *nfst_ctx_ok(const char *state_dir, const char *url, unsigned timeout_ms);
/* Register VM ns/vm with one volume "root" = path (ignores "exists"). */
void nfst_vm(harvbk_ctx *ctx, const char *ns, const char *vm, const char *path);
/* The operations; return the harvbk code, message in *msg when not NULL. */
int nfst_backup(harvbk_ctx *ctx, const char *ns, const char *vm, const char *path,
                const char *name, char **msg);
int nfst_restore(harvbk_ctx *ctx, const char *ns, const char *name, const char *new_vm,
                 const char *dir, char **msg);
int nfst_verify(harvbk_ctx *ctx, const char *ns, const char *name, char **msg);
int nfst_gc(harvbk_ctx *ctx, char **msg);
/* harvbk_backup_get's state (HARVBK_BACKUP_*), or a negative code. */
int nfst_backup_state(harvbk_ctx *ctx, const char *ns, const char *name);

uint64_t nfst_now_ms(void);

#endif
