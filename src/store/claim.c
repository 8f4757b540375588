/*
 * store/claim.c - claiming an entry name before writing it (docs/FORMAT.md
 * section 9, "Claims").
 *
 * Two clusters sharing a target may create the same <kind>/<ns>/<name> at the
 * same instant. Its keys (indexes, manifest) are shared, and S3 has no
 * portable "create if absent", so exactly one writer must win the name before
 * anything is written under it. A writer publishes a claim object with a key
 * of its own, "<kind>/<ns>/<name>/claims/<owner>.<8 hex>.json", then lists
 * the entry's folder:
 *   - a manifest there: the entry exists; withdraw, HARVBK_E_EXISTS;
 *   - no live claim of anyone else: the name is ours;
 *   - otherwise withdraw (delete the claim), wait a random moment and look
 *     again: still a live claim or a manifest: HARVBK_E_EXISTS; none: try
 *     again (two writers that saw each other both withdrew).
 * A winner listed after its claim was visible, and keeps its claim until its
 * manifest exists, so any later claimant sees it (or the manifest) and
 * withdraws: at most one writer wins. Before committing, the winner checks
 * that its claim is still there and no manifest appeared; after its writer
 * lease lapsed (others may have taken its claim for dead) also that no other
 * live claim exists.
 * A claim is live while its holder's writer lease is live or it is younger
 * than the lease TTL, unless it names a dead process of this host. Deleting
 * an entry claims it too (without the checks), so a creator never writes
 * under a name while its old objects are being removed.
 */
#include "../core/json.h"
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_DIR "claims/"
#define CLAIM_SUFFIX ".json"
#define CLAIM_OBJECT_MAX (64u * 1024u)
#define CLAIM_ROUNDS 6

struct hb_claim {
    hb_store *st;
    char *key;
    char *prefix; /* "<kind>/<ns>/<name>/" */
    char *mkey;   /* its manifest */
    char *owner;
};

typedef struct claim_scan {
    const char *prefix;
    const char *self;    /* our claim key, or NULL */
    bool manifest;
    char **others;       /* claim keys of others */
    int64_t *mtimes;
    size_t n, cap;
} claim_scan;

static void scan_clear(claim_scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        hb_free(s->others[i]);
    hb_free(s->others);
    hb_free(s->mtimes);
    s->others = NULL;
    s->mtimes = NULL;
    s->n = s->cap = 0;
    s->manifest = false;
}

static bool is_claim_key(const char *prefix, const char *key)
{
    size_t pl = strlen(prefix), cl = strlen(CLAIM_DIR), sl = strlen(CLAIM_SUFFIX);
    size_t kl = strlen(key);
    return kl > pl + cl + sl && strncmp(key, prefix, pl) == 0 &&
           strncmp(key + pl, CLAIM_DIR, cl) == 0 && strchr(key + pl + cl, '/') == NULL &&
           strcmp(key + kl - sl, CLAIM_SUFFIX) == 0;
}

static int scan_one(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)size;
    claim_scan *s = ud;
    size_t pl = strlen(s->prefix);
    if (strncmp(key, s->prefix, pl) != 0)
        return 0;
    if (strcmp(key + pl, "manifest.json") == 0) {
        s->manifest = true;
        return 0;
    }
    if (!is_claim_key(s->prefix, key) || (s->self && strcmp(key, s->self) == 0))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        char **o = hb_realloc(s->others, cap * sizeof *o);
        if (!o)
            return HARVBK_E_NOMEM;
        s->others = o;
        int64_t *m = hb_realloc(s->mtimes, cap * sizeof *m);
        if (!m)
            return HARVBK_E_NOMEM;
        s->mtimes = m;
        s->cap = cap;
    }
    if (!(s->others[s->n] = hb_strdup(key)))
        return HARVBK_E_NOMEM;
    s->mtimes[s->n++] = mtime;
    return 0;
}

static int scan(hb_store *st, const char *prefix, const char *self, claim_scan *s, hb_err *e)
{
    scan_clear(s);
    s->prefix = prefix;
    s->self = self;
    int rc = hb_target_list(st->t, prefix, scan_one, s, e);
    if (rc == HARVBK_E_NOMEM)
        hb_seterr(e, rc, "out of memory listing %s", prefix);
    return rc;
}

/* Is the claim at key live? 1 live, 0 stale or gone, < 0 error. The holder's
 * owner (for messages) goes into who. */
static int claim_live(hb_store *st, const char *key, int64_t mtime, char *who, size_t whosz,
                      hb_err *e)
{
    hb_buf b = HB_BUF_INIT;
    int rc = hb_target_get_max(st->t, key, &b, CLAIM_OBJECT_MAX, e);
    int64_t now = hb_now();
    snprintf(who, whosz, "?");
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        hb_buf_free(&b);
        return 0;
    }
    if (rc == HARVBK_E_CORRUPT) { /* not ours: judged by its age */
        hb_err_clear(e);
        hb_buf_free(&b);
        return mtime == 0 || mtime >= now - HB_LEASE_TTL_S;
    }
    if (rc) {
        hb_buf_free(&b);
        return rc;
    }
    cJSON *root = NULL;
    hb_err pe;
    const char *owner = NULL;
    int64_t created = 0;
    bool parsed = hb_json_parse(b.data, b.len, "claim", &root, &pe) == 0 &&
                  cJSON_IsObject(root) &&
                  hb_json_get_str(root, "owner", true, &owner, "claim", &pe) == 0 &&
                  hb_json_get_i64(root, "created", true, &created, "claim", &pe) == 0 && owner;
    int live;
    if (!parsed) {
        live = mtime == 0 || mtime >= now - HB_LEASE_TTL_S;
    } else {
        snprintf(who, whosz, "%s", owner);
        if (hb_lease_ident_dead(root)) {
            live = 0;
        } else if (created >= now - HB_LEASE_TTL_S && created <= now + HB_LEASE_TTL_S) {
            live = 1;
        } else {
            bool lease_live = false;
            rc = hb_lease_owner_live(st, "writer", owner, &lease_live, e);
            live = rc ? rc : lease_live;
        }
    }
    cJSON_Delete(root);
    hb_buf_free(&b);
    return live;
}

/* Count the live claims among s->others; remove the stale ones when asked. */
static int count_live(hb_store *st, const claim_scan *s, bool remove_stale, unsigned *out,
                      char *who, size_t whosz, hb_err *e)
{
    *out = 0;
    for (size_t i = 0; i < s->n; i++) {
        char w[160];
        int l = claim_live(st, s->others[i], s->mtimes[i], w, sizeof w, e);
        if (l < 0)
            return l;
        if (l) {
            if (*out == 0)
                snprintf(who, whosz, "%s", w);
            (*out)++;
        } else if (remove_stale) {
            hb_err ignore;
            hb_err_clear(&ignore);
            hb_target_del(st->t, s->others[i], &ignore);
        }
    }
    return 0;
}

static int claim_put(hb_claim *c, hb_err *e)
{
    uint8_t rnd[4];
    char hex[9];
    hb_random(rnd, sizeof rnd);
    hb_hex(rnd, sizeof rnd, hex);
    hb_free(c->key);
    c->key = hb_asprintf("%s" CLAIM_DIR "%s.%s" CLAIM_SUFFIX, c->prefix, c->owner, hex);
    if (!c->key)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    cJSON *root = cJSON_CreateObject();
    bool ok = root && cJSON_AddStringToObject(root, "owner", c->owner) &&
              cJSON_AddNumberToObject(root, "created", (double)hb_now()) &&
              hb_lease_ident_add(root) == 0;
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot encode a claim");
    int rc = hb_target_put(c->st->t, c->key, text, strlen(text), e);
    hb_free(text);
    return rc;
}

static void claim_withdraw(hb_claim *c)
{
    if (!c->key)
        return;
    hb_err e;
    hb_err_clear(&e);
    if (hb_target_del(c->st->t, c->key, &e) != 0)
        hb_log_warn(c->st->log, "cannot remove the claim %s (it expires in %d s): %s", c->key,
                    HB_LEASE_TTL_S, e.msg);
    hb_free(c->key);
    c->key = NULL;
}

static void claim_free(hb_claim *c)
{
    if (!c)
        return;
    hb_free(c->key);
    hb_free(c->prefix);
    hb_free(c->mkey);
    hb_free(c->owner);
    hb_free(c);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int claim_new(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                     const char *owner, hb_claim **out, hb_err *e)
{
    *out = NULL;
    if (!kind_dir || !hb_name_valid(kind_dir) || !ns || !hb_name_valid(ns) || !name ||
        !hb_name_valid(name))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid entry name %s/%s", ns ? ns : "",
                         name ? name : "");
    if (!hb_lease_owner_valid(owner))
        return hb_seterr(e, HARVBK_E_INVALID, "invalid claim owner \"%s\"", owner ? owner : "");
    hb_claim *c = hb_calloc(1, sizeof *c);
    if (!c)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    c->st = st;
    c->prefix = hb_asprintf("%s/%s/%s/", kind_dir, ns, name);
    c->mkey = hb_key_manifest(kind_dir, ns, name);
    c->owner = hb_strdup(owner);
    if (!c->prefix || !c->mkey || !c->owner) {
        claim_free(c);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    *out = c;
    return 0;
}

int hb_store_claim(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                   const char *owner, hb_claim **out, hb_err *e)
{
    hb_claim *c = NULL;
    int rc = claim_new(st, kind_dir, ns, name, owner, &c, e);
    if (rc)
        return rc;
    claim_scan s;
    memset(&s, 0, sizeof s);
    char who[160] = "?";
    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        if ((rc = claim_put(c, e)))
            break;
        if ((rc = scan(st, c->prefix, c->key, &s, e)))
            break;
        if (s.manifest) {
            rc = HARVBK_E_EXISTS;
            break;
        }
        unsigned live = 0;
        if ((rc = count_live(st, &s, true, &live, who, sizeof who, e)))
            break;
        if (live == 0) {
            scan_clear(&s);
            *out = c;
            return 0;
        }
        /* someone else claims it too: withdraw, then look again */
        claim_withdraw(c);
        uint8_t r;
        hb_random(&r, 1);
        sleep_ms(20u + (unsigned)r * (unsigned)(round + 1));
        if ((rc = scan(st, c->prefix, NULL, &s, e)))
            break;
        if (s.manifest) {
            rc = HARVBK_E_EXISTS;
            break;
        }
        if ((rc = count_live(st, &s, false, &live, who, sizeof who, e)))
            break;
        if (live) {
            rc = hb_seterr(e, HARVBK_E_EXISTS,
                           "%.*s is being created by another writer (%s)",
                           (int)strlen(c->prefix) - 1, c->prefix, who);
            break;
        }
        rc = hb_seterr(e, HARVBK_E_EXISTS, "%.*s: could not claim the name (contended)",
                       (int)strlen(c->prefix) - 1, c->prefix);
    }
    if (rc == HARVBK_E_EXISTS && s.manifest)
        hb_seterr(e, rc, "%.*s already exists", (int)strlen(c->prefix) - 1, c->prefix);
    scan_clear(&s);
    claim_withdraw(c);
    claim_free(c);
    return rc;
}

int hb_store_claim_confirm(hb_claim *c, bool strict, hb_err *e)
{
    uint64_t size;
    int rc = hb_target_head(c->st->t, c->key, &size, e);
    if (rc == HARVBK_E_NOTFOUND)
        return hb_seterr(e, HARVBK_E_EXISTS,
                         "%.*s: this writer's claim on the name was removed (taken for dead "
                         "while its lease had lapsed); not committing",
                         (int)strlen(c->prefix) - 1, c->prefix);
    if (rc)
        return rc;
    claim_scan s;
    memset(&s, 0, sizeof s);
    if ((rc = scan(c->st, c->prefix, c->key, &s, e)))
        goto out;
    if (s.manifest) {
        rc = hb_seterr(e, HARVBK_E_EXISTS, "%.*s was created by another writer meanwhile",
                       (int)strlen(c->prefix) - 1, c->prefix);
        goto out;
    }
    if (strict) {
        unsigned live = 0;
        char who[160] = "?";
        if ((rc = count_live(c->st, &s, false, &live, who, sizeof who, e)))
            goto out;
        if (live)
            rc = hb_seterr(e, HARVBK_E_EXISTS,
                           "%.*s is also claimed by another writer (%s) since this writer's "
                           "lease lapsed; not committing",
                           (int)strlen(c->prefix) - 1, c->prefix, who);
    }
out:
    scan_clear(&s);
    return rc;
}

void hb_store_claim_release(hb_claim *c)
{
    if (!c)
        return;
    claim_withdraw(c);
    claim_free(c);
}

/* ---- deleting an entry ---- */

int hb_store_claim_for_delete(hb_store *st, const char *kind_dir, const char *ns,
                              const char *name, const char *owner, hb_claim **out, hb_err *e)
{
    hb_claim *c = NULL;
    int rc = claim_new(st, kind_dir, ns, name, owner, &c, e);
    if (rc == 0 && (rc = claim_put(c, e)) != 0) {
        claim_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int hb_store_claim_others_live(hb_claim *c, unsigned *out, hb_err *e)
{
    claim_scan s;
    memset(&s, 0, sizeof s);
    char who[160];
    int rc = scan(c->st, c->prefix, c->key, &s, e);
    if (rc == 0)
        rc = count_live(c->st, &s, false, out, who, sizeof who, e);
    scan_clear(&s);
    return rc;
}

bool hb_store_key_is_claim(const char *entry_prefix, const char *key)
{
    return is_claim_key(entry_prefix, key);
}
