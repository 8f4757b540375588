/* tests/unit/test_api_errors.c - every public function that returns a
 * HARVBK_E_* code records it as the calling thread's last error: one table
 * of calls with NULL or invalid handles and invalid arguments. For each row,
 * the code returned is the expected one and equals harvbk_error_last_code(),
 * and harvbk_error_last() is a message (not the one left by the call before)
 * that names the function or the argument. Calls made with the fixture's
 * context also leave the same message on the context.
 *
 * To cover a new function: add a line to CASES (id, expected code, text the
 * message must contain, 1 when it is a call on the valid context, the call;
 * `f` is the fixture). */
#include "testutil.h"

#include <harvbk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    char *root, *state, *target, *disk;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
    harvbk_image *img;
    harvbk_target_config *cfg, *nourl;
    harvbk_op *done_op; /* a finished backup */
    harvbk_op *out_op;
    harvbk_backup_info *info;
    harvbk_backup_list *blist;
    harvbk_image *out_img;
    harvbk_image_list *ilist;
    harvbk_op_list *olist;
    harvbk_quota_list *qlist;
    harvbk_schedule *sched;
    harvbk_schedule_list *slist;
    harvbk_scheduler *runner;
    harvbk_vm *out_vm;
    harvbk_vm_list *vlist;
    harvbk_ranges *rg;
    harvbk_target_config *out_cfg;
    harvbk_sync_result *sync;
    harvbk_ctx *out_ctx;
    char *json;
    char buf[64];
    unsigned count;
    int active;
    int64_t ms;
    uint64_t u1, u2;
    harvbk_ctx_options co;
    harvbk_backup_options bo;
    harvbk_op_options oo;
    harvbk_restore_options ro;
    harvbk_snapshot_options so;
    harvbk_snapshot_store_options sso;
    harvbk_schedule_options sco;
    harvbk_schedule_run_options sro;
} fx;

/* Not a handle of the library: a zeroed buffer as large as any of them. */
static uint64_t junk[4096];
#define JUNK_CTX ((harvbk_ctx *)(void *)junk)
#define JUNK_OP ((harvbk_op *)(void *)junk)

static int read_zero(void *buf, size_t len, uint64_t off, void *p)
{
    (void)off;
    (void)p;
    memset(buf, 0, len);
    return 0;
}

/* clang-format off */
#define CASES(X)                                                                                   \
    /* ---- options ---- */                                                                        \
    X(ctx_opts_null, HARVBK_E_INVALID, "harvbk_ctx_options_init: opts is NULL", 0,                 \
      harvbk_ctx_options_init(NULL, 1))                                                            \
    X(ctx_opts_v0, HARVBK_E_VERSION, "harvbk_ctx_options_init: context options version 0", 0,     \
      harvbk_ctx_options_init(&f->co, 0))                                                          \
    X(backup_opts_null, HARVBK_E_INVALID, "harvbk_backup_options_init: opts is NULL", 0,           \
      harvbk_backup_options_init(NULL, 1))                                                         \
    X(backup_opts_v99, HARVBK_E_VERSION, "harvbk_backup_options_init", 0,                          \
      harvbk_backup_options_init(&f->bo, 99))                                                      \
    X(op_opts_null, HARVBK_E_INVALID, "harvbk_op_options_init: opts is NULL", 0,                   \
      harvbk_op_options_init(NULL, 1))                                                             \
    X(op_opts_v0, HARVBK_E_VERSION, "harvbk_op_options_init", 0, harvbk_op_options_init(&f->oo, 0)) \
    X(restore_opts_null, HARVBK_E_INVALID, "harvbk_restore_options_init: opts is NULL", 0,         \
      harvbk_restore_options_init(NULL, 1))                                                        \
    X(restore_opts_v3, HARVBK_E_VERSION, "harvbk_restore_options_init", 0,                         \
      harvbk_restore_options_init(&f->ro, 99))                                                     \
    X(snapshot_opts_null, HARVBK_E_INVALID, "harvbk_snapshot_options_init: opts is NULL", 0,       \
      harvbk_snapshot_options_init(NULL, 1))                                                       \
    X(snapshot_opts_v0, HARVBK_E_VERSION, "harvbk_snapshot_options_init", 0,                       \
      harvbk_snapshot_options_init(&f->so, 0))                                                     \
    X(snapstore_opts_null, HARVBK_E_INVALID, "harvbk_snapshot_store_options_init: opts is NULL", 0, \
      harvbk_snapshot_store_options_init(NULL, 1))                                                 \
    X(snapstore_opts_v0, HARVBK_E_VERSION, "harvbk_snapshot_store_options_init", 0,                \
      harvbk_snapshot_store_options_init(&f->sso, 0))                                              \
    X(schedule_opts_null, HARVBK_E_INVALID, "harvbk_schedule_options_init: opts is NULL", 0,       \
      harvbk_schedule_options_init(NULL, 1))                                                       \
    X(schedule_opts_v0, HARVBK_E_VERSION, "harvbk_schedule_options_init", 0,                       \
      harvbk_schedule_options_init(&f->sco, 0))                                                    \
    X(schedule_run_opts_null, HARVBK_E_INVALID, "harvbk_schedule_run_options_init: opts is NULL", \
      0, harvbk_schedule_run_options_init(NULL, 1))                                                \
    X(schedule_run_opts_v0, HARVBK_E_VERSION, "harvbk_schedule_run_options_init", 0,               \
      harvbk_schedule_run_options_init(&f->sro, 0))                                                \
    /* ---- contexts ---- */                                                                       \
    X(ctx_open_out, HARVBK_E_INVALID, "harvbk_ctx_open: out is NULL", 0,                           \
      harvbk_ctx_open(NULL, f->state, NULL))                                                       \
    X(ctx_open_dir_null, HARVBK_E_INVALID, "harvbk_ctx_open: the state directory", 0,              \
      harvbk_ctx_open(&f->out_ctx, NULL, NULL))                                                    \
    X(ctx_open_opts_v0, HARVBK_E_VERSION, "context options version 0", 0,                          \
      harvbk_ctx_open(&f->out_ctx, f->state, &f->co))                                              \
    X(ctx_set_log_hook_null, HARVBK_E_INVALID, "harvbk_ctx_set_log_hook: ctx is NULL", 0,          \
      harvbk_ctx_set_log_hook(NULL, NULL, NULL, 0))                                                \
    X(ctx_set_log_hook_junk, HARVBK_E_INVALID,                                                     \
      "harvbk_ctx_set_log_hook: ctx is not a valid context", 0,                                    \
      harvbk_ctx_set_log_hook(JUNK_CTX, NULL, NULL, 0))                                            \
    X(ctx_ops_in_progress_null, HARVBK_E_INVALID, "harvbk_ctx_ops_in_progress: ctx is NULL", 0,    \
      harvbk_ctx_ops_in_progress(NULL, &f->count))                                                 \
    X(ctx_ops_in_progress_out, HARVBK_E_INVALID, "harvbk_ctx_ops_in_progress: out_count is NULL",  \
      1, harvbk_ctx_ops_in_progress(f->ctx, NULL))                                                 \
    X(ctx_set_image_hook_null, HARVBK_E_INVALID, "harvbk_ctx_set_image_hook: ctx is NULL", 0,      \
      harvbk_ctx_set_image_hook(NULL, NULL, NULL))                                                 \
    /* ---- targets ---- */                                                                        \
    X(target_config_new_out, HARVBK_E_INVALID, "harvbk_target_config_new: out is NULL", 0,         \
      harvbk_target_config_new(NULL))                                                              \
    X(target_config_set_null, HARVBK_E_INVALID, "harvbk_target_config_set: cfg is NULL", 0,        \
      harvbk_target_config_set(NULL, HARVBK_TARGET_URL, "file:///x"))                              \
    X(target_config_set_key, HARVBK_E_INVALID, "key", 0,                                           \
      harvbk_target_config_set(f->cfg, (harvbk_target_key)999, "x"))                               \
    X(target_config_get_null, HARVBK_E_INVALID, "harvbk_target_config_get: cfg is NULL", 0,        \
      harvbk_target_config_get(NULL, HARVBK_TARGET_URL, f->buf, sizeof f->buf, NULL))              \
    X(target_config_get_buf, HARVBK_E_INVALID, "harvbk_target_config_get: buf is NULL", 0,         \
      harvbk_target_config_get(f->cfg, HARVBK_TARGET_URL, NULL, 5, NULL))                          \
    X(ctx_set_target_null, HARVBK_E_INVALID, "harvbk_ctx_set_target: ctx is NULL", 0,              \
      harvbk_ctx_set_target(NULL, f->cfg))                                                         \
    X(ctx_set_target_cfg, HARVBK_E_INVALID, "harvbk_ctx_set_target: cfg is NULL", 1,               \
      harvbk_ctx_set_target(f->ctx, NULL))                                                         \
    X(ctx_set_target_nourl, HARVBK_E_INVALID, "has no URL", 1,                                     \
      harvbk_ctx_set_target(f->ctx, f->nourl))                                                     \
    X(ctx_set_target_secret_null, HARVBK_E_INVALID, "harvbk_ctx_set_target_secret: ctx is NULL",   \
      0, harvbk_ctx_set_target_secret(NULL, "x"))                                                  \
    X(ctx_get_target_null, HARVBK_E_INVALID, "harvbk_ctx_get_target: ctx is NULL", 0,              \
      harvbk_ctx_get_target(NULL, &f->out_cfg))                                                    \
    X(ctx_get_target_out, HARVBK_E_INVALID, "harvbk_ctx_get_target: out is NULL", 1,               \
      harvbk_ctx_get_target(f->ctx, NULL))                                                         \
    X(ctx_check_target_null, HARVBK_E_INVALID, "harvbk_ctx_check_target: ctx is NULL", 0,          \
      harvbk_ctx_check_target(NULL))                                                               \
    X(target_sync_null, HARVBK_E_INVALID, "harvbk_target_sync: ctx is NULL", 0,                    \
      harvbk_target_sync(NULL, &f->sync))                                                          \
    /* ---- values: ranges, VMs, images ---- */                                                    \
    X(ranges_new_out, HARVBK_E_INVALID, "harvbk_ranges_new: out is NULL", 0,                       \
      harvbk_ranges_new(NULL))                                                                     \
    X(ranges_add_null, HARVBK_E_INVALID, "harvbk_ranges_add: ranges is NULL", 0,                   \
      harvbk_ranges_add(NULL, "disk0", 0, 1))                                                      \
    X(ranges_add_volume, HARVBK_E_INVALID, "volume name must not be empty", 0,                     \
      harvbk_ranges_add(f->rg, NULL, 0, 1))                                                        \
    X(vm_new_out, HARVBK_E_INVALID, "harvbk_vm_new: out is NULL", 0,                               \
      harvbk_vm_new(NULL, "default", "x"))                                                         \
    X(vm_new_ns, HARVBK_E_INVALID, "namespace must not be empty", 0,                               \
      harvbk_vm_new(&f->out_vm, NULL, "x"))                                                        \
    X(vm_add_volume_file_null, HARVBK_E_INVALID, "harvbk_vm_add_volume_file: vm is NULL", 0,       \
      harvbk_vm_add_volume_file(NULL, "d", "/dev/null"))                                           \
    X(vm_add_volume_file_path, HARVBK_E_INVALID, "path must not be empty", 0,                      \
      harvbk_vm_add_volume_file(f->vm, "d", NULL))                                                 \
    X(vm_add_volume_callbacks_null, HARVBK_E_INVALID,                                              \
      "harvbk_vm_add_volume_callbacks: vm is NULL", 0,                                             \
      harvbk_vm_add_volume_callbacks(NULL, "d", 1, read_zero, NULL, NULL))                         \
    X(vm_add_volume_callbacks_cb, HARVBK_E_INVALID, "read and write callbacks", 0,                 \
      harvbk_vm_add_volume_callbacks(f->vm, "d", 1, NULL, NULL, NULL))                             \
    X(vm_set_metadata_null, HARVBK_E_INVALID, "harvbk_vm_set_metadata: vm is NULL", 0,             \
      harvbk_vm_set_metadata(NULL, "{}", 2))                                                       \
    X(vm_set_metadata_data, HARVBK_E_INVALID, "data is NULL", 0,                                   \
      harvbk_vm_set_metadata(f->vm, NULL, 5))                                                      \
    X(vm_add_image_null, HARVBK_E_INVALID, "harvbk_vm_add_image: vm is NULL", 0,                   \
      harvbk_vm_add_image(NULL, "img"))                                                            \
    X(vm_add_image_empty, HARVBK_E_INVALID, "image reference must not be empty", 0,                \
      harvbk_vm_add_image(f->vm, ""))                                                              \
    X(vm_set_power_state_null, HARVBK_E_INVALID, "harvbk_vm_set_power_state: vm is NULL", 0,       \
      harvbk_vm_set_power_state(NULL, HARVBK_POWER_OFF))                                           \
    X(image_new_out, HARVBK_E_INVALID, "harvbk_image_new: out is NULL", 0,                         \
      harvbk_image_new(NULL, "default", "x"))                                                      \
    X(image_set_display_name_null, HARVBK_E_INVALID,                                               \
      "harvbk_image_set_display_name: image is NULL", 0,                                           \
      harvbk_image_set_display_name(NULL, "x"))                                                    \
    X(image_set_url_null, HARVBK_E_INVALID, "harvbk_image_set_url: image is NULL", 0,              \
      harvbk_image_set_url(NULL, "http://x/"))                                                     \
    X(image_set_checksum_null, HARVBK_E_INVALID, "harvbk_image_set_checksum: image is NULL", 0,    \
      harvbk_image_set_checksum(NULL, "x"))                                                        \
    X(image_to_json_null, HARVBK_E_INVALID, "harvbk_image_to_json: image is NULL", 0,              \
      harvbk_image_to_json(NULL, &f->json))                                                        \
    X(image_to_json_out, HARVBK_E_INVALID, "harvbk_image_to_json: out is NULL", 0,                 \
      harvbk_image_to_json(f->img, NULL))                                                          \
    /* ---- the VM catalog and the image registry ---- */                                          \
    X(vm_register_null, HARVBK_E_INVALID, "harvbk_vm_register: ctx is NULL", 0,                    \
      harvbk_vm_register(NULL, f->vm))                                                             \
    X(vm_register_vm, HARVBK_E_INVALID, "harvbk_vm_register: vm is NULL", 1,                       \
      harvbk_vm_register(f->ctx, NULL))                                                            \
    X(vm_lookup_null, HARVBK_E_INVALID, "harvbk_vm_lookup: ctx is NULL", 0,                        \
      harvbk_vm_lookup(&f->out_vm, NULL, "default", "vm1"))                                        \
    X(vm_lookup_out, HARVBK_E_INVALID, "harvbk_vm_lookup: out is NULL", 1,                         \
      harvbk_vm_lookup(NULL, f->ctx, "default", "vm1"))                                            \
    X(vm_lookup_missing, HARVBK_E_NOTFOUND, "no-such-vm", 1,                                       \
      harvbk_vm_lookup(&f->out_vm, f->ctx, "default", "no-such-vm"))                               \
    X(vm_unregister_null, HARVBK_E_INVALID, "harvbk_vm_unregister: ctx is NULL", 0,                \
      harvbk_vm_unregister(NULL, "default", "vm1"))                                                \
    X(vm_set_registered_power_state_null, HARVBK_E_INVALID,                                        \
      "harvbk_vm_set_registered_power_state: ctx is NULL", 0,                                      \
      harvbk_vm_set_registered_power_state(NULL, "default", "vm1", HARVBK_POWER_OFF))              \
    X(vm_list_get_null, HARVBK_E_INVALID, "harvbk_vm_list_get: ctx is NULL", 0,                    \
      harvbk_vm_list_get(&f->vlist, NULL))                                                         \
    X(vm_list_get_out, HARVBK_E_INVALID, "harvbk_vm_list_get: out is NULL", 1,                     \
      harvbk_vm_list_get(NULL, f->ctx))                                                            \
    X(image_register_null, HARVBK_E_INVALID, "harvbk_image_register: ctx is NULL", 0,              \
      harvbk_image_register(NULL, f->img))                                                         \
    X(image_register_image, HARVBK_E_INVALID, "harvbk_image_register: image is NULL", 1,           \
      harvbk_image_register(f->ctx, NULL))                                                         \
    X(image_lookup_null, HARVBK_E_INVALID, "harvbk_image_lookup: ctx is NULL", 0,                  \
      harvbk_image_lookup(&f->out_img, NULL, "default", "x"))                                      \
    X(image_lookup_out, HARVBK_E_INVALID, "harvbk_image_lookup: out is NULL", 1,                   \
      harvbk_image_lookup(NULL, f->ctx, "default", "x"))                                           \
    X(image_unregister_null, HARVBK_E_INVALID, "harvbk_image_unregister: ctx is NULL", 0,          \
      harvbk_image_unregister(NULL, "default", "x"))                                               \
    X(image_list_get_null, HARVBK_E_INVALID, "harvbk_image_list_get: ctx is NULL", 0,              \
      harvbk_image_list_get(&f->ilist, NULL))                                                      \
    X(image_list_get_out, HARVBK_E_INVALID, "harvbk_image_list_get: out is NULL", 1,               \
      harvbk_image_list_get(NULL, f->ctx))                                                         \
    /* ---- backups ---- */                                                                        \
    X(backup_create_null, HARVBK_E_INVALID, "harvbk_backup_create: ctx is NULL", 0,                \
      harvbk_backup_create(&f->out_op, NULL, f->vm, "b2", NULL))                                   \
    X(backup_create_junk, HARVBK_E_INVALID, "harvbk_backup_create: ctx is not a valid context", 0, \
      harvbk_backup_create(&f->out_op, JUNK_CTX, f->vm, "b2", NULL))                               \
    X(backup_create_out, HARVBK_E_INVALID, "harvbk_backup_create: out is NULL", 1,                 \
      harvbk_backup_create(NULL, f->ctx, f->vm, "b2", NULL))                                       \
    X(backup_create_vm, HARVBK_E_INVALID, "harvbk_backup_create: vm is NULL", 1,                   \
      harvbk_backup_create(&f->out_op, f->ctx, NULL, "b2", NULL))                                  \
    X(backup_create_name, HARVBK_E_INVALID, "backup name 'B_2'", 1,                                \
      harvbk_backup_create(&f->out_op, f->ctx, f->vm, "B_2", NULL))                                \
    X(backup_create_opts_v0, HARVBK_E_VERSION, "backup options version 0", 1,                      \
      harvbk_backup_create(&f->out_op, f->ctx, f->vm, "b2", &f->bo))                               \
    X(backup_get_null, HARVBK_E_INVALID, "harvbk_backup_get: ctx is NULL", 0,                      \
      harvbk_backup_get(&f->info, NULL, "default", "b1"))                                          \
    X(backup_get_out, HARVBK_E_INVALID, "harvbk_backup_get: out is NULL", 1,                       \
      harvbk_backup_get(NULL, f->ctx, "default", "b1"))                                            \
    X(backup_get_missing, HARVBK_E_NOTFOUND, "backup default/nosuch not found", 1,                 \
      harvbk_backup_get(&f->info, f->ctx, "default", "nosuch"))                                    \
    X(backup_info_state_null, HARVBK_E_INVALID, "harvbk_backup_info_state: info is NULL", 0,       \
      harvbk_backup_info_state(NULL))                                                              \
    X(backup_info_to_json_null, HARVBK_E_INVALID, "harvbk_backup_info_to_json: info is NULL", 0,   \
      harvbk_backup_info_to_json(NULL, &f->json))                                                  \
    X(backup_list_get_null, HARVBK_E_INVALID, "harvbk_backup_list_get: ctx is NULL", 0,            \
      harvbk_backup_list_get(&f->blist, NULL))                                                     \
    X(backup_list_get_out, HARVBK_E_INVALID, "harvbk_backup_list_get: out is NULL", 1,             \
      harvbk_backup_list_get(NULL, f->ctx))                                                        \
    X(backup_forget_null, HARVBK_E_INVALID, "harvbk_backup_forget: ctx is NULL", 0,                \
      harvbk_backup_forget(NULL, "default", "b1"))                                                 \
    X(backup_forget_missing, HARVBK_E_NOTFOUND, "nosuch", 1,                                       \
      harvbk_backup_forget(f->ctx, "default", "nosuch"))                                           \
    X(backup_verify_null, HARVBK_E_INVALID, "harvbk_backup_verify: ctx is NULL", 0,                \
      harvbk_backup_verify(&f->out_op, NULL, "default", "b1", NULL))                               \
    X(backup_verify_out, HARVBK_E_INVALID, "harvbk_backup_verify: out is NULL", 1,                 \
      harvbk_backup_verify(NULL, f->ctx, "default", "b1", NULL))                                   \
    X(backup_delete_null, HARVBK_E_INVALID, "harvbk_backup_delete: ctx is NULL", 0,                \
      harvbk_backup_delete(NULL, "default", "b1"))                                                 \
    X(backup_delete_name, HARVBK_E_INVALID, "backup name must not be empty", 1,                    \
      harvbk_backup_delete(f->ctx, "default", NULL))                                               \
    X(backup_delete_ex_null, HARVBK_E_INVALID, "harvbk_backup_delete_ex: ctx is NULL", 0,          \
      harvbk_backup_delete_ex(NULL, "default", "b1", NULL))                                        \
    X(gc_null, HARVBK_E_INVALID, "harvbk_gc: ctx is NULL", 0, harvbk_gc(&f->out_op, NULL, NULL))   \
    X(gc_out, HARVBK_E_INVALID, "harvbk_gc: out is NULL", 1, harvbk_gc(NULL, f->ctx, NULL))        \
    X(gc_result_null, HARVBK_E_INVALID, "harvbk_gc_result: op is NULL", 0,                         \
      harvbk_gc_result(NULL, &f->u1, &f->u2))                                                      \
    X(gc_result_not_gc, HARVBK_E_INVALID, "harvbk_gc_result: op is a backup operation", 0,         \
      harvbk_gc_result(f->done_op, &f->u1, &f->u2))                                                \
    /* ---- operations ---- */                                                                     \
    X(op_wait_null, HARVBK_E_INVALID, "harvbk_op_wait: op is NULL", 0, harvbk_op_wait(NULL))       \
    X(op_wait_junk, HARVBK_E_INVALID, "harvbk_op_wait: op is not a valid operation", 0,            \
      harvbk_op_wait(JUNK_OP))                                                                     \
    X(op_wait_timeout_null, HARVBK_E_INVALID, "harvbk_op_wait_timeout: op is NULL", 0,             \
      harvbk_op_wait_timeout(NULL, 0))                                                             \
    X(op_cancel_null, HARVBK_E_INVALID, "harvbk_op_cancel: op is NULL", 0, harvbk_op_cancel(NULL)) \
    X(op_state_null, HARVBK_E_INVALID, "harvbk_op_state: op is NULL", 0, harvbk_op_state(NULL))    \
    X(op_result_null, HARVBK_E_INVALID, "harvbk_op_result: op is NULL", 0,                         \
      harvbk_op_result(NULL))                                                                      \
    X(op_progress_null, HARVBK_E_INVALID, "harvbk_op_progress: op is NULL", 0,                     \
      harvbk_op_progress(NULL, &f->u1, &f->u2))                                                    \
    X(op_list_get_null, HARVBK_E_INVALID, "harvbk_op_list_get: ctx is NULL", 0,                    \
      harvbk_op_list_get(&f->olist, NULL))                                                         \
    X(op_list_get_out, HARVBK_E_INVALID, "harvbk_op_list_get: out is NULL", 1,                     \
      harvbk_op_list_get(NULL, f->ctx))                                                            \
    X(op_list_at_null, HARVBK_E_INVALID, "harvbk_op_list_at: list is NULL", 0,                     \
      harvbk_op_list_at(NULL, 0, NULL, NULL, NULL, NULL))                                          \
    /* ---- maintenance ---- */                                                                    \
    X(maintenance_enter_null, HARVBK_E_INVALID, "harvbk_maintenance_enter: ctx is NULL", 0,        \
      harvbk_maintenance_enter(NULL, 0))                                                           \
    X(maintenance_exit_null, HARVBK_E_INVALID, "harvbk_maintenance_exit: ctx is NULL", 0,          \
      harvbk_maintenance_exit(NULL))                                                               \
    X(maintenance_status_null, HARVBK_E_INVALID, "harvbk_maintenance_status: ctx is NULL", 0,      \
      harvbk_maintenance_status(NULL, &f->active, &f->ms))                                         \
    X(maintenance_status_json_null, HARVBK_E_INVALID,                                              \
      "harvbk_maintenance_status_json: ctx is NULL", 0,                                            \
      harvbk_maintenance_status_json(NULL, &f->json))                                              \
    X(maintenance_status_json_out, HARVBK_E_INVALID, "harvbk_maintenance_status_json: out is NULL", \
      1, harvbk_maintenance_status_json(f->ctx, NULL))                                             \
    /* ---- quotas ---- */                                                                         \
    X(quota_set_null, HARVBK_E_INVALID, "harvbk_quota_set: ctx is NULL", 0,                        \
      harvbk_quota_set(NULL, "default", NULL, 1))                                                  \
    X(quota_set_ns, HARVBK_E_INVALID, "namespace must not be empty", 1,                            \
      harvbk_quota_set(f->ctx, NULL, NULL, 1))                                                     \
    X(quota_clear_null, HARVBK_E_INVALID, "harvbk_quota_clear: ctx is NULL", 0,                    \
      harvbk_quota_clear(NULL, "default", NULL))                                                   \
    X(quota_get_null, HARVBK_E_INVALID, "harvbk_quota_get: ctx is NULL", 0,                        \
      harvbk_quota_get(NULL, "default", NULL, NULL, NULL, NULL))                                   \
    X(quota_list_get_null, HARVBK_E_INVALID, "harvbk_quota_list_get: ctx is NULL", 0,              \
      harvbk_quota_list_get(&f->qlist, NULL))                                                      \
    X(quota_list_get_out, HARVBK_E_INVALID, "harvbk_quota_list_get: out is NULL", 1,               \
      harvbk_quota_list_get(NULL, f->ctx))                                                         \
    /* ---- restores and the metadata rewrite ---- */                                              \
    X(restore_create_null, HARVBK_E_INVALID, "harvbk_restore_create: ctx is NULL", 0,              \
      harvbk_restore_create(&f->out_op, NULL, "default", "b1", &f->ro))                            \
    X(restore_create_out, HARVBK_E_INVALID, "harvbk_restore_create: out is NULL", 1,               \
      harvbk_restore_create(NULL, f->ctx, "default", "b1", &f->ro))                                \
    X(restore_create_opts, HARVBK_E_INVALID, "harvbk_restore_create: opts is NULL", 1,             \
      harvbk_restore_create(&f->out_op, f->ctx, "default", "b1", NULL))                            \
    X(snapshot_restore_null, HARVBK_E_INVALID, "harvbk_snapshot_restore: ctx is NULL", 0,          \
      harvbk_snapshot_restore(&f->out_op, NULL, "default", "s1", &f->ro))                          \
    X(snapshot_restore_opts, HARVBK_E_INVALID, "harvbk_snapshot_restore: opts is NULL", 1,         \
      harvbk_snapshot_restore(&f->out_op, f->ctx, "default", "s1", NULL))                          \
    X(metadata_rewrite_set_output_null, HARVBK_E_INVALID,                                          \
      "harvbk_metadata_rewrite_set_output: rw is NULL", 0,                                         \
      harvbk_metadata_rewrite_set_output(NULL, "{}", 2))                                           \
    X(metadata_rewrite_default_null, HARVBK_E_INVALID,                                             \
      "harvbk_metadata_rewrite_default: rw is NULL", 0,                                            \
      harvbk_metadata_rewrite_default(NULL, NULL))                                                 \
    /* ---- schedules ---- */                                                                      \
    X(schedule_create_null, HARVBK_E_INVALID, "harvbk_schedule_create: ctx is NULL", 0,            \
      harvbk_schedule_create(NULL, "default", "s", &f->sco))                                       \
    X(schedule_update_null, HARVBK_E_INVALID, "harvbk_schedule_update: ctx is NULL", 0,            \
      harvbk_schedule_update(NULL, "default", "s", &f->sco))                                       \
    X(schedule_delete_null, HARVBK_E_INVALID, "harvbk_schedule_delete: ctx is NULL", 0,            \
      harvbk_schedule_delete(NULL, "default", "s"))                                                \
    X(schedule_suspend_null, HARVBK_E_INVALID, "harvbk_schedule_suspend: ctx is NULL", 0,          \
      harvbk_schedule_suspend(NULL, "default", "s"))                                               \
    X(schedule_resume_null, HARVBK_E_INVALID, "harvbk_schedule_resume: ctx is NULL", 0,            \
      harvbk_schedule_resume(NULL, "default", "s"))                                                \
    X(schedule_get_null, HARVBK_E_INVALID, "harvbk_schedule_get: ctx is NULL", 0,                  \
      harvbk_schedule_get(&f->sched, NULL, "default", "s"))                                        \
    X(schedule_get_out, HARVBK_E_INVALID, "harvbk_schedule_get: out is NULL", 1,                   \
      harvbk_schedule_get(NULL, f->ctx, "default", "s"))                                           \
    X(schedule_get_missing, HARVBK_E_NOTFOUND, "nosuch", 1,                                        \
      harvbk_schedule_get(&f->sched, f->ctx, "default", "nosuch"))                                 \
    X(schedule_history_at_null, HARVBK_E_INVALID, "harvbk_schedule_history_at: s is NULL", 0,      \
      harvbk_schedule_history_at(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL))               \
    X(schedule_to_json_null, HARVBK_E_INVALID, "harvbk_schedule_to_json: s is NULL", 0,            \
      harvbk_schedule_to_json(NULL, &f->json))                                                     \
    X(schedule_list_get_null, HARVBK_E_INVALID, "harvbk_schedule_list_get: ctx is NULL", 0,        \
      harvbk_schedule_list_get(&f->slist, NULL))                                                   \
    X(schedule_list_get_out, HARVBK_E_INVALID, "harvbk_schedule_list_get: out is NULL", 1,         \
      harvbk_schedule_list_get(NULL, f->ctx))                                                      \
    X(schedule_run_due_null, HARVBK_E_INVALID, "harvbk_schedule_run_due: ctx is NULL", 0,          \
      harvbk_schedule_run_due(&f->out_op, NULL, 0, NULL))                                          \
    X(schedule_run_due_out, HARVBK_E_INVALID, "harvbk_schedule_run_due: out is NULL", 1,           \
      harvbk_schedule_run_due(NULL, f->ctx, 0, NULL))                                              \
    X(schedule_run_at_null, HARVBK_E_INVALID, "harvbk_schedule_run_at: op is NULL", 0,             \
      harvbk_schedule_run_at(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL))                   \
    X(schedule_run_at_not_pass, HARVBK_E_INVALID, "harvbk_schedule_run_at: op is a backup", 0,     \
      harvbk_schedule_run_at(f->done_op, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL))             \
    X(schedule_next_due_null, HARVBK_E_INVALID, "harvbk_schedule_next_due: ctx is NULL", 0,        \
      harvbk_schedule_next_due(NULL, 0, &f->ms))                                                   \
    X(schedule_next_due_out, HARVBK_E_INVALID, "harvbk_schedule_next_due: out_ms is NULL", 1,      \
      harvbk_schedule_next_due(f->ctx, 0, NULL))                                                   \
    X(scheduler_start_null, HARVBK_E_INVALID, "harvbk_scheduler_start: ctx is NULL", 0,            \
      harvbk_scheduler_start(&f->runner, NULL, NULL))                                              \
    X(scheduler_start_out, HARVBK_E_INVALID, "harvbk_scheduler_start: out is NULL", 1,             \
      harvbk_scheduler_start(NULL, f->ctx, NULL))                                                  \
    /* ---- snapshots ---- */                                                                      \
    X(snapshot_store_set_null, HARVBK_E_INVALID, "harvbk_snapshot_store_set: ctx is NULL", 0,      \
      harvbk_snapshot_store_set(NULL, NULL))                                                       \
    X(snapshot_store_dir_null, HARVBK_E_INVALID, "harvbk_snapshot_store_dir: ctx is NULL", 0,      \
      harvbk_snapshot_store_dir(NULL, f->buf, sizeof f->buf, NULL))                                \
    X(snapshot_store_dir_buf, HARVBK_E_INVALID, "harvbk_snapshot_store_dir: buf is NULL", 1,       \
      harvbk_snapshot_store_dir(f->ctx, NULL, 5, NULL))                                            \
    X(snapshot_create_null, HARVBK_E_INVALID, "harvbk_snapshot_create: ctx is NULL", 0,            \
      harvbk_snapshot_create(&f->out_op, NULL, f->vm, "s1", NULL))                                 \
    X(snapshot_create_out, HARVBK_E_INVALID, "harvbk_snapshot_create: out is NULL", 1,             \
      harvbk_snapshot_create(NULL, f->ctx, f->vm, "s1", NULL))                                     \
    X(snapshot_create_vm, HARVBK_E_INVALID, "harvbk_snapshot_create: vm is NULL", 1,               \
      harvbk_snapshot_create(&f->out_op, f->ctx, NULL, "s1", NULL))                                \
    X(snapshot_get_null, HARVBK_E_INVALID, "harvbk_snapshot_get: ctx is NULL", 0,                  \
      harvbk_snapshot_get(&f->info, NULL, "default", "s1"))                                        \
    X(snapshot_get_out, HARVBK_E_INVALID, "harvbk_snapshot_get: out is NULL", 1,                   \
      harvbk_snapshot_get(NULL, f->ctx, "default", "s1"))                                          \
    X(snapshot_get_missing, HARVBK_E_NOTFOUND, "snapshot default/s1 not found", 1,                 \
      harvbk_snapshot_get(&f->info, f->ctx, "default", "s1"))                                      \
    X(snapshot_list_get_null, HARVBK_E_INVALID, "harvbk_snapshot_list_get: ctx is NULL", 0,        \
      harvbk_snapshot_list_get(&f->blist, NULL))                                                   \
    X(snapshot_verify_null, HARVBK_E_INVALID, "harvbk_snapshot_verify: ctx is NULL", 0,            \
      harvbk_snapshot_verify(&f->out_op, NULL, "default", "s1", NULL))                             \
    X(snapshot_delete_null, HARVBK_E_INVALID, "harvbk_snapshot_delete: ctx is NULL", 0,            \
      harvbk_snapshot_delete(NULL, "default", "s1"))                                               \
    X(snapshot_gc_null, HARVBK_E_INVALID, "harvbk_snapshot_gc: ctx is NULL", 0,                    \
      harvbk_snapshot_gc(&f->out_op, NULL, NULL))                                                  \
    X(snapshot_gc_out, HARVBK_E_INVALID, "harvbk_snapshot_gc: out is NULL", 1,                     \
      harvbk_snapshot_gc(NULL, f->ctx, NULL))
/* clang-format on */

#define CASE_FN(id, code, needle, on_ctx, call)                                                    \
    static int case_##id(fx *f)                                                                    \
    {                                                                                              \
        (void)f;                                                                                   \
        return (call);                                                                             \
    }
CASES(CASE_FN)
#undef CASE_FN

typedef struct api_case {
    const char *id;
    int (*call)(fx *f);
    int code;
    const char *needle;
    int on_ctx;
} api_case;

#define CASE_ROW(id, code, needle, on_ctx, call) { #id, case_##id, code, needle, on_ctx },
static const api_case cases[] = { CASES(CASE_ROW) };
#undef CASE_ROW

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->root = tu_mkdtemp("api-errors");
    f->state = tu_path2(f->root, "state");
    f->target = tu_path2(f->root, "target");
    f->disk = tu_path2(f->root, "d0.raw");
    unsigned char data[3 * 65536];
    tu_fill_random(data, sizeof data, 11);
    assert_int_equal(tu_write_file(f->disk, data, sizeof data), 0);
    assert_int_equal(harvbk_ctx_open(&f->ctx, f->state, NULL), 0);
    tu_set_file_target(f->ctx, f->target);
    assert_int_equal(harvbk_vm_new(&f->vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(f->vm, "disk0", f->disk), 0);
    assert_int_equal(harvbk_vm_register(f->ctx, f->vm), 0);
    assert_int_equal(harvbk_image_new(&f->img, "default", "img1"), 0);
    assert_int_equal(harvbk_target_config_new(&f->cfg), 0);
    assert_int_equal(harvbk_target_config_set(f->cfg, HARVBK_TARGET_URL, "file:///nowhere"), 0);
    assert_int_equal(harvbk_target_config_new(&f->nourl), 0);
    assert_int_equal(harvbk_ranges_new(&f->rg), 0);
    assert_int_equal(harvbk_backup_create(&f->done_op, f->ctx, f->vm, "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(f->done_op), 0);
    /* the option structs the rows pass: version 0 unless a row needs a valid one */
    memset(&f->co, 0, sizeof f->co);
    memset(&f->bo, 0, sizeof f->bo);
    harvbk_restore_options_init(&f->ro, HARVBK_RESTORE_OPTIONS_VERSION);
    f->ro.new_vm_namespace = "default";
    f->ro.new_vm_name = "copy";
    harvbk_schedule_options_init(&f->sco, HARVBK_SCHEDULE_OPTIONS_VERSION);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    harvbk_op_free(f->done_op);
    harvbk_ranges_free(f->rg);
    harvbk_target_config_free(f->cfg);
    harvbk_target_config_free(f->nourl);
    harvbk_image_free(f->img);
    harvbk_vm_free(f->vm);
    harvbk_ctx_free(f->ctx);
    tu_rmrf(f->root);
    free(f->root);
    free(f->state);
    free(f->target);
    free(f->disk);
    free(f);
    return 0;
}

/* Leave an error of another code than `code` as the thread's last one. */
static void plant_other_error(int code, char *msg, size_t size)
{
    if (code != HARVBK_E_EXISTS) {
        harvbk_vm *vm = NULL;
        assert_int_equal(harvbk_vm_new(&vm, "default", "planted"), 0);
        assert_int_equal(harvbk_vm_add_volume_file(vm, "d", "/dev/null"), 0);
        assert_int_equal(harvbk_vm_add_volume_file(vm, "d", "/dev/null"), HARVBK_E_EXISTS);
        harvbk_vm_free(vm);
    } else {
        assert_int_equal(harvbk_vm_set_power_state(NULL, HARVBK_POWER_ON), HARVBK_E_INVALID);
    }
    assert_int_not_equal(harvbk_error_last_code(), code);
    harvbk_error_last_copy(msg, size);
}

/* Free whatever a row's call may have returned despite failing (nothing, if
 * the library is right) and clear the out slots for the next row. */
static void clear_outs(fx *f)
{
    assert_null(f->out_op);
    assert_null(f->info);
    assert_null(f->blist);
    assert_null(f->out_img);
    assert_null(f->ilist);
    assert_null(f->olist);
    assert_null(f->qlist);
    assert_null(f->sched);
    assert_null(f->slist);
    assert_null(f->runner);
    assert_null(f->out_vm);
    assert_null(f->vlist);
    assert_null(f->out_cfg);
    assert_null(f->sync);
    assert_null(f->out_ctx);
    assert_null(f->json);
}

static void test_every_failing_call_sets_the_last_error(void **state)
{
    fx *f = *state;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const api_case *c = &cases[i];
        char planted[512], ctxmsg[512];
        plant_other_error(c->code, planted, sizeof planted);
        if (c->on_ctx)
            harvbk_ctx_errmsg_copy(f->ctx, ctxmsg, sizeof ctxmsg);
        int rc = c->call(f);
        const char *msg = harvbk_error_last();
        int last = harvbk_error_last_code();
        const char *why = NULL;
        if (rc != c->code)
            why = "unexpected return code";
        else if (last != rc)
            why = "harvbk_error_last_code() is not the code returned";
        else if (!msg[0])
            why = "empty message";
        else if (strcmp(msg, planted) == 0)
            why = "the message is the one left by the call before";
        else if (!strstr(msg, c->needle))
            why = "the message does not name the function or the argument";
        else if (c->on_ctx) {
            harvbk_ctx_errmsg_copy(f->ctx, ctxmsg, sizeof ctxmsg);
            if (strcmp(ctxmsg, msg) != 0)
                why = "the context's message differs";
        }
        if (why) {
            bad++;
            fprintf(stderr, "%s: %s (returned %s, last %s: \"%s\"; want %s and \"%s\")\n", c->id,
                    why, harvbk_error_name(rc), harvbk_error_name(last), msg,
                    harvbk_error_name(c->code), c->needle);
        }
        clear_outs(f);
    }
    fprintf(stderr, "%zu calls checked, %d wrong\n", sizeof cases / sizeof cases[0], bad);
    assert_int_equal(bad, 0);
}

/* The operation's own failure is what harvbk_op_wait() returns: the thread's
 * last error says it too (and so does harvbk_op_wait_timeout's timeout). */
static void test_op_wait_reports_the_operation_failure(void **state)
{
    fx *f = *state;
    harvbk_op *op = NULL;
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = "vm1"; /* exists: refused at once */
    char *dir = tu_path2(f->root, "out");
    ro.target_dir = dir;
    assert_int_equal(harvbk_restore_create(&op, f->ctx, "default", "b1", &ro), HARVBK_E_EXISTS);
    assert_int_equal(harvbk_error_last_code(), HARVBK_E_EXISTS);
    assert_null(op);
    /* a verify that fails on its thread: the backup's chunks are gone */
    char *chunks = tu_path2(f->target, "chunks");
    tu_rmrf(chunks);
    free(chunks);
    assert_int_equal(harvbk_backup_verify(&op, f->ctx, "default", "b1", NULL), 0);
    assert_int_equal(harvbk_vm_set_power_state(NULL, HARVBK_POWER_ON), HARVBK_E_INVALID);
    int rc = harvbk_op_wait(op);
    assert_true(rc < 0);
    assert_int_equal(harvbk_error_last_code(), rc);
    char opmsg[512];
    harvbk_op_errmsg_copy(op, opmsg, sizeof opmsg);
    assert_true(opmsg[0] != '\0');
    assert_string_equal(harvbk_error_last(), opmsg);
    harvbk_op_free(op);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_failing_call_sets_the_last_error),
        cmocka_unit_test(test_op_wait_reports_the_operation_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
