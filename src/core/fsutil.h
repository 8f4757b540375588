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
/* An exclusive flock on the file `dir`/`file` (the folder is made 0700, the
 * file 0600 and never removed, so every process locks the same inode). With
 * block, wait for it; else HARVBK_E_BUSY while another open file holds it.
 * *out_fd is the lock (close() releases it). */
int hb_lock_file(const char *dir, const char *file, bool block, int *out_fd, hb_err *e);
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
/* Open the file or block device of a volume (flags: O_RDONLY, O_WRONLY or
 * O_RDWR, optionally O_CREAT with `mode`; O_CLOEXEC is added). Only a regular
 * file or a block device is accepted: anything else (FIFO, socket, character
 * device, directory) is refused with HARVBK_E_INVALID, without ever blocking:
 * the path is checked before it is opened, it is opened with O_NONBLOCK (a
 * FIFO would otherwise block in open() until a peer appears) and O_NOCTTY,
 * checked again on the descriptor, and O_NONBLOCK is then cleared. `what`
 * names the volume in messages ("volume d0 of VM ns/vm"). Returns the
 * descriptor, or a negative HARVBK_E_* with a message naming `what` and
 * `path`. */
int hb_open_volume(const char *path, int flags, mode_t mode, const char *what, hb_err *e);
/* The same check for a descriptor a caller supplied: 0 when fd is a regular
 * file or a block device, else HARVBK_E_INVALID naming `what`. */
int hb_check_volume_fd(int fd, const char *what, hb_err *e);
/* A reflink copy (FICLONE) of the regular file open on src_fd, whose path is
 * `path`, into a new file that has no name: created with O_TMPFILE in the
 * directory of the file itself (links resolved), or where O_TMPFILE is not
 * supported as a hidden ".harvbk-capture-XXXXXX" unlinked right after it
 * was created. The copy shares the file's extents (no data is copied) and
 * its space goes when *out_fd is closed. 0 with *out_fd, or
 * HARVBK_E_UNSUPPORTED with the reason (no reflinks on that filesystem,
 * another filesystem, no write access to the directory, not a regular file)
 * or HARVBK_E_NOMEM. */
int hb_reflink_clone(int src_fd, const char *path, int *out_fd, hb_err *e);
/* rename() that never replaces an existing file (-1 with errno EEXIST). */
int hb_rename_noreplace(const char *from, const char *to);

#endif
