/*
 * store/lease.c - leases of writers and gc (docs/FORMAT.md "Concurrency").
 *
 * A lease is the object "locks/<role>-<owner>.json" holding a heartbeat that a
 * background thread rewrites every HB_LEASE_TTL_S/5 seconds. A lease whose
 * heartbeat is older than HB_LEASE_TTL_S belongs to a crashed holder and is
 * ignored. Leases are not mutual exclusion by themselves: the protocol
 * "publish your lease, then look for the other role" is what makes a writer
 * and gc see each other.
 */
#include "../core/fsutil.h"
#include "../core/json.h"
#include "../core/ticker.h"
#include "internal.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_PREFIX "locks/"
#define LEASE_SUFFIX ".json"
#define LEASE_WHAT "lease"
#define LEASE_PERIOD_S (HB_LEASE_TTL_S >= 5 ? HB_LEASE_TTL_S / 5 : 1)

int hb_lease_ttl_s = HB_LEASE_TTL_DEFAULT_S;
atomic_int hb_lease_test_stall;
#define LEASE_RETRY_S (HB_LEASE_TTL_S >= 25 ? 5 : 1)
#define LEASE_OWNER_MAX 128
#define LEASE_OBJECT_MAX (64u * 1024u) /* ours are about 200 bytes */

struct hb_lease {
    hb_store *st;
    char *key;
    char *role;
    char *owner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    uint64_t last_ok_ms; /* monotonic time of the last successful heartbeat write */
    bool lapsed;         /* two successful heartbeats were more than a TTL apart */
    uint64_t lapses;     /* lapses seen so far (each counted once) */
};

/* ---- who holds a lease: host, boot and pid namespace ----
 * A lease records the holder's pid with the identity of the place that pid
 * means something: the host name, the kernel's boot id and the pid namespace.
 * When all three are ours and no process has that pid, the holder is dead
 * (killed, crashed) and its lease is stale at once instead of after the TTL.
 * A pid that was reused makes a dead holder look alive: that only waits. */
typedef struct lease_ident {
    char host[256];
    char boot[64];
    char pidns[64];
} lease_ident;

static lease_ident ident;
static pthread_once_t ident_once = PTHREAD_ONCE_INIT;

static void ident_init(void)
{
    if (gethostname(ident.host, sizeof ident.host - 1) != 0)
        ident.host[0] = '\0';
    hb_buf b = HB_BUF_INIT;
    hb_err e;
    if (hb_read_file("/proc/sys/kernel/random/boot_id", &b, sizeof ident.boot - 1, &e) == 0 &&
        b.len) {
        memcpy(ident.boot, b.data, b.len);
        ident.boot[b.len] = '\0';
        ident.boot[strcspn(ident.boot, "\r\n")] = '\0';
    }
    hb_buf_free(&b);
    ssize_t n = readlink("/proc/self/ns/pid", ident.pidns, sizeof ident.pidns - 1);
    ident.pidns[n > 0 ? n : 0] = '\0';
}

static const lease_ident *my_ident(void)
{
    pthread_once(&ident_once, ident_init);
    return &ident;
}

static bool holder_dead(const char *host, const char *boot, const char *pidns, int64_t pid)
{
    const lease_ident *me = my_ident();
    if (!host || !boot || !pidns || !me->boot[0] || !me->pidns[0] || pid <= 0 ||
        pid > INT32_MAX)
        return false;
    if (strcmp(host, me->host) != 0 || strcmp(boot, me->boot) != 0 ||
        strcmp(pidns, me->pidns) != 0)
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int hb_lease_ident_add(cJSON *obj)
{
    const lease_ident *me = my_ident();
    bool ok = cJSON_AddNumberToObject(obj, "pid", (double)getpid()) != NULL &&
              cJSON_AddStringToObject(obj, "host", me->host) != NULL;
    if (ok && me->boot[0] && me->pidns[0])
        ok = cJSON_AddStringToObject(obj, "boot", me->boot) != NULL &&
             cJSON_AddStringToObject(obj, "pidns", me->pidns) != NULL;
    return ok ? 0 : HARVBK_E_NOMEM;
}

bool hb_lease_ident_dead(const cJSON *obj)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(obj, "host");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "boot");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "pidns");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "pid");
    if (!cJSON_IsString(h) || !cJSON_IsString(b) || !cJSON_IsString(n) || !cJSON_IsNumber(p))
        return false;
    double pid = p->valuedouble;
    if (pid < 1 || pid > INT32_MAX || pid != (double)(int64_t)pid)
        return false;
    return holder_dead(h->valuestring, b->valuestring, n->valuestring, (int64_t)pid);
}

bool hb_lease_owner_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > LEASE_OWNER_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static int lease_write(hb_lease *l, hb_err *e)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "role", l->role) != NULL;
        ok &= cJSON_AddStringToObject(root, "owner", l->owner) != NULL;
        ok &= cJSON_AddNumberToObject(root, "heartbeat", (double)hb_now()) != NULL;
        ok &= hb_lease_ident_add(root) == 0;
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode a lease");
    int rc = hb_target_put(l->st->t, l->key, text, strlen(text), e);
    hb_free(text);
    return rc;
}

/* One heartbeat write (none while a test stalls heartbeats). */
static int heartbeat(hb_lease *l, hb_err *e)
{
    if (atomic_load(&hb_lease_test_stall))
        return hb_seterr(e, HARVBK_E_TARGET, "heartbeats stalled by a test");
    return lease_write(l, e);
}

/* A heartbeat was written; under l->mu. The process may have been stopped
 * (SIGSTOP, suspend) or the target unreachable for longer than a TTL: others
 * may have seen the lease as dead meanwhile, which counts as a lapse. */
static void heartbeat_landed(hb_lease *l)
{
    uint64_t now = hb_mono_ms();
    if (now - l->last_ok_ms > (uint64_t)HB_LEASE_TTL_S * 1000u) {
        l->lapsed = true;
        l->lapses++;
    }
    l->last_ok_ms = now;
}

static void *lease_main(void *arg)
{
    hb_lease *l = arg;
    int wait_s = LEASE_PERIOD_S;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += wait_s;
        while (!l->stop) {
            if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT)
                break;
        }
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        hb_err e;
        hb_err_clear(&e);
        int rc = heartbeat(l, &e);
        if (rc)
            hb_log_warn(l->st->log, "cannot refresh the %s lease of %s: %s", l->role, l->owner,
                        e.msg);
        wait_s = rc ? LEASE_RETRY_S : LEASE_PERIOD_S;
        pthread_mutex_lock(&l->mu);
        if (rc == 0)
            heartbeat_landed(l);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void lease_free(hb_lease *l)
{
    hb_free(l->key);
    hb_free(l->role);
    hb_free(l->owner);
    hb_free(l);
}

int hb_lease_acquire(hb_store *st, const char *role, const char *owner, hb_lease **out, hb_err *e)
{
    *out = NULL;
    if (!role || !hb_name_valid(role))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid lease role \"%s\"", role ? role : "");
    if (!hb_lease_owner_valid(owner))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid lease owner \"%s\"", owner ? owner : "");
    hb_lease *l = hb_calloc(1, sizeof *l);
    if (!l)
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory acquiring a lease");
    l->st = st;
    l->key = hb_asprintf(LEASE_PREFIX "%s-%s" LEASE_SUFFIX, role, owner);
    l->role = hb_strdup(role);
    l->owner = hb_strdup(owner);
    if (!l->key || !l->role || !l->owner) {
        lease_free(l);
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory acquiring a lease");
    }
    int rc = lease_write(l, e);
    if (rc) {
        lease_free(l);
        return hb_err_prefix(e, "cannot acquire the %s lease", role);
    }
    l->last_ok_ms = hb_mono_ms();
    bool sync_ok = hb_cond_init_mono(&l->cv) == 0;
    if (sync_ok && pthread_mutex_init(&l->mu, NULL) != 0) {
        pthread_cond_destroy(&l->cv);
        sync_ok = false;
    }
    if (!sync_ok || pthread_create(&l->thread, NULL, lease_main, l) != 0) {
        if (sync_ok) {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
        }
        hb_err ignore;
        hb_target_del(st->t, l->key, &ignore);
        lease_free(l);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot start the %s lease heartbeat thread", role);
    }
    *out = l;
    return 0;
}

int hb_lease_check(hb_lease *l, hb_err *e)
{
    pthread_mutex_lock(&l->mu);
    uint64_t age = hb_mono_ms() - l->last_ok_ms;
    bool lapsed = l->lapsed || age > (uint64_t)HB_LEASE_TTL_S * 1000u;
    pthread_mutex_unlock(&l->mu);
    if (lapsed)
        return hb_seterr(e, HARVBK_E_BUSY,
                         "the %s lease of %s lapsed (no heartbeat for more than %d s); "
                         "other clusters may have taken its holder for dead",
                         l->role, l->owner, HB_LEASE_TTL_S);
    return 0;
}

uint64_t hb_lease_lapses(hb_lease *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->lapses;
    if (hb_mono_ms() - l->last_ok_ms > (uint64_t)HB_LEASE_TTL_S * 1000u)
        n++; /* lapsing right now: counted when the next heartbeat lands */
    pthread_mutex_unlock(&l->mu);
    return n;
}

int hb_lease_renew(hb_lease *l, hb_err *e)
{
    int rc = heartbeat(l, e);
    if (rc)
        return hb_err_prefix(e, "cannot renew the %s lease of %s", l->role, l->owner);
    pthread_mutex_lock(&l->mu);
    heartbeat_landed(l);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void hb_lease_release(hb_lease *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    hb_err e;
    hb_err_clear(&e);
    if (hb_target_del(l->st->t, l->key, &e) != 0)
        hb_log_warn(l->st->log, "cannot remove the %s lease of %s (it expires in %d s): %s",
                    l->role, l->owner, HB_LEASE_TTL_S, e.msg);
    lease_free(l);
}

/* ---- counting ---- */

typedef struct lease_obj {
    char *key;
    int64_t mtime;
} lease_obj;

typedef struct lease_vec {
    lease_obj *v;
    size_t n, cap;
} lease_vec;

static int collect_lease(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    lease_vec *lv = ud;
    size_t kl = strlen(key), sl = strlen(LEASE_SUFFIX);
    if (kl <= sl || strcmp(key + kl - sl, LEASE_SUFFIX) != 0)
        return 0; /* temporaries and strays */
    if (lv->n == lv->cap) {
        size_t cap = lv->cap ? lv->cap * 2 : 8;
        lease_obj *v = hb_realloc(lv->v, cap * sizeof *v);
        if (!v)
            return HARVBK_E_NOMEM;
        lv->v = v;
        lv->cap = cap;
    }
    if (!(lv->v[lv->n].key = hb_strdup(key)))
        return HARVBK_E_NOMEM;
    lv->v[lv->n].mtime = mtime;
    lv->n++;
    return 0;
}

/* Decide whether one lease object is live: 1 live, 0 not (or ours). */
int hb_lease_object_live(const char *role, const char *self, const char *key_owner,
                         const void *data, size_t len, int64_t mtime, int64_t now)
{
    cJSON *root = NULL;
    hb_err pe;
    const char *r = NULL, *o = NULL;
    int64_t hb = 0;
    bool parsed = hb_json_parse(data, len, LEASE_WHAT, &root, &pe) == 0 &&
                  cJSON_IsObject(root) &&
                  hb_json_get_str(root, "role", true, &r, LEASE_WHAT, &pe) == 0 &&
                  hb_json_get_str(root, "owner", true, &o, LEASE_WHAT, &pe) == 0 &&
                  hb_json_get_i64(root, "heartbeat", true, &hb, LEASE_WHAT, &pe) == 0 && r && o;
    int live;
    if (parsed && (strcmp(r, role) != 0 || (self && strcmp(o, self) == 0))) {
        live = 0;
    } else if (parsed && hb_lease_ident_dead(root)) {
        live = 0; /* its holder is a dead process of this host */
    } else if (parsed && hb <= now + HB_LEASE_TTL_S) {
        /* (compared without computing now - hb: hb may be any 64-bit value) */
        live = hb >= now - HB_LEASE_TTL_S;
    } else {
        /* Unreadable, or a heartbeat further in the future than clocks may
         * disagree (garbage, or a holder whose clock was badly off): be
         * conservative but let it expire, judge by the object's age. */
        if (self && strcmp(key_owner, self) == 0)
            live = 0;
        else
            live = mtime == 0 || mtime >= now - HB_LEASE_TTL_S;
    }
    cJSON_Delete(root);
    return live;
}

int hb_lease_count_live(hb_store *st, const char *role, const char *self, unsigned *out,
                        hb_err *e)
{
    *out = 0;
    if (!role || !hb_name_valid(role))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid lease role \"%s\"", role ? role : "");
    char *prefix = hb_asprintf(LEASE_PREFIX "%s-", role);
    if (!prefix)
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory listing leases");
    lease_vec lv = { NULL, 0, 0 };
    int rc = hb_target_list(st->t, prefix, collect_lease, &lv, e);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(e, rc, "out of memory listing leases");
    size_t plen = strlen(prefix), slen = strlen(LEASE_SUFFIX);
    hb_buf b = HB_BUF_INIT;
    int64_t now = hb_now();
    unsigned live = 0;
    for (size_t i = 0; !rc && i < lv.n; i++) {
        const char *key = lv.v[i].key;
        int g = hb_target_get_max(st->t, key, &b, LEASE_OBJECT_MAX, e);
        if (g == HARVBK_E_NOTFOUND) {
            if (e)
                hb_err_clear(e);
            continue; /* released meanwhile */
        }
        if (g == HARVBK_E_CORRUPT) { /* far too large: unreadable, judged by age */
            if (e)
                hb_err_clear(e);
            hb_buf_reset(&b);
            g = 0;
        }
        if (g) {
            rc = g;
            break;
        }
        char owner[LEASE_OWNER_MAX + 1] = "";
        size_t kl = strlen(key);
        size_t ol = kl >= plen + slen ? kl - plen - slen : SIZE_MAX;
        if (ol <= LEASE_OWNER_MAX) {
            memcpy(owner, key + plen, ol);
            owner[ol] = '\0';
        }
        live += (unsigned)hb_lease_object_live(role, self, owner, b.data, b.len, lv.v[i].mtime, now);
    }
    for (size_t i = 0; i < lv.n; i++)
        hb_free(lv.v[i].key);
    hb_free(lv.v);
    hb_buf_free(&b);
    hb_free(prefix);
    if (!rc)
        *out = live;
    return rc;
}

int hb_lease_owner_live(hb_store *st, const char *role, const char *owner, bool *out, hb_err *e)
{
    *out = false;
    if (!role || !hb_name_valid(role) || !hb_lease_owner_valid(owner))
        return 0; /* no such lease can exist */
    char *key = hb_asprintf(LEASE_PREFIX "%s-%s" LEASE_SUFFIX, role, owner);
    if (!key)
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory reading a lease");
    hb_buf b = HB_BUF_INIT;
    int rc = hb_target_get_max(st->t, key, &b, LEASE_OBJECT_MAX, e);
    if (rc == HARVBK_E_NOTFOUND || rc == HARVBK_E_CORRUPT) {
        if (e)
            hb_err_clear(e);
        if (rc == HARVBK_E_CORRUPT) { /* too large to be ours: judged by its age */
            uint64_t size;
            rc = 0;
            *out = hb_target_head(st->t, key, &size, NULL) == 0;
        } else {
            rc = 0;
        }
    } else if (rc == 0) {
        *out = hb_lease_object_live(role, NULL, owner, b.data, b.len, 0, hb_now()) == 1;
    }
    hb_buf_free(&b);
    hb_free(key);
    return rc;
}
