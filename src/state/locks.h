/* state/locks.h - the flocks of the state directory (locks.c). */
#ifndef HB_STATE_LOCKS_H
#define HB_STATE_LOCKS_H

#include "state.h"

/* Record locks: an exclusive flock on <state>/locks/<ns>_<name>.lock held by
 * the process that writes the backup. 0 with *out_fd, HARVBK_E_BUSY when
 * another open file holds it. */
int hb_reclock_try(hb_state *s, const char *ns, const char *name, int *out_fd, hb_err *e);
void hb_reclock_release(hb_state *s, const char *ns, const char *name, int fd);
/* Reading a backup (restore, verify) holds a shared flock on
 * <state>/locks/<ns>_<name>.read.lock, deleting it an exclusive one, so that
 * no process on the state directory deletes a backup another one reads.
 * HARVBK_E_BUSY when the other kind holds it. */
int hb_readlock_try(hb_state *s, const char *ns, const char *name, bool exclusive, int *out_fd,
                    hb_err *e);
void hb_readlock_release(hb_state *s, const char *ns, const char *name, bool exclusive, int fd);
/* The same per entry kind (snapshots: <ns>_<name>.snap.lock, .snap.read.lock). */
int hb_reclock_try_k(hb_state *s, int kind, const char *ns, const char *name, int *out_fd,
                     hb_err *e);
void hb_reclock_release_k(hb_state *s, int kind, const char *ns, const char *name, int fd);
int hb_readlock_try_k(hb_state *s, int kind, const char *ns, const char *name, bool exclusive,
                      int *out_fd, hb_err *e);
void hb_readlock_release_k(hb_state *s, int kind, const char *ns, const char *name,
                           bool exclusive, int fd);
/* The same for a restore into new VM ns/name: <state>/locks/<ns>_<name>.restore.lock,
 * held by the process restoring into that VM (HARVBK_E_BUSY when held). */
int hb_restore_lock_try(hb_state *s, const char *ns, const char *name, int *out_fd, hb_err *e);
void hb_restore_lock_release(hb_state *s, const char *ns, const char *name, int fd);

#endif
