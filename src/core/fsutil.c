/* core/fsutil.c - local filesystem helpers: atomic files, directories, I/O. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int sys_err(hb_err *e, int errnum, const char *op, const char *path)
{
    return hb_seterr(e, hb_errno_code(errnum), "%s '%s': %s", op, path, strerror(errnum));
}

/* fsync the directory holding `path` (an entry just created in it), so the
 * entry survives a crash: callers go on to write files into the new directory
 * with hb_write_file_atomic, which fsyncs only the file's own directory. A
 * parent that cannot be opened (search-only permission) is skipped. */
static int sync_parent(char *path, hb_err *e)
{
    char *slash = strrchr(path, '/');
    char *cut = slash ? (slash == path ? slash + 1 : slash) : NULL;
    char keep = cut ? *cut : '\0';
    if (cut)
        *cut = '\0';
    const char *dir = cut ? path : ".";
    int rc = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            rc = sys_err(e, errno, "cannot sync directory", dir);
        close(fd);
    }
    if (cut)
        *cut = keep;
    return rc;
}

int hb_mkdir_p(const char *path, mode_t mode, hb_err *e)
{
    if (!path || !*path)
        return hb_seterr(e, HARVBK_E_INVALID, "empty directory path");
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        return hb_seterr(e, HARVBK_E_INVALID, "'%s' exists and is not a directory", path);
    }
    char *p = hb_strdup(path);
    if (!p)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    size_t n = strlen(p);
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/') /* "//" or a trailing '/' */
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0) {
            int err = errno;
            if (err != EEXIST)
                rc = sys_err(e, err, "cannot create directory", p);
            else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
                rc = hb_seterr(e, HARVBK_E_INVALID, "'%s' exists and is not a directory", p);
        } else {
            rc = sync_parent(p, e);
        }
        p[i] = saved;
    }
    free(p);
    return rc;
}

int hb_fsync_dir(const char *path, hb_err *e)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(e, errno, "cannot open directory", path);
    int rc = 0;
    /* Some filesystems do not support fsync on directories (EINVAL). */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = sys_err(e, errno, "cannot sync directory", path);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return hb_strdup(".");
    if (slash == path)
        return hb_strdup("/");
    return hb_strndup(path, (size_t)(slash - path));
}

/* The temporary of hb_write_file_atomic is "<name>.tmp.<pid>.<12 hex>". */
#define ATOMIC_TMP_MARK ".tmp."
#define ATOMIC_TMP_HEX 12

bool hb_atomic_tmp_parse(const char *name, long *pid)
{
    size_t n = strlen(name);
    if (n < ATOMIC_TMP_HEX + 2)
        return false;
    const char *hex = name + n - ATOMIC_TMP_HEX;
    for (int i = 0; i < ATOMIC_TMP_HEX; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return false;
    if (hex[-1] != '.')
        return false;
    const char *d = hex - 1; /* the dot before the hex */
    const char *p = d;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == d || d - p > 18 || (size_t)(p - name) <= strlen(ATOMIC_TMP_MARK) ||
        strncmp(p - strlen(ATOMIC_TMP_MARK), ATOMIC_TMP_MARK, strlen(ATOMIC_TMP_MARK)) != 0)
        return false;
    long v = 0;
    for (const char *q = p; q < d; q++)
        v = v * 10 + (*q - '0');
    if (v <= 0)
        return false;
    if (pid)
        *pid = v;
    return true;
}

int hb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hb_err *e)
{
    if (!path || !*path)
        return hb_seterr(e, HARVBK_E_INVALID, "empty file path");
    uint8_t rnd[ATOMIC_TMP_HEX / 2];
    char rhex[ATOMIC_TMP_HEX + 1];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, rhex);
    /* the pid lets recovery tell a dead writer's leftover (hb_atomic_tmp_parse) */
    char *tmp = hb_asprintf("%s" ATOMIC_TMP_MARK "%ld.%s", path, (long)getpid(), rhex);
    char *dir = dir_of(path);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = sys_err(e, errno, "cannot create", tmp);
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        rc = sys_err(e, errno, "cannot write", tmp);
    } else if (fsync(fd) != 0) {
        rc = sys_err(e, errno, "cannot sync", tmp);
    }
    if (close(fd) != 0 && rc == 0)
        rc = sys_err(e, errno, "cannot close", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = sys_err(e, errno, "cannot rename into", path);
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    rc = hb_fsync_dir(dir, e);
out:
    free(tmp);
    free(dir);
    return rc;
}

/* max == 0 means no limit. */
int hb_read_file(const char *path, hb_buf *out, size_t max, hb_err *e)
{
    if (!path || !out)
        return hb_seterr(e, HARVBK_E_INVALID, "hb_read_file: NULL argument");
    if (max == 0)
        max = SIZE_MAX - 1;
    hb_buf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(e, errno, "cannot open", path);
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = sys_err(e, errno, "cannot stat", path);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = hb_seterr(e, HARVBK_E_INVALID, "'%s' is a directory", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max) {
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "'%s' is larger than %zu bytes", path, max);
        goto out;
    }
    size_t want = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    if (hb_buf_reserve(out, want + 1) != 0) {
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        goto out;
    }
    for (;;) {
        if (out->cap - out->len < 2 && hb_buf_reserve(out, out->cap * 2) != 0) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            goto out;
        }
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = sys_err(e, errno, "cannot read", path);
            goto out;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
        if (out->len > max) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "'%s' is larger than %zu bytes", path, max);
            goto out;
        }
    }
    out->data[out->len] = '\0';
out:
    close(fd);
    if (rc != 0)
        hb_buf_reset(out);
    return rc;
}

/* Remove the entry `name` in directory dfd (recursively for directories). */
static int rm_at(int dfd, const char *name, const char *shown, hb_err *e)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return sys_err(e, errno, "cannot remove", shown);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return sys_err(e, errno, "cannot open directory", shown);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return sys_err(e, err, "cannot open directory", shown);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        rc = rm_at(dirfd(d), de->d_name, shown, e);
    }
    if (rc == 0 && errno != 0)
        rc = sys_err(e, errno, "cannot read directory", shown);
    closedir(d);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = sys_err(e, errno, "cannot remove directory", shown);
    return rc;
}

int hb_rm_rf(const char *path, hb_err *e)
{
    if (!path || !*path)
        return hb_seterr(e, HARVBK_E_INVALID, "empty path");
    return rm_at(AT_FDCWD, path, path, e);
}

char *hb_path_join(const char *dir, const char *name)
{
    if (!dir || !name)
        return NULL;
    size_t dl = strlen(dir);
    if (dl == 0)
        return hb_strdup(name);
    if (dir[dl - 1] == '/')
        return hb_asprintf("%s%s", dir, name);
    return hb_asprintf("%s/%s", dir, name);
}

int hb_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, hb_err *e)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return hb_seterr(e, hb_errno_code(errno), "write at offset %llu: %s",
                             (unsigned long long)off, strerror(errno));
        }
        if (w == 0)
            return hb_seterr(e, HARVBK_E_IO, "write at offset %llu: no progress",
                             (unsigned long long)off);
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int hb_pread_all(int fd, void *buf, size_t len, uint64_t off, hb_err *e)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return hb_seterr(e, hb_errno_code(errno), "read at offset %llu: %s",
                             (unsigned long long)off, strerror(errno));
        }
        if (r == 0)
            return hb_seterr(e, HARVBK_E_IO, "read at offset %llu: unexpected end of file",
                             (unsigned long long)off);
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int hb_fd_size(int fd, uint64_t *out, hb_err *e)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return hb_seterr(e, hb_errno_code(errno), "stat: %s", strerror(errno));
    if (S_ISREG(st.st_mode)) {
        *out = (uint64_t)st.st_size;
        return 0;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;
        if (ioctl(fd, BLKGETSIZE64, &sz) != 0)
            return hb_seterr(e, hb_errno_code(errno), "block device size: %s", strerror(errno));
        *out = sz;
        return 0;
    }
    return hb_seterr(e, HARVBK_E_INVALID, "not a regular file or block device");
}

static const char *file_kind(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISLNK(m))
        return "a symbolic link";
    return "a special file";
}

static bool volume_mode_ok(mode_t m)
{
    return S_ISREG(m) || S_ISBLK(m);
}

int hb_open_volume(const char *path, int flags, mode_t mode, const char *what, hb_err *e)
{
    if (!what)
        what = "volume";
    if (!path || !*path)
        return hb_seterr(e, HARVBK_E_INVALID, "%s: empty path", what);
    /* Refuse before opening, so that opening has no side effect on a device
     * that is not a disk (a tape rewinds, a tty becomes ours). */
    struct stat sb;
    if (stat(path, &sb) == 0 && !volume_mode_ok(sb.st_mode))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "%s at '%s' is %s, not a regular file or block device", what, path,
                         file_kind(sb.st_mode));
    /* The path may have changed since: O_NONBLOCK makes opening a FIFO
     * return at once (ENXIO when opened for writing without a reader). */
    int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, mode);
    if (fd < 0) {
        int err = errno;
        return hb_seterr(e, hb_errno_code(err), "cannot open %s at '%s': %s", what, path,
                         strerror(err));
    }
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return hb_seterr(e, hb_errno_code(err), "cannot stat %s at '%s': %s", what, path,
                         strerror(err));
    }
    if (!volume_mode_ok(sb.st_mode)) {
        close(fd);
        return hb_seterr(e, HARVBK_E_INVALID,
                         "%s at '%s' is %s, not a regular file or block device", what, path,
                         file_kind(sb.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        return hb_seterr(e, hb_errno_code(err), "cannot open %s at '%s': fcntl: %s", what, path,
                         strerror(err));
    }
    return fd;
}

int hb_check_volume_fd(int fd, const char *what, hb_err *e)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return hb_seterr(e, hb_errno_code(errno), "%s: cannot stat the descriptor: %s",
                         what ? what : "volume", strerror(errno));
    if (!volume_mode_ok(sb.st_mode))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "%s: the descriptor is %s, not a regular file or block device",
                         what ? what : "volume", file_kind(sb.st_mode));
    return 0;
}

/* rename that fails with EEXIST instead of replacing */
int hb_rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    if (link(from, to) != 0) /* filesystems without renameat2 flags */
        return -1;
    unlink(from);
    return 0;
}

int hb_lock_file(const char *dir, const char *file, bool block, int *out_fd, hb_err *e)
{
    *out_fd = -1;
    char *path = hb_path_join(dir, file);
    int rc = path ? hb_mkdir_p(dir, 0700, e) : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int fd = -1;
    if (rc == 0 && (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        rc = hb_seterr(e, hb_errno_code(errno), "cannot open lock '%s': %s", path,
                       strerror(errno));
    while (rc == 0 && flock(fd, LOCK_EX | (block ? 0 : LOCK_NB)) != 0) {
        if (errno == EINTR)
            continue;
        rc = errno == EWOULDBLOCK
                 ? hb_seterr(e, HARVBK_E_BUSY, "'%s' is locked by another process", path)
                 : hb_seterr(e, hb_errno_code(errno), "cannot lock '%s': %s", path,
                             strerror(errno));
    }
    if (rc && fd >= 0)
        close(fd);
    else if (rc == 0)
        *out_fd = fd;
    hb_free(path);
    return rc;
}

/* ---- reflink copies (the freeze window's "reflink" capture) ---- */

/* Where a clone of the file behind `path` goes: the directory of the file
 * itself (symbolic links resolved), where FICLONE can share its extents. */
static char *clone_dir(const char *path)
{
    char *real = realpath(path, NULL);
    const char *p = real ? real : path;
    const char *slash = strrchr(p, '/');
    char *dir;
    if (!slash)
        dir = hb_strdup(".");
    else if (slash == p)
        dir = hb_strdup("/");
    else
        dir = hb_strndup(p, (size_t)(slash - p));
    free(real); /* realpath allocates with malloc */
    return dir;
}

int hb_reflink_clone(int src_fd, const char *path, int *out_fd, hb_err *e)
{
    *out_fd = -1;
#ifdef FICLONE
    struct stat sb;
    if (fstat(src_fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return hb_seterr(e, HARVBK_E_UNSUPPORTED, "not a regular file");
    char *dir = clone_dir(path);
    if (!dir)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    /* invisible, and gone with its last descriptor (also when we crash) */
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    int err = errno;
    if (fd < 0 && (err == EOPNOTSUPP || err == EISDIR || err == EINVAL)) {
        /* no O_TMPFILE here: a hidden name, unlinked at once (a crash in
         * between leaves an empty file) */
        char *tmpl = hb_asprintf("%s/.harvbk-capture-XXXXXX", dir);
        if (!tmpl) {
            hb_free(dir);
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
        fd = mkostemp(tmpl, O_CLOEXEC);
        err = errno;
        if (fd >= 0)
            unlink(tmpl);
        hb_free(tmpl);
    }
    if (fd < 0) {
        hb_seterr(e, HARVBK_E_UNSUPPORTED, "cannot create a file in '%s': %s", dir,
                  strerror(err));
        hb_free(dir);
        return HARVBK_E_UNSUPPORTED;
    }
    if (ioctl(fd, FICLONE, src_fd) != 0) {
        err = errno;
        close(fd);
        hb_seterr(e, HARVBK_E_UNSUPPORTED, "FICLONE into '%s' failed: %s", dir, strerror(err));
        hb_free(dir);
        return HARVBK_E_UNSUPPORTED;
    }
    hb_free(dir);
    *out_fd = fd;
    return 0;
#else
    (void)src_fd;
    (void)path;
    return hb_seterr(e, HARVBK_E_UNSUPPORTED, "reflinks (FICLONE) are not supported here");
#endif
}
