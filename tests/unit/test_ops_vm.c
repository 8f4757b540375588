/* tests/unit/test_ops_vm.c - VM descriptions, the VM catalog, changed ranges. */
#include "testutil.h"

#include <harvbk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dummy_read(void *buf, size_t len, uint64_t off, void *p)
{
    memset(buf, 0, len);
    return 0;
}

static void test_bad_names_are_invalid(void **state)
{
    char long63[64], long64[65];
    memset(long63, 'a', 63);
    long63[63] = '\0';
    memset(long64, 'a', 64);
    long64[64] = '\0';
    const char *bad[] = { "../x", "A", "", "-a", "a-", "a_b", "a.b", "a/b", long64 };
    harvbk_vm *vm = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(harvbk_vm_new(&vm, bad[i], "ok"), HARVBK_E_INVALID);
        assert_null(vm);
        assert_int_equal(harvbk_vm_new(&vm, "ok", bad[i]), HARVBK_E_INVALID);
        assert_int_equal(harvbk_name_is_valid(bad[i]), 0);
    }
    assert_int_equal(harvbk_vm_new(&vm, NULL, "ok"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_new(&vm, long63, "a0-9"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(harvbk_vm_add_volume_file(vm, bad[i], "/p"), HARVBK_E_INVALID);
        assert_int_equal(harvbk_vm_add_volume_callbacks(vm, bad[i], 10, dummy_read, NULL, NULL),
                         HARVBK_E_INVALID);
    }
    assert_int_equal(harvbk_vm_volume_count(vm), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d", ""), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d", NULL), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "d", 10, NULL, NULL, NULL),
                     HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d", "/p"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d", "/q"), HARVBK_E_EXISTS);
    assert_int_equal(harvbk_vm_set_metadata(vm, NULL, 3), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_image(vm, ""), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_set_power_state(vm, (harvbk_power_state)7), HARVBK_E_INVALID);
    harvbk_vm_free(vm);
    harvbk_vm_free(NULL);

    /* the same names through the context: refused with a message */
    char *root = tu_mkdtemp("ops-vm-names");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(harvbk_vm_lookup(&vm, ctx, bad[i], "x"), HARVBK_E_INVALID);
        assert_int_equal(harvbk_vm_unregister(ctx, "default", bad[i]), HARVBK_E_INVALID);
        assert_true(strlen(harvbk_ctx_errmsg(ctx)) > 0);
        assert_int_equal(harvbk_backup_delete(ctx, "default", bad[i]), HARVBK_E_INVALID);
    }
    harvbk_ctx_free(ctx);
    tu_rmrf(root);
    free(root);
}

static void test_vm_value_accessors(void **state)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "prod", "db"), 0);
    assert_string_equal(harvbk_vm_namespace(vm), "prod");
    assert_string_equal(harvbk_vm_name(vm), "db");
    assert_int_equal(harvbk_vm_power_state(vm), HARVBK_POWER_UNKNOWN);
    size_t len = 99;
    assert_null(harvbk_vm_metadata(vm, &len));
    assert_int_equal(len, 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "root", "/dev/sda"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "data", 4096, dummy_read, NULL, NULL), 0);
    assert_int_equal(harvbk_vm_volume_count(vm), 2);
    assert_string_equal(harvbk_vm_volume_name(vm, 1), "data");
    assert_string_equal(harvbk_vm_volume_path(vm, 0), "/dev/sda");
    assert_null(harvbk_vm_volume_path(vm, 1));
    assert_null(harvbk_vm_volume_name(vm, 2));
    assert_int_equal(harvbk_vm_set_metadata(vm, "a\0b", 3), 0);
    const char *md = harvbk_vm_metadata(vm, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(md, "a\0b", 3);
    assert_int_equal(harvbk_vm_set_metadata(vm, NULL, 0), 0);
    assert_null(harvbk_vm_metadata(vm, &len));
    assert_int_equal(harvbk_vm_add_image(vm, "default/ubuntu-22.04"), 0);
    assert_int_equal(harvbk_vm_image_count(vm), 1);
    assert_string_equal(harvbk_vm_image(vm, 0), "default/ubuntu-22.04");
    assert_null(harvbk_vm_image(vm, 1));
    harvbk_vm_free(vm);
}

static void test_catalog_round_trip_with_binary_metadata(void **state)
{
    char *root = tu_mkdtemp("ops-vm-cat");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);

    uint8_t meta[300];
    for (size_t i = 0; i < sizeof meta; i++)
        meta[i] = (uint8_t)(i * 7);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "prod", "web"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "root", "/images/web-root.raw"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "data", "/images/web data.raw"), 0);
    assert_int_equal(harvbk_vm_set_metadata(vm, meta, sizeof meta), 0);
    assert_int_equal(harvbk_vm_add_image(vm, "default/img-1"), 0);
    assert_int_equal(harvbk_vm_add_image(vm, "default/img-2"), 0);
    assert_int_equal(harvbk_vm_set_power_state(vm, HARVBK_POWER_ON), 0);
    assert_int_equal(harvbk_vm_register(ctx, vm), 0);

    harvbk_vm *a = NULL, *b = NULL;
    assert_int_equal(harvbk_vm_new(&a, "prod", "api"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(a, "root", "/x"), 0);
    assert_int_equal(harvbk_vm_register(ctx, a), 0);
    assert_int_equal(harvbk_vm_new(&b, "dev", "zz"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(b, "root", "/y"), 0);
    assert_int_equal(harvbk_vm_register(ctx, b), 0);
    harvbk_ctx_free(ctx);

    /* a fresh context reads the same catalog back */
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, ctx, "prod", "web"), 0);
    assert_string_equal(harvbk_vm_namespace(got), "prod");
    assert_string_equal(harvbk_vm_name(got), "web");
    assert_int_equal(harvbk_vm_volume_count(got), 2);
    assert_string_equal(harvbk_vm_volume_name(got, 0), "root");
    assert_string_equal(harvbk_vm_volume_path(got, 0), "/images/web-root.raw");
    assert_string_equal(harvbk_vm_volume_name(got, 1), "data");
    assert_string_equal(harvbk_vm_volume_path(got, 1), "/images/web data.raw");
    size_t len = 0;
    const void *md = harvbk_vm_metadata(got, &len);
    assert_int_equal(len, sizeof meta);
    assert_memory_equal(md, meta, sizeof meta);
    assert_int_equal(harvbk_vm_image_count(got), 2);
    assert_string_equal(harvbk_vm_image(got, 1), "default/img-2");
    assert_int_equal(harvbk_vm_power_state(got), HARVBK_POWER_ON);
    harvbk_vm_free(got);

    assert_int_equal(harvbk_vm_set_registered_power_state(ctx, "prod", "web", HARVBK_POWER_OFF),
                     0);
    assert_int_equal(harvbk_vm_lookup(&got, ctx, "prod", "web"), 0);
    assert_int_equal(harvbk_vm_power_state(got), HARVBK_POWER_OFF);
    assert_int_equal(len, sizeof meta);
    harvbk_vm_free(got);
    assert_int_equal(harvbk_vm_set_registered_power_state(ctx, "prod", "nope", HARVBK_POWER_OFF),
                     HARVBK_E_NOTFOUND);

    /* sorted by namespace, then name */
    harvbk_vm_list *l = NULL;
    assert_int_equal(harvbk_vm_list_get(&l, ctx), 0);
    assert_int_equal(harvbk_vm_list_count(l), 3);
    assert_string_equal(harvbk_vm_namespace(harvbk_vm_list_at(l, 0)), "dev");
    assert_string_equal(harvbk_vm_name(harvbk_vm_list_at(l, 1)), "api");
    assert_string_equal(harvbk_vm_name(harvbk_vm_list_at(l, 2)), "web");
    assert_null(harvbk_vm_list_at(l, 3));
    harvbk_vm_list_free(l);

    /* register replaces */
    assert_int_equal(harvbk_vm_add_volume_file(a, "extra", "/z"), 0);
    assert_int_equal(harvbk_vm_register(ctx, a), 0);
    assert_int_equal(harvbk_vm_lookup(&got, ctx, "prod", "api"), 0);
    assert_int_equal(harvbk_vm_volume_count(got), 2);
    harvbk_vm_free(got);

    assert_int_equal(harvbk_vm_unregister(ctx, "prod", "api"), 0);
    assert_int_equal(harvbk_vm_unregister(ctx, "prod", "api"), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_vm_lookup(&got, ctx, "prod", "api"), HARVBK_E_NOTFOUND);
    assert_null(got);
    assert_int_equal(harvbk_vm_list_get(&l, ctx), 0);
    assert_int_equal(harvbk_vm_list_count(l), 2);
    harvbk_vm_list_free(l);

    harvbk_vm_free(vm);
    harvbk_vm_free(a);
    harvbk_vm_free(b);
    harvbk_ctx_free(ctx);
    tu_rmrf(root);
    free(root);
}

static void test_register_refuses_callback_volumes_and_empty_vms(void **state)
{
    char *root = tu_mkdtemp("ops-vm-reg");
    harvbk_ctx *ctx = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, root, NULL), 0);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "empty"), 0);
    assert_int_equal(harvbk_vm_register(ctx, vm), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "no volume"));
    assert_int_equal(harvbk_vm_add_volume_file(vm, "a", "/a"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "b", 1024, dummy_read, NULL, NULL), 0);
    assert_int_equal(harvbk_vm_register(ctx, vm), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "callbacks"));
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, ctx, "default", "empty"), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_vm_register(ctx, NULL), HARVBK_E_INVALID);
    harvbk_vm_list *l = NULL;
    assert_int_equal(harvbk_vm_list_get(&l, ctx), 0);
    assert_int_equal(harvbk_vm_list_count(l), 0);
    harvbk_vm_list_free(l);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    tu_rmrf(root);
    free(root);
}

static void test_metadata_and_image_limits(void **state)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    size_t big = HARVBK_VM_METADATA_MAX + 1;
    char *doc = calloc(1, big);
    assert_int_equal(harvbk_vm_set_metadata(vm, doc, big), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_set_metadata(vm, doc, big - 1), 0);
    size_t len = 0;
    assert_non_null(harvbk_vm_metadata(vm, &len));
    assert_int_equal(len, big - 1);
    free(doc);
    assert_int_equal(harvbk_vm_add_image(vm, "registry.example/os:1.0"), 0);
    assert_int_equal(harvbk_vm_add_image(vm, "new\nline"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_image(vm, "tab\there"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_vm_add_image(vm, "del\x7f"), HARVBK_E_INVALID);
    char *longref = malloc(HARVBK_VM_IMAGE_MAX + 2);
    memset(longref, 'i', HARVBK_VM_IMAGE_MAX + 1);
    longref[HARVBK_VM_IMAGE_MAX + 1] = 0;
    assert_int_equal(harvbk_vm_add_image(vm, longref), HARVBK_E_INVALID);
    longref[HARVBK_VM_IMAGE_MAX] = 0;
    assert_int_equal(harvbk_vm_add_image(vm, longref), 0);
    free(longref);
    harvbk_vm_free(vm);
}

static void test_ranges_validate_their_arguments(void **state)
{
    harvbk_ranges *r = NULL;
    assert_int_equal(harvbk_ranges_new(&r), 0);
    assert_int_equal(harvbk_ranges_add(r, "disk0", 0, 4096), 0);
    assert_int_equal(harvbk_ranges_add(r, "disk0", 1u << 20, 0), 0);
    assert_int_equal(harvbk_ranges_add(r, "Disk0", 0, 1), HARVBK_E_INVALID);
    assert_int_equal(harvbk_ranges_add(r, "disk0", UINT64_MAX - 1, 4), HARVBK_E_INVALID);
    assert_int_equal(harvbk_ranges_add(NULL, "disk0", 0, 1), HARVBK_E_INVALID);
    harvbk_ranges_free(r);
    harvbk_ranges_free(NULL);
    assert_int_equal(harvbk_ranges_new(NULL), HARVBK_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_names_are_invalid),
        cmocka_unit_test(test_vm_value_accessors),
        cmocka_unit_test(test_catalog_round_trip_with_binary_metadata),
        cmocka_unit_test(test_register_refuses_callback_volumes_and_empty_vms),
        cmocka_unit_test(test_metadata_and_image_limits),
        cmocka_unit_test(test_ranges_validate_their_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
