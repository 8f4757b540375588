/*
 * test_e2e_restore_replace.c - restores through the harvbk CLI from both
 * sources (a backup in a file:// target, a snapshot in the local store):
 * new VMs (bytes identical, metadata rewritten) and replacing an existing,
 * powered-off VM (delete and retain policies, retained files under their
 * documented names), and every refusal rule with its dedicated error: running
 * VM, existing name, cross-namespace snapshot, delete policy on a snapshot,
 * keep-mac with the source VM alive, replacing a VM the source was not taken
 * of, delete during a restore, a second restore of a VM being restored.
 */
#include "e2e_snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * E2E_KiB)

static const char META[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"
    "\"web\",\"namespace\":\"ns1\",\"uid\":\"1234\"},\"spec\":{\"template\":{\"spec\":{"
    "\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"nic0\",\"macAddress\":"
    "\"52:54:00:ab:cd:ef\"}]}},\"volumes\":[{\"name\":\"root\",\"persistentVolumeClaim\":"
    "{\"claimName\":\"web-root\"}},{\"name\":\"data\",\"persistentVolumeClaim\":{\"claimName\":"
    "\"web-data\"}}]}}}}";

typedef struct fx {
    e2e_world w;
    char *root, *data;          /* the VM's disks */
    char *root0, *data0;        /* their content when b1 and s1 were taken */
    char *meta;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "rrep", "", CHUNK);
    e2e_ok(f->w.state, "snapshot", "store", "--chunk-size", "64K", NULL);
    f->root = e2e_path(f->w.work, "web-root.img");
    f->data = e2e_path(f->w.work, "web-data.img");
    f->root0 = e2e_path(f->w.work, "web-root.orig");
    f->data0 = e2e_path(f->w.work, "web-data.orig");
    f->meta = e2e_path(f->w.work, "web.json");
    e2e_make_random(f->root, 6 * E2E_MiB + 5, 1);
    e2e_make_text(f->data, 2 * E2E_MiB, 2);
    e2e_copy_file(f->root, f->root0);
    e2e_copy_file(f->data, f->data0);
    e2e_write_file(f->meta, META, strlen(META));
    char *a = e2e_strf("root=%s", f->root), *b = e2e_strf("data=%s", f->data);
    e2e_ok(f->w.state, "vm", "add", "ns1/web", "--disk", a, "--disk", b, "--metadata", f->meta,
           NULL);
    e2e_ok(f->w.state, "backup", "create", "ns1/web", "--name", "b1", NULL);
    e2e_ok(f->w.state, "snapshot", "create", "ns1/web", "--name", "s1", NULL);
    free(a);
    free(b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    e2e_kill_children();
    e2e_world_free(&f->w);
    free(f->root);
    free(f->data);
    free(f->root0);
    free(f->data0);
    free(f->meta);
    free(f);
    return 0;
}

static int after_each(void **state)
{
    (void)state;
    e2e_kill_children();
    return 0;
}

/* Run and expect a one-line failure naming the error. */
static void refused(const char *state, const char *code, const char *const *args)
{
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    e2e_assert_fails_1line(&r);
    e2e_assert_exit(&r, 1);
    if (!strstr(r.err, code)) {
        e2e_res_print(&r);
        fail_msg("expected %s", code);
    }
    e2e_res_free(&r);
}

static cJSON *vm_meta(const char *state, const char *nsvm)
{
    e2e_res r;
    e2e_run(&r, state, "vm", "show", nsvm, "--metadata", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    e2e_res_free(&r);
    assert_non_null(j);
    return j;
}

static const char *path_str(cJSON *j, const char *const *path)
{
    for (; *path && j; path++)
        j = (**path >= '0' && **path <= '9') ? cJSON_GetArrayItem(j, atoi(*path))
                                             : cJSON_GetObjectItemCaseSensitive(j, *path);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* Remove the "*.retained-*" files of dir; returns how many there were. */
static size_t remove_retained(const char *dir)
{
    size_t n = 0, k = 0;
    char **v = e2e_list_files(dir, &n);
    for (size_t i = 0; i < n; i++) {
        if (!strstr(v[i], ".retained-"))
            continue;
        char *p = e2e_path(dir, v[i]);
        unlink(p);
        free(p);
        k++;
    }
    e2e_strv_free(v);
    return k;
}

static void test_new_vm_from_both_sources(void **state)
{
    fx *f = *state;
    static const char *const srcs[2][3] = { { NULL, "ns1/b1", "nb" },
                                            { "--snapshot", "ns1/s1", "ns" } };
    for (int k = 0; k < 2; k++) {
        char *vm = e2e_strf("ns1/copy-%s", srcs[k][2]);
        char *dir = e2e_strf("%s/copy-%s", f->w.work, srcs[k][2]);
        e2e_res r;
        if (srcs[k][0])
            e2e_run(&r, f->w.state, "restore", srcs[k][0], srcs[k][1], "--new-vm", vm, "--into",
                    dir, NULL);
        else
            e2e_run(&r, f->w.state, "restore", srcs[k][1], "--new-vm", vm, "--into", dir, NULL);
        e2e_assert_ok(&r);
        assert_true(e2e_icontains(r.out, "Ready"));
        e2e_res_free(&r);
        char *o1 = e2e_path(dir, "root.raw"), *o2 = e2e_path(dir, "data.raw");
        e2e_assert_same_file(f->root0, o1);
        e2e_assert_same_file(f->data0, o2);
        /* the metadata names the new VM and its volumes, and has no MAC */
        cJSON *j = vm_meta(f->w.state, vm);
        const char *name[] = { "metadata", "name", NULL };
        const char *claim[] = { "spec", "template", "spec", "volumes", "0",
                                "persistentVolumeClaim", "claimName", NULL };
        const char *mac[] = { "spec", "template", "spec", "domain", "devices", "interfaces", "0",
                              "macAddress", NULL };
        const char *uid[] = { "metadata", "uid", NULL };
        assert_string_equal(path_str(j, name), vm + 4);
        char *want = e2e_strf("%s-root", vm + 4);
        assert_string_equal(path_str(j, claim), want);
        assert_null(path_str(j, mac));
        assert_null(path_str(j, uid));
        cJSON_Delete(j);
        free(want);
        free(o1);
        free(o2);
        free(vm);
        free(dir);
    }
    /* a backup may be restored into another namespace */
    char *dir = e2e_path(f->w.work, "copy-x");
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", "ns2/web", "--into", dir, NULL);
    cJSON *j = vm_meta(f->w.state, "ns2/web");
    const char *ns[] = { "metadata", "namespace", NULL };
    assert_string_equal(path_str(j, ns), "ns2");
    cJSON_Delete(j);
    free(dir);
}

static void test_replace_from_both_sources(void **state)
{
    fx *f = *state;
    e2e_ok(f->w.state, "vm", "set-power", "ns1/web", "off", NULL);

    /* from the backup, default policy delete: old volumes gone, no leftovers */
    e2e_write_random_at(f->root, 0, 3 * E2E_MiB, 50);
    e2e_write_random_at(f->data, E2E_MiB, 100, 51);
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--replace", "ns1/web", NULL);
    e2e_assert_ok(&r);
    assert_null(strstr(r.out, "retained:"));
    e2e_res_free(&r);
    e2e_assert_same_file(f->root0, f->root);
    e2e_assert_same_file(f->data0, f->data);
    size_t n = 0;
    char **v = e2e_list_files(f->w.work, &n);
    for (size_t i = 0; i < n; i++)
        if (strstr(v[i], "retained") || strstr(v[i], ".old-") || strstr(v[i], ".restore-"))
            fail_msg("unexpected %s after a replace with policy delete", v[i]);
    e2e_strv_free(v);

    /* from the snapshot: retain is the default (and the only choice) */
    e2e_write_random_at(f->root, 0, 3 * E2E_MiB, 60);
    char *changed = e2e_path(f->w.work, "changed.root");
    e2e_copy_file(f->root, changed);
    e2e_run(&r, f->w.state, "restore", "--snapshot", "ns1/s1", "--replace", "ns1/web", NULL);
    e2e_assert_ok(&r);
    const char *line = strstr(r.out, "retained: ");
    assert_non_null(line);
    char kept[4096];
    assert_int_equal(sscanf(line, "retained: %4095s", kept), 1);
    e2e_res_free(&r);
    e2e_assert_same_file(f->root0, f->root);
    e2e_assert_same_file(changed, kept); /* the old volume, intact, under its documented name */
    char *prefix = e2e_strf("%s.retained-", f->root);
    assert_int_equal(strncmp(kept, prefix, strlen(prefix)), 0);
    assert_int_equal(strspn(kept + strlen(prefix), "0123456789TZ-"), strlen(kept + strlen(prefix)));
    free(prefix);
    assert_int_equal(remove_retained(f->w.work), 2); /* both volumes were kept */
    /* the VM is still registered with its own paths, still off */
    e2e_run(&r, f->w.state, "vm", "show", "ns1/web", "--json", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, f->root));
    assert_non_null(strstr(r.out, "\"off\""));
    e2e_res_free(&r);
    /* and it keeps its MAC address: same VM */
    cJSON *j = vm_meta(f->w.state, "ns1/web");
    const char *mac[] = { "spec", "template", "spec", "domain", "devices", "interfaces", "0",
                          "macAddress", NULL };
    assert_string_equal(path_str(j, mac), "52:54:00:ab:cd:ef");
    cJSON_Delete(j);

    /* from the backup, retain asked for */
    e2e_write_random_at(f->data, 0, 1000, 70);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--replace", "ns1/web", "--deletion-policy",
            "retain", NULL);
    e2e_assert_ok(&r);
    assert_int_equal(e2e_line_count(strstr(r.out, "retained: ")), 2);
    e2e_res_free(&r);
    e2e_assert_same_file(f->data0, f->data);
    assert_int_equal(remove_retained(f->w.work), 2);
    free(changed);
}

static void test_refusals(void **state)
{
    fx *f = *state;
    char *dir = e2e_path(f->w.work, "refused");
    /* a running VM, or one whose power state is not known to be off */
    e2e_ok(f->w.state, "vm", "set-power", "ns1/web", "on", NULL);
    const char *a1[] = { "restore", "ns1/b1", "--replace", "ns1/web", NULL };
    refused(f->w.state, "HARVBK_E_VM_RUNNING", a1);
    const char *a2[] = { "restore", "--snapshot", "ns1/s1", "--replace", "ns1/web", NULL };
    refused(f->w.state, "HARVBK_E_VM_RUNNING", a2);
    e2e_ok(f->w.state, "vm", "set-power", "ns1/web", "unknown", NULL);
    refused(f->w.state, "HARVBK_E_VM_RUNNING", a1);
    e2e_assert_same_file(f->root0, f->root);
    /* an existing name */
    const char *a3[] = { "restore", "ns1/b1", "--new-vm", "ns1/web", "--into", dir, NULL };
    refused(f->w.state, "HARVBK_E_EXISTS", a3);
    const char *a4[] = { "restore", "--snapshot", "ns1/s1", "--new-vm", "ns1/web", "--into",
                         dir, NULL };
    refused(f->w.state, "HARVBK_E_EXISTS", a4);
    /* a snapshot into another namespace (new VM, or replacing a VM there) */
    const char *a5[] = { "restore", "--snapshot", "ns1/s1", "--new-vm", "ns3/web", "--into",
                         dir, NULL };
    refused(f->w.state, "HARVBK_E_CROSS_NAMESPACE", a5);
    const char *a6[] = { "restore", "--snapshot", "ns1/s1", "--replace", "ns3/web", NULL };
    refused(f->w.state, "HARVBK_E_CROSS_NAMESPACE", a6);
    /* another VM than the one the source was taken of: its disk stays as it is */
    char *od = e2e_path(f->w.work, "other.img"), *oa = e2e_strf("root=%s", od);
    e2e_make_random(od, E2E_MiB, 77);
    char *ocopy = e2e_path(f->w.work, "other.orig");
    e2e_copy_file(od, ocopy);
    e2e_ok(f->w.state, "vm", "add", "ns1/other", "--disk", oa, NULL);
    e2e_ok(f->w.state, "vm", "set-power", "ns1/other", "off", NULL);
    const char *a10[] = { "restore", "ns1/b1", "--replace", "ns1/other", NULL };
    refused(f->w.state, "HARVBK_E_INVALID", a10);
    const char *a11[] = { "restore", "--snapshot", "ns1/s1", "--replace", "ns1/other", NULL };
    refused(f->w.state, "HARVBK_E_INVALID", a11);
    e2e_assert_same_file(ocopy, od);
    e2e_ok(f->w.state, "vm", "remove", "ns1/other", NULL);
    free(od);
    free(oa);
    free(ocopy);
    /* the delete policy with a snapshot */
    e2e_ok(f->w.state, "vm", "set-power", "ns1/web", "off", NULL);
    const char *a7[] = { "restore", "--snapshot", "ns1/s1", "--replace", "ns1/web",
                         "--deletion-policy", "delete", NULL };
    refused(f->w.state, "HARVBK_E_DELETION_POLICY", a7);
    /* keep-mac while the source VM exists, from either source */
    const char *a8[] = { "restore", "ns1/b1", "--new-vm", "ns1/twin", "--into", dir,
                         "--keep-mac", NULL };
    refused(f->w.state, "HARVBK_E_KEEP_MAC", a8);
    const char *a9[] = { "restore", "--snapshot", "ns1/s1", "--new-vm", "ns1/twin", "--into",
                         dir, "--keep-mac", NULL };
    refused(f->w.state, "HARVBK_E_KEEP_MAC", a9);
    assert_int_equal(e2e_count_files(dir), 0);
    /* usage errors */
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--replace", "ns1/web", "--keep-mac", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/x", "--into", dir,
            "--deletion-policy", "retain", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--replace", "ns1/web", "--deletion-policy",
            "shred", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--snapshot", "ns1/s1", "--new-vm", "ns1/x",
            "--into", dir, NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    free(dir);
}

/* size bytes of compressible text, every MiB different (cheap to make, also
 * under valgrind: one MiB of text is generated, then numbered copies) */
static void make_big_text(const char *path, uint64_t size)
{
    char *mib = malloc(E2E_MiB);
    e2e_fill_text(mib, E2E_MiB, 9);
    e2e_write_file(path, "", 0);
    for (uint64_t m = 0; m < size / E2E_MiB; m++) {
        for (int k = 0; k < 64; k++) /* a few numbered lines per chunk-sized piece */
            snprintf(mib + (size_t)k * (E2E_MiB / 64), 32, "piece %llu.%d\n",
                     (unsigned long long)m, k);
        e2e_pwrite_file(path, m * E2E_MiB, mib, E2E_MiB);
    }
    free(mib);
}

/* A restore that runs for a while: a 256 MiB VM in its own state directory
 * (gzip: decompressing takes time). While it runs, deleting its source and a
 * second restore of the same VM are refused. */
static void test_refused_while_a_restore_runs(void **state)
{
    fx *f = *state;
    char *st = e2e_path(f->w.root, "state-busy"), *tg = e2e_path(f->w.root, "target-busy");
    mkdir(tg, 0755);
    e2e_target_set(st, tg, "gzip", E2E_MiB);
    e2e_ok(st, "snapshot", "store", "--codec", "gzip", "--chunk-size", "1M", NULL);
    char *big = e2e_path(f->w.work, "busy.img");
    make_big_text(big, 256 * E2E_MiB);
    char *a = e2e_strf("disk=%s", big);
    e2e_ok(st, "vm", "add", "ns1/busy", "--disk", a, NULL);
    e2e_ok(st, "snapshot", "create", "ns1/busy", "--name", "bs", NULL);
    e2e_ok(st, "backup", "create", "ns1/busy", "--name", "bb", NULL);
    e2e_ok(st, "vm", "set-power", "ns1/busy", "off", NULL);
    char *journal = e2e_strf("%s/restores/ns1/busy.json", st);

    for (int k = 0; k < 2; k++) {
        /* k 0: replace from the snapshot; k 1: replace from the backup */
        const char *sa[] = { "restore", "--snapshot", "ns1/bs", "--replace", "ns1/busy", NULL };
        const char *ba[] = { "restore", "ns1/bb", "--replace", "ns1/busy", "--deletion-policy",
                             "retain", NULL };
        e2e_proc p;
        assert_int_equal(e2e_spawnv(&p, st, k == 0 ? sa : ba), 0);
        uint64_t deadline = e2e_now_ms() + e2e_scaled_ms(60000);
        while (e2e_proc_alive(&p) && !e2e_exists(journal) && e2e_now_ms() < deadline)
            e2e_sleep_ms(1);
        assert_true(e2e_proc_alive(&p));
        const char *d0[] = { "snapshot", "delete", "ns1/bs", NULL };
        const char *d1[] = { "backup", "delete", "ns1/bb", NULL };
        /* (backup delete prints no error name: its message says why) */
        refused(st, k == 0 ? "HARVBK_E_BUSY" : "being restored", k == 0 ? d0 : d1);
        const char *again[] = { "restore", "ns1/bb", "--replace", "ns1/busy", NULL };
        refused(st, "HARVBK_E_BUSY", again);
        const char *snapagain[] = { "restore", "--snapshot", "ns1/bs", "--replace", "ns1/busy",
                                    NULL };
        refused(st, "HARVBK_E_BUSY", snapagain);
        bool still = e2e_proc_alive(&p);
        e2e_res r;
        e2e_proc_wait(&p, &r, 0);
        e2e_assert_ok(&r);
        e2e_res_free(&r);
        if (!still)
            print_message("  note: the restore ended while the refusals were checked\n");
        e2e_assert_same_file(big, big); /* still readable */
    }
    /* afterwards both deletes work */
    e2e_ok(st, "snapshot", "delete", "ns1/bs", NULL);
    e2e_ok(st, "backup", "delete", "ns1/bb", NULL);
    free(journal);
    free(a);
    free(big);
    free(st);
    free(tg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_new_vm_from_both_sources, after_each),
        cmocka_unit_test_teardown(test_replace_from_both_sources, after_each),
        cmocka_unit_test_teardown(test_refusals, after_each),
        cmocka_unit_test_teardown(test_refused_while_a_restore_runs, after_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
