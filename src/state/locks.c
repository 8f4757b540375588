/*
 * state/locks.c - the flocks in "locks/" of the state directory: record locks
 * (held by the process writing a backup or snapshot), read locks (shared by
 * readers, exclusive for delete) and restore locks (held by the process
 * restoring into a new VM). The kernel drops a lock when its process dies,
 * which is how a later open tells an interrupted backup from a running one.
 */
#include "locks.h"
#include "../core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char *lock_path(hb_state *s, const char *ns, const char *name, const char *suffix)
{
    /* names are DNS labels, so '_' and '.' cannot occur in them: no ambiguity */
    char *file = hb_asprintf("%s_%s%s.lock", ns, name, suffix);
    char *p = file ? hb_state_path(s, HB_LOCKS_DIR, file, NULL) : NULL;
    hb_free(file);
    return p;
}

static int lock_try(hb_state *s, const char *path, int how, int *out_fd, const char *busy,
                    hb_err *e)
{
    *out_fd = -1;
    char *dir = hb_state_path(s, HB_LOCKS_DIR, NULL, NULL);
    int rc = (!dir || !path) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_mkdir_p(dir, 0700, e);
    /* The holder unlinks the file before closing it; whoever locked the old
     * inode sees that the path no longer names it and tries again. */
    for (int attempt = 0; rc == 0; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = hb_seterr(e, hb_errno_code(errno), "cannot open lock '%s': %s", path,
                           strerror(errno));
            break;
        }
        if (flock(fd, how | LOCK_NB) != 0) {
            int err = errno;
            close(fd);
            if (err == EWOULDBLOCK)
                rc = hb_seterr(e, HARVBK_E_BUSY, "%s", busy);
            else
                rc = hb_seterr(e, hb_errno_code(err), "cannot lock '%s': %s", path,
                               strerror(err));
            break;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            *out_fd = fd;
            break;
        }
        close(fd);
        if (attempt >= 16)
            rc = hb_seterr(e, HARVBK_E_BUSY, "%s (its lock keeps changing)", busy);
    }
    hb_free(dir);
    return rc;
}

static void lock_release(const char *path, int fd)
{
    if (fd < 0)
        return;
    if (path)
        unlink(path);
    close(fd);
}

/* Lock files of snapshots carry ".snap" so that a backup and a snapshot of
 * the same name never share one. */
static const char *kind_suffix(int kind, bool read)
{
    if (kind == HB_ENTRY_SNAPSHOT)
        return read ? ".snap.read" : ".snap";
    return read ? ".read" : "";
}

int hb_reclock_try(hb_state *s, const char *ns, const char *name, int *out_fd, hb_err *e)
{
    return hb_reclock_try_k(s, HB_ENTRY_BACKUP, ns, name, out_fd, e);
}

int hb_reclock_try_k(hb_state *s, int kind, const char *ns, const char *name, int *out_fd,
                     hb_err *e)
{
    char busy[200];
    snprintf(busy, sizeof busy, "%s %s/%s is being written by a running operation",
             hb_entry_word(kind), ns, name);
    char *path = lock_path(s, ns, name, kind_suffix(kind, false));
    int rc = lock_try(s, path, LOCK_EX, out_fd, busy, e);
    hb_free(path);
    return rc;
}

void hb_reclock_release(hb_state *s, const char *ns, const char *name, int fd)
{
    hb_reclock_release_k(s, HB_ENTRY_BACKUP, ns, name, fd);
}

void hb_reclock_release_k(hb_state *s, int kind, const char *ns, const char *name, int fd)
{
    if (fd < 0)
        return;
    char *path = lock_path(s, ns, name, kind_suffix(kind, false));
    lock_release(path, fd);
    hb_free(path);
}

int hb_readlock_try(hb_state *s, const char *ns, const char *name, bool exclusive,
                    int *out_fd, hb_err *e)
{
    return hb_readlock_try_k(s, HB_ENTRY_BACKUP, ns, name, exclusive, out_fd, e);
}

int hb_readlock_try_k(hb_state *s, int kind, const char *ns, const char *name,
                      bool exclusive, int *out_fd, hb_err *e)
{
    char busy[200];
    if (exclusive)
        snprintf(busy, sizeof busy, "%s %s/%s is being restored or verified",
                 hb_entry_word(kind), ns, name);
    else
        snprintf(busy, sizeof busy, "%s %s/%s is being deleted", hb_entry_word(kind), ns, name);
    char *path = lock_path(s, ns, name, kind_suffix(kind, true));
    int rc = lock_try(s, path, exclusive ? LOCK_EX : LOCK_SH, out_fd, busy, e);
    hb_free(path);
    return rc;
}

void hb_readlock_release(hb_state *s, const char *ns, const char *name, bool exclusive,
                         int fd)
{
    hb_readlock_release_k(s, HB_ENTRY_BACKUP, ns, name, exclusive, fd);
}

void hb_readlock_release_k(hb_state *s, int kind, const char *ns, const char *name,
                           bool exclusive, int fd)
{
    if (fd < 0)
        return;
    if (!exclusive) { /* other readers may hold the same file: only let go */
        close(fd);
        return;
    }
    char *path = lock_path(s, ns, name, kind_suffix(kind, true));
    lock_release(path, fd);
    hb_free(path);
}

int hb_restore_lock_try(hb_state *s, const char *ns, const char *name, int *out_fd,
                        hb_err *e)
{
    char busy[200];
    snprintf(busy, sizeof busy, "VM %s/%s is being restored by another process", ns, name);
    char *path = lock_path(s, ns, name, ".restore");
    int rc = lock_try(s, path, LOCK_EX, out_fd, busy, e);
    hb_free(path);
    return rc;
}

void hb_restore_lock_release(hb_state *s, const char *ns, const char *name, int fd)
{
    if (fd < 0)
        return;
    char *path = lock_path(s, ns, name, ".restore");
    lock_release(path, fd);
    hb_free(path);
}
