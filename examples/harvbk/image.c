/*
 * image.c - `harvbk image register|list|show|delete`: the VM images of the
 * state directory (docs/IMAGES.md). A backup records the images its VM
 * refers to; a restore in a state directory that lacks one fails with
 * HARVBK_E_IMAGE naming it (the CLI sets no image hook): register the image
 * first and the restore uses it.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

static const char HELP_IMAGE[] =
    "Usage: harvbk image register NS/NAME [--display-name S] [--url U] [--checksum HEX]\n"
    "       harvbk image list [--json]\n"
    "       harvbk image show NS/NAME [--json]\n"
    "       harvbk image delete NS/NAME\n"
    "\n"
    "VM images known to this state directory (like Harvester's VM images). A VM\n"
    "refers to them with 'vm add --image NS/NAME' (or NAME in its own namespace);\n"
    "every backup and snapshot records them in the target (snapshot store).\n"
    "Restoring a backup whose image is missing here - not registered by name,\n"
    "nor by its recorded display name in its namespace - fails and names the\n"
    "image: register it with 'image register' and restore again.\n"
    "  --display-name S   up to 253 bytes, unique within the namespace\n"
    "  --url U            where the image comes from (up to 4096 bytes, no spaces)\n"
    "  --checksum HEX     SHA-256 (64) or SHA-512 (128) hex digits\n"
    "'image register' replaces an image of the same name. 'image delete' only\n"
    "forgets it: VMs, backups and the records in the target are not touched.\n";

static cJSON *image_json(const harvbk_image *img)
{
    char *text = NULL;
    if (harvbk_image_to_json(img, &text) != 0)
        return NULL;
    cJSON *o = cJSON_Parse(text);
    harvbk_string_free(text);
    return o;
}

static void image_print(const harvbk_image *img)
{
    const char *d = harvbk_image_display_name(img), *u = harvbk_image_url(img),
               *c = harvbk_image_checksum(img);
    printf("%-14s %s/%s\n", "image:", harvbk_image_namespace(img), harvbk_image_name(img));
    printf("%-14s %s\n", "display name:", d ? d : "-");
    printf("%-14s %s\n", "url:", u ? u : "-");
    printf("%-14s %s\n", "checksum:", c ? c : "-");
}

static int image_register(cli_args *a)
{
    const char *H = a->H, *ns = a->ns, *name = a->name;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    harvbk_image *img = NULL;
    int ex = 0;
    if (harvbk_image_new(&img, ns, name) != 0) {
        cli_err("out of memory");
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    cli_opt *od = cli_opt_find(opts, "display-name"), *ou = cli_opt_find(opts, "url"),
            *oc = cli_opt_find(opts, "checksum");
    if (od->count && harvbk_image_set_display_name(img, od->value) != 0) {
        ex = cli_usage_err(H, "invalid display name (1..253 bytes, no control characters)");
        goto out;
    }
    if (ou->count && harvbk_image_set_url(img, ou->value) != 0) {
        ex = cli_usage_err(H, "invalid URL (1..4096 bytes of printable ASCII, no spaces)");
        goto out;
    }
    if (oc->count && harvbk_image_set_checksum(img, oc->value) != 0) {
        ex = cli_usage_err(H, "invalid checksum (64 or 128 hexadecimal digits)");
        goto out;
    }
    if (!(ctx = cli_open_ctx(a->env))) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = harvbk_image_register(ctx, img);
    if (rc != 0) {
        char what[2 * CLI_NAME_MAX + 20];
        snprintf(what, sizeof what, "image register %s/%s", ns, name);
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    printf("image %s/%s registered\n", ns, name);
out:
    harvbk_image_free(img);
    harvbk_ctx_free(ctx);
    return ex;
}

static int image_list(cli_args *a)
{
    harvbk_ctx *ctx = NULL;
    harvbk_image_list *l = NULL;
    int ex = 0;
    if (!(ctx = cli_open_ctx(a->env))) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = harvbk_image_list_get(&l, ctx);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "image list");
        goto out;
    }
    size_t n = harvbk_image_list_count(l);
    if (cli_opt_find(a->opts, "json")->count) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *o = image_json(harvbk_image_list_at(l, i));
            if (o)
                cJSON_AddItemToArray(arr, o);
        }
        ex = cli_print_json(arr);
    } else if (n == 0) {
        printf("no images registered\n");
    } else {
        printf("%-40s  %s\n", "NAMESPACE/NAME", "DISPLAY NAME");
        for (size_t i = 0; i < n; i++) {
            const harvbk_image *img = harvbk_image_list_at(l, i);
            char who[2 * CLI_NAME_MAX + 2];
            snprintf(who, sizeof who, "%s/%s", harvbk_image_namespace(img),
                     harvbk_image_name(img));
            const char *d = harvbk_image_display_name(img);
            printf("%-40s  %s\n", who, d ? d : "-");
        }
    }
out:
    harvbk_image_list_free(l);
    harvbk_ctx_free(ctx);
    return ex;
}

/* show (json) or delete */
static int image_one(cli_args *a, bool del)
{
    const char *ns = a->ns, *name = a->name;
    harvbk_ctx *ctx = NULL;
    harvbk_image *img = NULL;
    int ex = 0;
    if (!(ctx = cli_open_ctx(a->env))) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    char what[2 * CLI_NAME_MAX + 20];
    snprintf(what, sizeof what, "image %s %s/%s", del ? "delete" : "show", ns, name);
    int rc = del ? harvbk_image_unregister(ctx, ns, name)
                 : harvbk_image_lookup(&img, ctx, ns, name);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, what);
        goto out;
    }
    if (del)
        printf("image %s/%s forgotten\n", ns, name);
    else if (cli_opt_find(a->opts, "json")->count)
        ex = cli_print_json(image_json(img));
    else
        image_print(img);
out:
    harvbk_image_free(img);
    harvbk_ctx_free(ctx);
    return ex;
}

static int image_show(cli_args *a)
{
    return image_one(a, false);
}

static int image_delete(cli_args *a)
{
    return image_one(a, true);
}

static const cli_opt OPTS_REGISTER[] = {
    {"display-name", CLI_OPT_VALUE, 0, 0, 0},
    {"url", CLI_OPT_VALUE, 0, 0, 0},
    {"checksum", CLI_OPT_VALUE, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};

static const cli_cmd IMAGE_CMDS[] = {
    {"register", NULL, image_register, OPTS_REGISTER, 1, 1, NULL, "the image"},
    {"list", NULL, image_list, CLI_OPTS_JSON, 0, 0, NULL, NULL},
    {"show", NULL, image_show, CLI_OPTS_JSON, 1, 1, NULL, "the image"},
    {"delete", NULL, image_delete, NULL, 1, 1, NULL, "the image"},
    {NULL},
};

int cmd_image(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk image", HELP_IMAGE, "register, list, show or delete",
                                IMAGE_CMDS};
    return cli_dispatch(&g, env, argc, argv);
}
