/* state/state.c - the state directory handle: where it is, paths in it,
 * entry kinds. */
#include "state.h"
#include "../core/fsutil.h"
#include "../store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
