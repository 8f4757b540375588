/* core/fsutil.h - local filesystem helpers: atomic files, directories. */
#ifndef HB_FSUTIL_H
#define HB_FSUTIL_H

#include "hb.h"

/* mkdir -p with mode for created directories. */
int hb_mkdir_p(const char *path, mode_t mode, hb_err *e);
/* Write `len` bytes to `path` atomically: temp file in the same directory,
 * fsync, rename over path, fsync the directory. */
int hb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hb_err *e);
/* Whether `name` (a file name, no directory) is such a temporary:
 * "<file>.tmp.<pid>.<12 lower-case hex>"; its writer's pid in *pid. */
bool hb_atomic_tmp_parse(const char *name, long *pid);
/* Read a whole file (at most max bytes, else HARVBK_E_CORRUPT) into out
 * (replacing its content, NUL-terminated). HARVBK_E_NOTFOUND if absent. */
int hb_read_file(const char *path, hb_buf *out, size_t max, hb_err *e);
/* fsync a directory. */
int hb_fsync_dir(const char *path, hb_err *e);
/* Remove a file tree; absent is success. */
int hb_rm_rf(const char *path, hb_err *e);
/* Join dir + "/" + name into a new string (NULL on OOM). */
char *hb_path_join(const char *dir, const char *name);
/* Write all bytes at offset / read all bytes at offset (retrying short I/O). */
int hb_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, hb_err *e);
int hb_pread_all(int fd, void *buf, size_t len, uint64_t off, hb_err *e);
/* Size of a regular file or block device open on fd. */
int hb_fd_size(int fd, uint64_t *out, hb_err *e);

#endif
