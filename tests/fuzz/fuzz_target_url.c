/* fuzz_target_url - target URLs and S3 endpoints as a user or a state file
 * gives them: the checks of harvbk_target_config_set (hb_target_cfg_set), the
 * display form, and what opening parses before any connection: the S3
 * bucket/prefix/endpoint split (hb_target_s3_open, no request is made) and
 * the nfs:// URL through libnfs (hb_nfs_url_parse).
 *
 * Input lines: URL, S3 endpoint, flags ("v": virtual-hosted style). */
#include "fuzz.h"
#include "target/config.h"
#include "target/target.h"

#define SECRET "FuzzSecret0123456789abcdef"

static void check_nfs(const char *url)
{
    char *server = NULL, *path = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_nfs_url_parse(url, &server, &path, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_INVALID || rc == HARVBK_E_UNSUPPORTED || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        FUZZ_CHECK(!server && !path);
        return;
    }
    FUZZ_CHECK(server && *server && !strchr(server, ':'));
    /* the path: absolute, no empty, "." or ".." segment, no trailing '/' */
    FUZZ_CHECK(path[0] == '/' && path[1]);
    FUZZ_CHECK(path[strlen(path) - 1] != '/');
    FUZZ_CHECK(!strstr(path, "//") && !strstr(path, "/./") && !strstr(path, "/../"));
    size_t pl = strlen(path);
    FUZZ_CHECK(!(pl >= 2 && !strcmp(path + pl - 2, "/.")));
    FUZZ_CHECK(!(pl >= 3 && !strcmp(path + pl - 3, "/..")));
    hb_free(server);
    hb_free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = fuzz_cstr(data, size);
    char *lines[3] = { text, "", "" };
    for (int i = 0; i < 2; i++) {
        char *nl = strchr(lines[i], '\n');
        if (!nl)
            break;
        *nl = '\0';
        lines[i + 1] = nl + 1;
    }
    char *nl = strchr(lines[2], '\n');
    if (nl)
        *nl = '\0';
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_cfg_set(&c, HARVBK_TARGET_URL, lines[0], &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_INVALID || rc == HARVBK_E_UNSUPPORTED || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        /* messages never echo credentials pasted into a URL ("user:password@") */
        const char *sep = strstr(lines[0], "://");
        const char *at = sep ? strchr(sep + 3, '@') : NULL;
        if (at && at - (sep + 3) >= 6) {
            char *cred = hb_strndup(sep + 3, (size_t)(at - (sep + 3)));
            FUZZ_CHECK(cred != NULL);
            if (strchr(cred, ':') && !strchr(cred, '/'))
                FUZZ_CHECK(!strstr(e.msg, cred));
            hb_free(cred);
        }
    } else if (lines[0][0]) {
        FUZZ_CHECK(c.url != NULL);
        char *disp = hb_target_cfg_display(&c);
        FUZZ_CHECK(disp != NULL);
        hb_free(disp);
        if (!strncmp(c.url, "s3://", 5)) {
            hb_target_cfg_set(&c, HARVBK_TARGET_ACCESS_KEY_ID, "AKIDFUZZ", NULL);
            hb_target_cfg_set(&c, HARVBK_TARGET_SECRET_ACCESS_KEY, SECRET, NULL);
            if (lines[1][0])
                hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, lines[1], NULL);
            if (strchr(lines[2], 'v'))
                hb_target_cfg_set(&c, HARVBK_TARGET_VIRTUAL_HOSTED, "1", NULL);
            hb_target *t = NULL;
            hb_err_clear(&e);
            rc = hb_target_s3_open(&t, &c, &e);
            if (rc) {
                FUZZ_CHECK(rc == HARVBK_E_INVALID || rc == HARVBK_E_NOMEM ||
                           rc == HARVBK_E_TARGET);
                /* (unless the fuzzer put it into the URL or endpoint itself) */
                FUZZ_CHECK(!strstr(e.msg, SECRET) || strstr(lines[0], SECRET) ||
                           strstr(lines[1], SECRET));
            } else {
                FUZZ_CHECK(t && t->ops && !strcmp(t->ops->scheme, "s3"));
                t->ops->close(t);
            }
        } else if (!strncmp(c.url, "nfs://", 6)) {
            check_nfs(c.url);
        }
    }
    /* open parses on its own too, whatever the configuration check said */
    if (!strncmp(lines[0], "nfs://", 6))
        check_nfs(lines[0]);
    hb_target_cfg_clear(&c);
    free(text);
    return 0;
}
