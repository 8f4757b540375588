/* tests/faultfs/faultfs.c - a pass-through FUSE file system over a backing
 * directory that fails chosen calls, for the tests of what the library does
 * when the disk under a store, a volume or a restore says EIO or ENOSPC.
 *
 * usage: harvbk_faultfs BACKING_DIR MOUNTPOINT   (runs in the foreground;
 * SIGTERM unmounts and exits)
 *
 * Control: the file "/.faultfs" at the root of the mount.
 *   - writing replaces the rules, one per line (an empty write clears them):
 *         OP ERRNO [after=N] [count=M] [path=SUBSTRING]
 *     OP is read, write, fsync (fsync and fdatasync), fsyncdir, create, mkdir,
 *     rename, unlink, open (an existing file), flush (close) or readdir (a
 *     directory listing); ERRNO is EIO,
 *     ENOSPC, EDQUOT or EROFS. The first N matching calls pass, then up to M
 *     (0: every later one) fail with ERRNO. path matches a substring of the
 *     path in the mount (of either end of a rename); a final '$' anchors it
 *     at the end.
 *   - reading gives "injected K\n": the calls failed since the last write.
 * Every call is served by the backing file system with the caller's flags;
 * no data is cached in between (direct_io), so an error reaches the caller
 * in the call it injects into.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE

#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#define CTL "/.faultfs"
#define MAX_RULES 16

enum { OP_READ, OP_WRITE, OP_FSYNC, OP_FSYNCDIR, OP_CREATE, OP_MKDIR, OP_RENAME, OP_UNLINK,
       OP_OPEN, OP_FLUSH, OP_READDIR, OP_N };
static const char *const op_names[OP_N] = { "read", "write", "fsync", "fsyncdir", "create",
                                            "mkdir", "rename", "unlink", "open", "flush",
                                            "readdir" };

typedef struct rule {
    int op, err;
    unsigned long after, count, seen, hit;
    char path[256];
} rule;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rule rules[MAX_RULES];
static int nrules;
static unsigned long injected;
static int backing = -1; /* the backing directory */

/* pattern in path, or with a final '$' at its end */
static bool path_match(const char *pattern, const char *path)
{
    size_t n = strlen(pattern), len = strlen(path);
    if (n && pattern[n - 1] == '$')
        return len >= n - 1 && !strncmp(path + len - (n - 1), pattern, n - 1);
    return strstr(path, pattern) != NULL;
}

/* 0, or the errno to fail this call with; to: a rename's destination (a
 * rule's path may name either end) */
static int fault2(int op, const char *path, const char *to)
{
    int err = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nrules && !err; i++) {
        rule *r = &rules[i];
        if (r->op != op || (r->path[0] && !path_match(r->path, path) &&
                            !(to && path_match(r->path, to))))
            continue;
        if (r->seen++ < r->after)
            continue;
        if (r->count && r->hit >= r->count)
            continue;
        r->hit++;
        injected++;
        err = r->err;
    }
    pthread_mutex_unlock(&mu);
    return err;
}

static int fault(int op, const char *path)
{
    return fault2(op, path, NULL);
}

static int parse_rules(const char *text, size_t len)
{
    rule nr[MAX_RULES];
    int n = 0;
    char *copy = strndup(text, len);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char op[32], err[32];
        int used = 0;
        if (sscanf(line, "%31s %31s%n", op, err, &used) < 2) {
            if (strspn(line, " \t\r") == strlen(line))
                continue;
            rc = -EINVAL;
            break;
        }
        if (n == MAX_RULES) {
            rc = -E2BIG;
            break;
        }
        rule *r = &nr[n];
        memset(r, 0, sizeof *r);
        r->op = -1;
        for (int k = 0; k < OP_N; k++)
            if (strcmp(op, op_names[k]) == 0)
                r->op = k;
        r->err = !strcmp(err, "EIO") ? EIO : !strcmp(err, "ENOSPC") ? ENOSPC
               : !strcmp(err, "EDQUOT") ? EDQUOT : !strcmp(err, "EROFS") ? EROFS : 0;
        if (r->op < 0 || !r->err) {
            rc = -EINVAL;
            break;
        }
        char *tsave = NULL;
        for (char *tok = strtok_r(line + used, " \t\r", &tsave); tok;
             tok = strtok_r(NULL, " \t\r", &tsave)) {
            if (!strncmp(tok, "after=", 6))
                r->after = strtoul(tok + 6, NULL, 10);
            else if (!strncmp(tok, "count=", 6))
                r->count = strtoul(tok + 6, NULL, 10);
            else if (!strncmp(tok, "path=", 5))
                snprintf(r->path, sizeof r->path, "%s", tok + 5);
            else
                rc = -EINVAL;
        }
        n++;
    }
    free(copy);
    if (rc == 0) {
        pthread_mutex_lock(&mu);
        memcpy(rules, nr, sizeof nr[0] * (size_t)n);
        nrules = n;
        injected = 0;
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

/* the backing path of a mount path: relative to the backing directory */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

#define ERR(x) ((x) < 0 ? -errno : 0)

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL)) {
        memset(st, 0, sizeof *st);
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        return 0;
    }
    if (fi && fi->fh)
        return ERR(fstat((int)fi->fh, st));
    return ERR(fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int ff_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(backing, rel(path), buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static int ff_mkdir(const char *path, mode_t mode)
{
    int err = fault(OP_MKDIR, path);
    return err ? -err : ERR(mkdirat(backing, rel(path), mode));
}

static int ff_unlink(const char *path)
{
    int err = fault(OP_UNLINK, path);
    return err ? -err : ERR(unlinkat(backing, rel(path), 0));
}

static int ff_rmdir(const char *path)
{
    return ERR(unlinkat(backing, rel(path), AT_REMOVEDIR));
}

static int ff_symlink(const char *target, const char *path)
{
    return ERR(symlinkat(target, backing, rel(path)));
}

static int ff_rename(const char *from, const char *to, unsigned int flags)
{
    int err = fault2(OP_RENAME, from, to);
    if (err)
        return -err;
    return ERR(renameat2(backing, rel(from), backing, rel(to), flags));
}

static int ff_link(const char *from, const char *to)
{
    return ERR(linkat(backing, rel(from), backing, rel(to), 0));
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (fi && fi->fh)
        return ERR(fchmod((int)fi->fh, mode));
    return ERR(fchmodat(backing, rel(path), mode, 0));
}

static int ff_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (fi && fi->fh)
        return ERR(fchown((int)fi->fh, uid, gid));
    return ERR(fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL))
        return 0;
    if (fi && fi->fh)
        return ERR(ftruncate((int)fi->fh, size));
    int fd = openat(backing, rel(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ERR(ftruncate(fd, size));
    close(fd);
    return rc;
}

static int ff_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    if (fi && fi->fh)
        return ERR(futimens((int)fi->fh, tv));
    return ERR(utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int open_common(const char *path, int flags, mode_t mode, bool create,
                       struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL)) {
        fi->fh = 0;
        fi->direct_io = 1;
        return 0;
    }
    int err = fault(create ? OP_CREATE : OP_OPEN, path);
    if (err)
        return -err;
    /* not O_DIRECT on the backing file: the kernel already talks to us
     * uncached, and our buffers need not have its alignment */
    flags &= ~O_DIRECT;
    int fd = create ? openat(backing, rel(path), flags | O_CLOEXEC, mode)
                    : openat(backing, rel(path), flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    fi->fh = (uint64_t)fd;
    fi->direct_io = 1;
    return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
    return open_common(path, fi->flags, 0, false, fi);
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    return open_common(path, fi->flags | O_CREAT, mode, true, fi);
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL)) {
        char text[64];
        pthread_mutex_lock(&mu);
        int n = snprintf(text, sizeof text, "injected %lu\n", injected);
        pthread_mutex_unlock(&mu);
        if (off >= n)
            return 0;
        size_t k = (size_t)(n - off) < size ? (size_t)(n - off) : size;
        memcpy(buf, text + off, k);
        return (int)k;
    }
    int err = fault(OP_READ, path);
    if (err)
        return -err;
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    if (!strcmp(path, CTL)) {
        int rc = parse_rules(buf, size);
        return rc < 0 ? rc : (int)size;
    }
    int err = fault(OP_WRITE, path);
    if (err)
        return -err;
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int ff_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return ERR(fstatvfs(backing, st));
}

static int ff_flush(const char *path, struct fuse_file_info *fi)
{
    (void)fi;
    int err = strcmp(path, CTL) ? fault(OP_FLUSH, path) : 0;
    return -err;
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh)
        close((int)fi->fh);
    return 0;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    int err = fault(OP_FSYNC, path);
    if (err)
        return -err;
    if (!fi->fh)
        return 0;
    return ERR(datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh));
}

static int ff_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)flags;
    int err = fault(OP_READDIR, path);
    if (err)
        return -err;
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = de->d_ino;
        st.st_mode = (mode_t)DTTOIF(de->d_type);
        if (fill(buf, de->d_name, &st, 0, 0))
            break;
    }
    return 0;
}

static int ff_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int ff_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    int err = fault(OP_FSYNCDIR, path);
    if (err)
        return -err;
    int fd = dirfd((DIR *)(uintptr_t)fi->fh);
    return ERR(datasync ? fdatasync(fd) : fsync(fd));
}

static int ff_access(const char *path, int mask)
{
    if (!strcmp(path, CTL))
        return 0;
    return ERR(faccessat(backing, rel(path), mask, AT_SYMLINK_NOFOLLOW));
}

static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    int err = fault(OP_WRITE, path);
    if (err)
        return -err;
    return fallocate((int)fi->fh, mode, off, len) < 0 ? -errno : 0;
}

static off_t ff_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
    (void)path;
    off_t r = lseek((int)fi->fh, off, whence);
    return r < 0 ? -errno : r;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->entry_timeout = 0; /* every lookup reaches the backing directory */
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    return NULL;
}

static const struct fuse_operations ops = {
    .init = ff_init,
    .getattr = ff_getattr,
    .readlink = ff_readlink,
    .mkdir = ff_mkdir,
    .unlink = ff_unlink,
    .rmdir = ff_rmdir,
    .symlink = ff_symlink,
    .rename = ff_rename,
    .link = ff_link,
    .chmod = ff_chmod,
    .chown = ff_chown,
    .truncate = ff_truncate,
    .open = ff_open,
    .read = ff_read,
    .write = ff_write,
    .statfs = ff_statfs,
    .flush = ff_flush,
    .release = ff_release,
    .fsync = ff_fsync,
    .opendir = ff_opendir,
    .readdir = ff_readdir,
    .releasedir = ff_releasedir,
    .fsyncdir = ff_fsyncdir,
    .access = ff_access,
    .create = ff_create,
    .utimens = ff_utimens,
    .fallocate = ff_fallocate,
    .lseek = ff_lseek,
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT\n", argv[0]);
        return 2;
    }
    /* descriptors 0-2 open, so that no file's descriptor is 0 (the control
     * file's handle) */
    for (int fd = open("/dev/null", O_RDWR); fd >= 0 && fd <= 2; fd = open("/dev/null", O_RDWR))
        ;
    backing = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (backing < 0) {
        perror(argv[1]);
        return 1;
    }
    umask(0);
    char *fargv[] = { argv[0], "-f", "-o", "fsname=harvbk-faultfs,default_permissions,max_threads=16",
                      argv[2], NULL };
    return fuse_main(5, fargv, &ops, NULL);
}
