/* state/state.c - the state directory handle: where it is, paths in it,
 * entry kinds. */
#include "state.h"
#include "../core/fsutil.h"
#include "../store/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hb_state_init(hb_state *s, const char *dir, hb_logger *log, hb_err *e)
{
    memset(s, 0, sizeof *s);
    char *abs = NULL;
    int rc = hb_mkdir_p(dir, 0700, e);
    if (rc == 0) {
        char *real = realpath(dir, NULL);
        if (!real)
            rc = hb_seterr(e, hb_errno_code(errno), "cannot resolve '%s': %s", dir,
                           strerror(errno));
        else if (!(abs = hb_strdup(real)))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        free(real);
    }
    /* 0700: what it holds (the catalog, records, a stored S3 secret, a
     * snapshot store) is the owner's alone; a directory made earlier by
     * someone else's mkdir (0755 under the usual umask) is made private */
    struct stat sb;
    if (rc == 0 && stat(abs, &sb) == 0 && (sb.st_mode & 077) && sb.st_uid == geteuid()) {
        if (chmod(abs, 0700) == 0)
            hb_log_warn(log, "state directory '%s' was accessible by group or others (mode "
                        "%03o): made private (0700)", abs, (unsigned)(sb.st_mode & 0777));
    }
    if (rc == 0 && access(abs, R_OK | W_OK | X_OK) != 0)
        rc = hb_seterr(e, hb_errno_code(errno), "state directory '%s' is not writable: %s", abs,
                       strerror(errno));
    if (rc) {
        hb_free(abs);
        return rc;
    }
    s->dir = abs;
    s->log = log;
    pthread_mutex_init(&s->cat_mu, NULL);
    pthread_mutex_init(&s->pend_mu, NULL);
    return 0;
}

void hb_state_fini(hb_state *s)
{
    if (!s->dir)
        return;
    while (s->pending) {
        hb_pending_owner *p = s->pending;
        s->pending = p->next;
        hb_free(p->owner);
        hb_free(p->store_id);
        hb_free(p);
    }
    pthread_mutex_destroy(&s->cat_mu);
    pthread_mutex_destroy(&s->pend_mu);
    hb_free(s->dir);
    memset(s, 0, sizeof *s);
}

char *hb_state_path(const hb_state *s, const char *a, const char *b, const char *c)
{
    if (!a)
        return hb_strdup(s->dir);
    if (!b)
        return hb_asprintf("%s/%s", s->dir, a);
    if (!c)
        return hb_asprintf("%s/%s/%s", s->dir, a, b);
    return hb_asprintf("%s/%s/%s/%s", s->dir, a, b, c);
}

const char *hb_entry_dir(int kind)
{
    return kind == HB_ENTRY_SNAPSHOT ? HB_KIND_SNAPSHOTS : HB_KIND_BACKUPS;
}

const char *hb_entry_word(int kind)
{
    return kind == HB_ENTRY_SNAPSHOT ? "snapshot" : "backup";
}

/* The walk of one namespace folder. */
static int walk_ns(const char *top, const char *ns, hb_state_walk_cb cb, void *ud)
{
    char *nsdir = hb_path_join(top, ns);
    if (!nsdir)
        return HARVBK_E_NOMEM;
    DIR *d = opendir(nsdir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char base[64];
        if (n <= 5 || n - 5 >= sizeof base || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        memcpy(base, de->d_name, n - 5);
        base[n - 5] = '\0';
        if (hb_name_valid(base))
            rc = cb(ns, base, ud);
    }
    if (d)
        closedir(d);
    hb_free(nsdir);
    return rc;
}

int hb_state_walk(const char *top, const char *only_ns, const char *what, hb_state_walk_cb cb,
                  void *ud, hb_err *e)
{
    if (!top)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (only_ns)
        return hb_name_valid(only_ns) ? walk_ns(top, only_ns, cb, ud) : 0;
    DIR *d = opendir(top);
    if (!d)
        return errno == ENOENT ? 0
                               : hb_seterr(e, hb_errno_code(errno), "cannot read %s: %s", what,
                                           strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (hb_name_valid(de->d_name))
            rc = walk_ns(top, de->d_name, cb, ud);
    closedir(d);
    return rc;
}
