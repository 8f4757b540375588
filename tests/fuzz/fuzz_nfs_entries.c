/* fuzz_nfs_entries - what an NFS server answers about names: directory
 * entries of READDIRPLUS as the listing walks them (hb_nfs_walk_entry, the
 * decision of target/nfs.c's walk for every entry), temporary names of the
 * cleanup (hb_tmp_owner_len) and the export list of a MOUNT EXPORT answer
 * (hb_nfs_exports_text).
 *
 * The server is simulated and hostile: the input's first line is the prefix
 * listed; then groups of entries separated by empty lines, one entry per line
 * "d NAME" (directory), "f NAME" (regular file) or "o NAME" (anything else).
 * A READDIR of a directory at depth D answers group D modulo the number of
 * groups, whatever the path, so a directory may contain itself forever, as
 * a server may claim. This harness walks like nfs.c does; the walk must
 * end (no deeper than a valid key) and hand out only valid keys. */
#include "fuzz.h"
#include "target/target.h"

#define MAX_ENTRIES 4096
#define MAX_VISITS 4000 /* entries looked at per run (a walk reaches depth 512 well within) */

typedef struct entry {
    char type;
    char *name;
} entry;

typedef struct server {
    entry *v;
    size_t n;
    size_t *group_start; /* ngroups + 1 */
    size_t ngroups;
    const char *prefix;
    size_t plen;
    unsigned long emitted, visits;
} server;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void walk(server *s, const char *rel, size_t depth)
{
    /* every level adds at least "x/" to the key: deeper than this no valid
     * key can be, and the walk must have stopped */
    FUZZ_CHECK(depth <= HB_KEY_MAX / 2);
    size_t g = depth % s->ngroups;
    size_t a = s->group_start[g], b = s->group_start[g + 1];
    for (size_t i = a; i < b; i++) {
        /* a tree that branches at every level is endless work for the
         * client, but no harm: stop simulating it */
        if (++s->visits > MAX_VISITS)
            return;
        const entry *x = &s->v[i];
        if (!strcmp(x->name, ".") || !strcmp(x->name, ".."))
            continue; /* dropped by readdir_fn */
        char *key = NULL;
        int what = hb_nfs_walk_entry(rel, x->name, x->type == 'd', x->type == 'f', s->prefix,
                                     s->plen, &key);
        FUZZ_CHECK(what == HB_WALK_SKIP || what == HB_WALK_DESCEND || what == HB_WALK_EMIT ||
                   what == HARVBK_E_NOMEM);
        FUZZ_CHECK((key != NULL) == (what == HB_WALK_DESCEND || what == HB_WALK_EMIT));
        if (what == HB_WALK_EMIT) {
            FUZZ_CHECK(x->type == 'f');
            FUZZ_CHECK(hb_key_valid(key));
            FUZZ_CHECK(strncmp(key, s->prefix, s->plen) == 0);
            FUZZ_CHECK(strncmp(key, rel, strlen(rel)) == 0 && !strcmp(key + strlen(rel), x->name));
            s->emitted++;
        } else if (what == HB_WALK_DESCEND) {
            FUZZ_CHECK(x->type == 'd');
            size_t kl = strlen(key);
            FUZZ_CHECK(kl > 0 && key[kl - 1] == '/');
            walk(s, key, depth + 1);
        }
        free(key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    server s;
    memset(&s, 0, sizeof s);
    s.v = calloc(MAX_ENTRIES, sizeof *s.v);
    s.group_start = calloc(MAX_ENTRIES + 2, sizeof *s.group_start);
    FUZZ_CHECK(s.v && s.group_start);
    char *save = NULL;
    char *line = text;
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    s.prefix = line;
    s.plen = strlen(line);
    hb_buf exports = HB_BUF_INIT;
    s.group_start[0] = 0;
    s.ngroups = 1;
    for (line = nl ? nl + 1 : NULL; line && s.n < MAX_ENTRIES; line = save) {
        nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (!*line) { /* a new group */
            if (s.group_start[s.ngroups - 1] != s.n)
                s.group_start[s.ngroups++] = s.n;
            continue;
        }
        if (strlen(line) < 3 || line[1] != ' ')
            continue;
        s.v[s.n].type = line[0];
        s.v[s.n].name = line + 2;
        /* names of the cleanup's tmp/ directory */
        size_t olen = hb_tmp_owner_len(line + 2);
        if (olen) {
            FUZZ_CHECK(olen + 4 <= strlen(line + 2));
            FUZZ_CHECK(line[2 + olen] == '-');
        }
        hb_buf_append_str(&exports, line + 2);
        hb_buf_append_str(&exports, "\n");
        s.n++;
    }
    s.group_start[s.ngroups] = s.n;
    /* each group is one directory answer: readdir_fn sorts it */
    for (size_t g = 0; g < s.ngroups; g++)
        qsort(s.v + s.group_start[g], s.group_start[g + 1] - s.group_start[g], sizeof *s.v,
              by_name);
    walk(&s, "", 0);

    bool under = false;
    char *ex = hb_nfs_exports_text(exports.len ? (char *)exports.data : "", s.prefix, &under);
    FUZZ_CHECK(ex != NULL);
    if (!s.n)
        FUZZ_CHECK(!strcmp(ex, "none") && !under);
    hb_free(ex);
    hb_buf_free(&exports);
    free(s.group_start);
    free(s.v);
    free(text);
    return 0;
}
