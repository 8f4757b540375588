/*
 * target.c - `harvbk target set URL [options]` and `harvbk target show`.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char HELP_TARGET[] =
    "Usage: harvbk target set URL [options]\n"
    "       harvbk target show\n"
    "       harvbk target key add (--new-key-file FILE | --new-passphrase-file FILE)\n"
    "                             [--snapshot-store]\n"
    "       harvbk target key remove ID [--snapshot-store]\n"
    "       harvbk target key list [--snapshot-store] [--json]\n"
    "       harvbk target key generate FILE\n"
    "\n"
    "URL is file:///absolute/path, nfs://server/export/path or s3://bucket/prefix.\n"
    "'target set' replaces the whole configuration; the store is created in the\n"
    "target when it is empty (codec and chunk size are fixed at that moment).\n"
    "\n"
    "Options of 'target set':\n"
    "  --codec zstd|lz4|gzip|none      compression of new chunks (default zstd)\n"
    "  --chunk-size BYTES              chunk size, power of two 64K..64M, K/M suffixes\n"
    "                                  (default 4M; only when the store is created)\n"
    "  --endpoint URL                  S3 endpoint, e.g. https://s3.example:9000\n"
    "  --region R                      S3 region\n"
    "  --access-key-id ID              S3 access key id\n"
    "  --secret-access-key-file FILE   file holding the S3 secret (else the global\n"
    "                                  option, $HARVBK_SECRET_ACCESS_KEY_FILE or\n"
    "                                  $AWS_SECRET_ACCESS_KEY)\n"
    "  --store-secret                  keep the secret in the state directory (mode\n"
    "                                  0600); else give it to every later command:\n"
    "                                  harvbk --secret-access-key-file FILE ...,\n"
    "                                  $HARVBK_SECRET_ACCESS_KEY_FILE or\n"
    "                                  $AWS_SECRET_ACCESS_KEY (used for that process\n"
    "                                  only, never written)\n"
    "  --ca-cert FILE                  PEM file of CA certificates to trust (TLS is\n"
    "                                  always verified)\n"
    "  --virtual-hosted                virtual-hosted style S3 URLs (BUCKET.HOST;\n"
    "                                  default path style HOST/BUCKET)\n"
    "  --refresh-interval SECONDS      metadata sync interval (0 = on demand)\n"
    "  --timeout SECONDS               connect/request timeout (default 10)\n"
    "  --parallel N                    requests in flight (default automatic: 8 for\n"
    "                                  S3, or $HARVBK_TARGET_PARALLEL)\n"
    "  --read-only                     never write to the target: backup create,\n"
    "                                  delete and gc are refused; list, sync, verify\n"
    "                                  and restore work (a disaster-recovery cluster)\n"    "  --encrypt                       encrypt the store (AES-256-GCM; a new store\n"
    "                                  only: an existing plaintext one is refused)\n"
    "  --key-file FILE                 the store's key file (32+ bytes of key, mode\n"
    "                                  0600; see 'target key generate'); implies\n"
    "                                  --encrypt. Its path is recorded, never the key\n"
    "  --passphrase-file FILE          a file whose first line is the passphrase\n"
    "                                  (scrypt), instead of a key file\n"
    "                                  (without either: the global --key-file or\n"
    "                                  --passphrase-file, for this command only)\n"
    "\n"
    "The S3 prefix is taken literally (no %-decoding); spaces, '+', '%' and UTF-8\n"
    "are fine.\n"
    "\n"
    "'target show' prints the URL, the settings (never the secret, only where it\n"
    "comes from), the encryption and the store key's fingerprint, and\n"
    "\"reachable: yes\" or \"reachable: no (<error>)\"; it exits 1 when the target\n"
    "is not reachable.\n"
    "\n"
    "'target key' manages the keys of an encrypted store (the target's, or with\n"
    "--snapshot-store the local snapshot store's): any one of them opens it.\n"
    "'add' wraps the store key under a new key file or passphrase (the store must\n"
    "open with the current key), 'remove ID' drops one (not the one in use, not\n"
    "the last), 'list' shows them; no chunk is touched. 'generate FILE' writes a\n"
    "new random key file (mode 0600). Rotation: add the new key, 'target set'\n"
    "with it, remove the old one.\n";

static int set_key(harvbk_target_config *cfg, harvbk_target_key key, const char *value,
                   const char *opt)
{
    int rc = harvbk_target_config_set(cfg, key, value);
    if (rc != 0) {
        if (rc == HARVBK_E_INVALID && key == HARVBK_TARGET_URL)
            return cli_usage_err("harvbk target set",
                                 "invalid target URL '%s': expected file:///absolute/path, "
                                 "nfs://server/export/path or s3://bucket/prefix",
                                 value);
        if (key == HARVBK_TARGET_URL && rc == HARVBK_E_UNSUPPORTED) {
            const char *colon = strstr(value, "://");
            int slen = colon ? (int)(colon - value) : (int)strlen(value);
            bool known = colon && (strncmp(value, "file://", 7) == 0 ||
                                   strncmp(value, "nfs://", 6) == 0 ||
                                   strncmp(value, "s3://", 5) == 0);
            if (!known)
                return cli_usage_err("harvbk target set",
                                     "unknown URL scheme '%.*s' in '%s': expected file://, "
                                     "nfs:// or s3://",
                                     slen, value, value);
            cli_err("target set %s: %s (this build of libharvbk lacks that backend)", value,
                    harvbk_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        if (rc == HARVBK_E_INVALID)
            return cli_usage_err("harvbk target set", "invalid value '%s' for %s", value, opt);
        cli_err("target set: %s: %s", opt, harvbk_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static int target_set(cli_args *a)
{
    const char *H = a->H;
    cli_opt *opts = a->opts;
    int ex = 0;
    const char *url = a->pos[0];

    harvbk_target_config *cfg = NULL;
    int rc = harvbk_target_config_new(&cfg);
    if (rc != 0) {
        cli_err("target set: %s", harvbk_strerror(rc));
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    char *secret = NULL;
    size_t secret_len = 0;
    char num[32];

    if ((ex = set_key(cfg, HARVBK_TARGET_URL, url, "URL")))
        goto out_cfg;
    cli_opt *o;
    if ((o = cli_opt_find(opts, "codec"))->count &&
        (ex = set_key(cfg, HARVBK_TARGET_CODEC, o->value, "--codec")))
        goto out_cfg;
    if ((o = cli_opt_find(opts, "chunk-size"))->count) {
        uint64_t v;
        if (!cli_parse_size(o->value, &v)) {
            ex = cli_usage_err(H, "invalid value '%s' for --chunk-size: expected bytes with an "
                                  "optional K or M suffix",
                               o->value);
            goto out_cfg;
        }
        snprintf(num, sizeof num, "%llu", (unsigned long long)v);
        if ((ex = set_key(cfg, HARVBK_TARGET_CHUNK_SIZE, num, "--chunk-size")))
            goto out_cfg;
    }
    if ((o = cli_opt_find(opts, "endpoint"))->count &&
        (ex = set_key(cfg, HARVBK_TARGET_ENDPOINT, o->value, "--endpoint")))
        goto out_cfg;
    if ((o = cli_opt_find(opts, "region"))->count &&
        (ex = set_key(cfg, HARVBK_TARGET_REGION, o->value, "--region")))
        goto out_cfg;
    if ((o = cli_opt_find(opts, "access-key-id"))->count &&
        (ex = set_key(cfg, HARVBK_TARGET_ACCESS_KEY_ID, o->value, "--access-key-id")))
        goto out_cfg;
    if ((o = cli_opt_find(opts, "ca-cert"))->count) {
        char *abs = cli_abspath(o->value);
        ex = set_key(cfg, HARVBK_TARGET_CA_CERT_FILE, abs ? abs : o->value, "--ca-cert");
        free(abs);
        if (ex)
            goto out_cfg;
    }
    if (cli_opt_find(opts, "virtual-hosted")->count &&
        (ex = set_key(cfg, HARVBK_TARGET_VIRTUAL_HOSTED, "1", "--virtual-hosted")))
        goto out_cfg;
    if ((o = cli_opt_find(opts, "refresh-interval"))->count) {
        uint64_t v;
        if (!cli_parse_u64(o->value, &v)) {
            ex = cli_usage_err(H, "invalid value '%s' for --refresh-interval: expected whole "
                                  "seconds",
                               o->value);
            goto out_cfg;
        }
        if ((ex = set_key(cfg, HARVBK_TARGET_REFRESH_INTERVAL, o->value, "--refresh-interval")))
            goto out_cfg;
    }
    if ((o = cli_opt_find(opts, "timeout"))->count) {
        uint64_t ms;
        if (!cli_parse_seconds_ms(o->value, &ms) || ms == 0) {
            ex = cli_usage_err(H, "invalid value '%s' for --timeout: expected seconds > 0",
                               o->value);
            goto out_cfg;
        }
        snprintf(num, sizeof num, "%llu", (unsigned long long)ms);
        if ((ex = set_key(cfg, HARVBK_TARGET_TIMEOUT_MS, num, "--timeout")))
            goto out_cfg;
    }
    if ((o = cli_opt_find(opts, "parallel"))->count) {
        uint64_t v;
        if (!cli_parse_u64(o->value, &v) || v == 0) {
            ex = cli_usage_err(H, "invalid value '%s' for --parallel: expected a number > 0",
                               o->value);
            goto out_cfg;
        }
        if ((ex = set_key(cfg, HARVBK_TARGET_PARALLEL, o->value, "--parallel")))
            goto out_cfg;
    }
    if (cli_opt_find(opts, "read-only")->count &&
        (ex = set_key(cfg, HARVBK_TARGET_READ_ONLY, "1", "--read-only")))
        goto out_cfg;
    if (cli_opt_find(opts, "store-secret")->count &&
        (ex = set_key(cfg, HARVBK_TARGET_STORE_SECRET, "1", "--store-secret")))
        goto out_cfg;
    /* encryption: a key file or passphrase file recorded by path, or the key
     * given for this command (global --key-file / --passphrase-file) */
    cli_opt *okf = cli_opt_find(opts, "key-file"), *opf = cli_opt_find(opts, "passphrase-file");
    if (okf->count && opf->count) {
        ex = cli_usage_err(H, "give --key-file or --passphrase-file, not both");
        goto out_cfg;
    }
    if (cli_opt_find(opts, "encrypt")->count &&
        (ex = set_key(cfg, HARVBK_TARGET_ENCRYPT, "1", "--encrypt")))
        goto out_cfg;
    if (okf->count || opf->count) {
        cli_opt *ko = okf->count ? okf : opf;
        char *abs = cli_abspath(ko->value);
        ex = set_key(cfg, okf->count ? HARVBK_TARGET_KEY_FILE : HARVBK_TARGET_PASSPHRASE_FILE,
                     abs ? abs : ko->value, okf->count ? "--key-file" : "--passphrase-file");
        free(abs);
        if (ex)
            goto out_cfg;
    } else {
        harvbk_key *key = NULL;
        if (cli_env_key(&key, "target set") != 0) {
            ex = CLI_EXIT_FAIL;
            goto out_cfg;
        }
        if (key) {
            rc = harvbk_target_config_set_key(cfg, key);
            harvbk_key_free(key);
            if (rc != 0) {
                cli_err("target set: %s", harvbk_error_last());
                ex = CLI_EXIT_FAIL;
                goto out_cfg;
            }
        }
    }

    /* The secret: from --secret-access-key-file, else the global option /
     * $HARVBK_SECRET_ACCESS_KEY_FILE, else $AWS_SECRET_ACCESS_KEY (S3 only). */
    const char *secret_file = NULL;
    if ((o = cli_opt_find(opts, "secret-access-key-file"))->count)
        secret_file = o->value;
    else if (getenv("HARVBK_SECRET_ACCESS_KEY_FILE") && *getenv("HARVBK_SECRET_ACCESS_KEY_FILE"))
        secret_file = getenv("HARVBK_SECRET_ACCESS_KEY_FILE");
    if (secret_file) {
        int err = cli_read_secret(secret_file, &secret);
        if (err) {
            cli_err("target set: cannot read secret access key file '%s': %s", secret_file,
                    cli_secret_error(err));
            ex = CLI_EXIT_FAIL;
            goto out_cfg;
        }
        secret_len = strlen(secret);
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, secret);
    } else if (strncmp(url, "s3://", 5) == 0 && getenv("AWS_SECRET_ACCESS_KEY") &&
               *getenv("AWS_SECRET_ACCESS_KEY")) {
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY,
                                      getenv("AWS_SECRET_ACCESS_KEY"));
    } else {
        rc = 0;
    }
    if (rc != 0) {
        cli_err("target set: the secret access key was refused: %s", harvbk_strerror(rc));
        ex = CLI_EXIT_FAIL;
        goto out_cfg;
    }

    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx) {
        ex = CLI_EXIT_FAIL;
        goto out_cfg;
    }
    rc = harvbk_ctx_set_target(ctx, cfg);
    if (rc != 0) {
        char what[1200];
        snprintf(what, sizeof what, "target set %s", url);
        ex = cli_fail_ctx(ctx, rc, what);
    } else {
        char enc[8] = "";
        harvbk_target_config_get(cfg, HARVBK_TARGET_ENCRYPT, enc, sizeof enc, NULL);
        printf("target set: %s%s%s\n", url,
               cli_opt_find(opts, "read-only")->count ? " (read-only)" : "",
               strcmp(enc, "1") == 0 ? " (encrypted)" : "");
        ex = CLI_EXIT_OK;
    }
    harvbk_ctx_free(ctx);

out_cfg:
    if (secret) {
        cli_wipe(secret, secret_len);
        free(secret);
    }
    harvbk_target_config_free(cfg);
out:
    return ex;
}

static void show_setting(const harvbk_target_config *cfg, harvbk_target_key key,
                         const char *label, const char *dflt, const char *suffix)
{
    char buf[2048];
    harvbk_target_config_get(cfg, key, buf, sizeof buf, NULL);
    if (buf[0])
        printf("%-20s %s%s\n", label, buf, suffix ? suffix : "");
    else if (dflt)
        printf("%-20s %s\n", label, dflt);
}

static int target_show(cli_args *a)
{
    int ex = 0;
    harvbk_ctx *ctx = cli_open_ctx(a->env);
    if (!ctx)
        return CLI_EXIT_FAIL;
    harvbk_target_config *cfg = NULL;
    int rc = harvbk_ctx_get_target(ctx, &cfg);
    if (rc == HARVBK_E_NOTARGET) {
        cli_err("target show: no backup target configured (set one with 'harvbk target set "
                "URL')");
        harvbk_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "target show");
        harvbk_ctx_free(ctx);
        return ex;
    }
    char url[2048], buf[64];
    harvbk_target_config_get(cfg, HARVBK_TARGET_URL, url, sizeof url, NULL);
    bool s3 = strncmp(url, "s3://", 5) == 0;
    printf("%-20s %s\n", "url:", url);
    show_setting(cfg, HARVBK_TARGET_CODEC, "codec:", "zstd (default)", NULL);
    harvbk_target_config_get(cfg, HARVBK_TARGET_CHUNK_SIZE, buf, sizeof buf, NULL);
    uint64_t cs;
    if (buf[0] && cli_parse_u64(buf, &cs)) {
        char h[32];
        printf("%-20s %s (%s)\n", "chunk-size:", buf, cli_fmt_size(cs, h, sizeof h));
    } else {
        bool remote = s3 || strncmp(url, "nfs://", 6) == 0;
        printf("%-20s %s\n", "chunk-size:",
               remote ? "4194304 (4.0 MiB, default)" : "1048576 (1.0 MiB, default)");
    }
    show_setting(cfg, HARVBK_TARGET_ENDPOINT, "endpoint:", s3 ? "(default)" : NULL, NULL);
    show_setting(cfg, HARVBK_TARGET_REGION, "region:", s3 ? "(default)" : NULL, NULL);
    show_setting(cfg, HARVBK_TARGET_ACCESS_KEY_ID, "access-key-id:", s3 ? "(not set)" : NULL,
                 NULL);
    if (s3) {
        /* the library never returns the secret: say where it comes from */
        harvbk_target_config_get(cfg, HARVBK_TARGET_STORE_SECRET, buf, sizeof buf, NULL);
        const char *f = getenv("HARVBK_SECRET_ACCESS_KEY_FILE");
        const char *aws = getenv("AWS_SECRET_ACCESS_KEY");
        const char *from;
        if (f && *f)
            from = "given for this command (secret access key file)";
        else if (strcmp(buf, "1") == 0)
            from = "stored in the state directory (mode 0600)";
        else if (aws && *aws)
            from = "not stored; taken from $AWS_SECRET_ACCESS_KEY";
        else
            from = "not stored and not given (--secret-access-key-file or "
                   "$AWS_SECRET_ACCESS_KEY)";
        printf("%-20s %s\n", "secret-access-key:", from);
    }
    show_setting(cfg, HARVBK_TARGET_CA_CERT_FILE, "ca-cert:", NULL, NULL);
    if (s3) {
        harvbk_target_config_get(cfg, HARVBK_TARGET_VIRTUAL_HOSTED, buf, sizeof buf, NULL);
        printf("%-20s %s\n", "addressing:",
               strcmp(buf, "1") == 0 ? "virtual-hosted" : "path style");
    }
    show_setting(cfg, HARVBK_TARGET_REFRESH_INTERVAL, "refresh-interval:", "0 (on demand)",
                 " s");
    harvbk_target_config_get(cfg, HARVBK_TARGET_TIMEOUT_MS, buf, sizeof buf, NULL);
    uint64_t ms;
    if (buf[0] && cli_parse_u64(buf, &ms))
        printf("%-20s %g s\n", "timeout:", (double)ms / 1000.0);
    else
        printf("%-20s %s\n", "timeout:", "10 s (default)");
    show_setting(cfg, HARVBK_TARGET_PARALLEL, "parallel:", "automatic", NULL);
    harvbk_target_config_get(cfg, HARVBK_TARGET_READ_ONLY, buf, sizeof buf, NULL);
    printf("%-20s %s\n", "read-only:", strcmp(buf, "1") == 0 ? "yes" : "no");
    char kpath[4096], ppath[4096];
    harvbk_target_config_get(cfg, HARVBK_TARGET_ENCRYPT, buf, sizeof buf, NULL);
    harvbk_target_config_get(cfg, HARVBK_TARGET_KEY_FILE, kpath, sizeof kpath, NULL);
    harvbk_target_config_get(cfg, HARVBK_TARGET_PASSPHRASE_FILE, ppath, sizeof ppath, NULL);
    bool want_enc = strcmp(buf, "1") == 0;
    harvbk_target_config_free(cfg);

    /* A stored secret is in the context already; else the file or environment. */
    rc = cli_session_secret(ctx, "target show");
    if (rc == 0)
        rc = harvbk_ctx_check_target(ctx);
    /* encryption: what the store says (no key needed), and the key */
    const char *kf = getenv("HARVBK_KEY_FILE"), *pf = getenv("HARVBK_PASSPHRASE_FILE");
    char keyfrom[4200];
    if (kf && *kf)
        snprintf(keyfrom, sizeof keyfrom, "key file %s (given for this command)", kf);
    else if (pf && *pf)
        snprintf(keyfrom, sizeof keyfrom, "passphrase file %s (given for this command)", pf);
    else if (kpath[0])
        snprintf(keyfrom, sizeof keyfrom, "key file %s", kpath);
    else if (ppath[0])
        snprintf(keyfrom, sizeof keyfrom, "passphrase file %s", ppath);
    else
        snprintf(keyfrom, sizeof keyfrom, "not given (--key-file or --passphrase-file)");
    harvbk_store_keys *keys = NULL;
    int krc = harvbk_store_keys_get(ctx, HARVBK_STORE_TARGET, &keys);
    if (krc == 0 && harvbk_store_keys_encrypted(keys)) {
        printf("%-20s %s\n", "encryption:", "aes-256-gcm");
        printf("%-20s %s\n", "key-fingerprint:", harvbk_store_keys_fingerprint(keys));
        printf("%-20s %s\n", "key:", keyfrom);
        size_t n = harvbk_store_keys_count(keys), use = n;
        for (size_t i = 0; i < n; i++)
            if (harvbk_store_keys_in_use(keys, i))
                use = i;
        if (use < n)
            printf("%-20s %zu (this key: %s, %s)\n", "keys:", n, harvbk_store_keys_id(keys, use),
                   harvbk_store_keys_kind(keys, use));
        else
            printf("%-20s %zu (none of them is the key above)\n", "keys:", n);
    } else if (krc == 0) {
        printf("%-20s %s\n", "encryption:", want_enc ? "none (but encryption is configured)"
                                                      : "none");
    } else {
        printf("%-20s %s\n", "encryption:", want_enc ? "configured (store not readable)"
                                                      : "unknown (store not readable)");
        if (want_enc)
            printf("%-20s %s\n", "key:", keyfrom);
    }
    harvbk_store_keys_free(keys);
    if (rc == 0) {
        printf("%-20s yes\n", "reachable:");
        ex = CLI_EXIT_OK;
    } else {
        char msg[1024];
        cli_libmsg(ctx, NULL, rc, msg, sizeof msg);
        printf("%-20s no (%s)\n", "reachable:", msg);
        ex = CLI_EXIT_FAIL;
    }
    harvbk_ctx_free(ctx);
    return ex;
}

/* ---- target key add|remove|list|generate ---- */

static int key_store_kind(cli_opt *opts)
{
    return cli_opt_find(opts, "snapshot-store")->count ? HARVBK_STORE_SNAPSHOTS
                                                         : HARVBK_STORE_TARGET;
}

static const char *store_word(int kind)
{
    return kind == HARVBK_STORE_SNAPSHOTS ? "snapshot store" : "target's store";
}

static int key_add(cli_args *a)
{
    const char *H = a->H;
    cli_opt *opts = a->opts;
    harvbk_ctx *ctx = NULL;
    harvbk_key *key = NULL;
    int ex;
    cli_opt *nk = cli_opt_find(opts, "new-key-file"), *np = cli_opt_find(opts, "new-passphrase-file");
    if (nk->count + np->count != 1) {
        ex = cli_usage_err(H, "give exactly one of --new-key-file and --new-passphrase-file");
        goto out;
    }
    int rc = nk->count ? harvbk_key_from_file(&key, nk->value)
                       : harvbk_key_from_passphrase_file(&key, np->value);
    if (rc != 0) {
        cli_err("target key add: %s", harvbk_error_last());
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int kind = key_store_kind(opts);
    ctx = cli_open_ctx(a->env);
    if (!ctx || (kind == HARVBK_STORE_TARGET && cli_session_secret(ctx, "target key add") != 0)) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    char id[32] = "";
    rc = harvbk_store_key_add(ctx, (harvbk_store_kind)kind, key, id, sizeof id);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "target key add");
        goto out;
    }
    printf("key %s (%s) added to the %s\n", id, nk->count ? "key-file" : "passphrase",
           store_word(kind));
    ex = CLI_EXIT_OK;
out:
    harvbk_key_free(key);
    harvbk_ctx_free(ctx);
    return ex;
}

static int key_remove(cli_args *a)
{
    const char **pos = a->pos;
    harvbk_ctx *ctx = NULL;
    int ex;
    int kind = key_store_kind(a->opts);
    ctx = cli_open_ctx(a->env);
    if (!ctx ||
        (kind == HARVBK_STORE_TARGET && cli_session_secret(ctx, "target key remove") != 0)) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = harvbk_store_key_remove(ctx, (harvbk_store_kind)kind, pos[0]);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "target key remove");
        goto out;
    }
    printf("key %s removed from the %s\n", pos[0], store_word(kind));
    ex = CLI_EXIT_OK;
out:
    harvbk_ctx_free(ctx);
    return ex;
}

static int key_list(cli_args *a)
{
    harvbk_ctx *ctx = NULL;
    harvbk_store_keys *keys = NULL;
    int ex;
    int kind = key_store_kind(a->opts);
    ctx = cli_open_ctx(a->env);
    if (!ctx || (kind == HARVBK_STORE_TARGET && cli_session_secret(ctx, "target key list") != 0)) {
        ex = CLI_EXIT_FAIL;
        goto out;
    }
    int rc = harvbk_store_keys_get(ctx, (harvbk_store_kind)kind, &keys);
    if (rc != 0) {
        ex = cli_fail_ctx(ctx, rc, "target key list");
        goto out;
    }
    size_t n = harvbk_store_keys_count(keys);
    if (cli_opt_find(a->opts, "json")->count) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        cJSON_AddBoolToObject(o, "encrypted", harvbk_store_keys_encrypted(keys));
        cJSON_AddStringToObject(o, "fingerprint", harvbk_store_keys_fingerprint(keys));
        cJSON_AddBoolToObject(o, "unlocked", harvbk_store_keys_unlocked(keys));
        for (size_t i = 0; i < n; i++) {
            cJSON *k = cJSON_CreateObject();
            cJSON_AddStringToObject(k, "id", harvbk_store_keys_id(keys, i));
            cJSON_AddStringToObject(k, "kind", harvbk_store_keys_kind(keys, i));
            cJSON_AddNumberToObject(k, "created", (double)harvbk_store_keys_created(keys, i));
            cJSON_AddBoolToObject(k, "in_use", harvbk_store_keys_in_use(keys, i));
            cJSON_AddItemToArray(arr, k);
        }
        cJSON_AddItemToObject(o, "keys", arr);
        ex = cli_print_json(o);
        goto out;
    }
    if (!harvbk_store_keys_encrypted(keys)) {
        printf("the %s is not encrypted: it has no keys\n", store_word(kind));
        ex = CLI_EXIT_OK;
        goto out;
    }
    printf("store key fingerprint: %s%s\n", harvbk_store_keys_fingerprint(keys),
           harvbk_store_keys_unlocked(keys) ? "" : " (this context's key does not open it)");
    printf("%-16s  %-10s  %-20s  %s\n", "ID", "KIND", "ADDED", "IN USE");
    for (size_t i = 0; i < n; i++) {
        char t[32];
        int64_t c = harvbk_store_keys_created(keys, i);
        printf("%-16s  %-10s  %-20s  %s\n", harvbk_store_keys_id(keys, i),
               harvbk_store_keys_kind(keys, i), c ? cli_fmt_time(c, t, sizeof t) : "-",
               harvbk_store_keys_in_use(keys, i) ? "yes" : "");
    }
    ex = CLI_EXIT_OK;
out:
    harvbk_store_keys_free(keys);
    harvbk_ctx_free(ctx);
    return ex;
}

/* A new key file: 32 random bytes as 64 hex digits and a newline, created
 * with mode 0600 (never over an existing file). */
static int key_generate(cli_args *a)
{
    const char **pos = a->pos;
    unsigned char raw[32];
    char hex[66];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        cli_err("target key generate: no random bytes: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[64] = '\n';
    hex[65] = '\0';
    cli_wipe(raw, sizeof raw);
    int fd = open(pos[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        cli_wipe(hex, sizeof hex);
        cli_err("target key generate: cannot create '%s': %s", pos[0], strerror(err));
        return CLI_EXIT_FAIL;
    }
    bool ok = write(fd, hex, 65) == 65 && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    cli_wipe(hex, sizeof hex);
    if (!ok) {
        cli_err("target key generate: cannot write '%s': %s", pos[0], strerror(err));
        unlink(pos[0]);
        return CLI_EXIT_FAIL;
    }
    printf("key file %s created (mode 0600): keep a copy somewhere safe, without it the "
           "store cannot be read\n",
           pos[0]);
    return CLI_EXIT_OK;
}

static const cli_opt OPTS_SET[] = {
    {"codec", CLI_OPT_VALUE, 0, 0, 0},
    {"chunk-size", CLI_OPT_VALUE, 0, 0, 0},
    {"endpoint", CLI_OPT_VALUE, 0, 0, 0},
    {"region", CLI_OPT_VALUE, 0, 0, 0},
    {"access-key-id", CLI_OPT_VALUE, 0, 0, 0},
    {"secret-access-key-file", CLI_OPT_VALUE, 0, 0, 0},
    {"ca-cert", CLI_OPT_VALUE, 0, 0, 0},
    {"virtual-hosted", CLI_OPT_FLAG, 0, 0, 0},
    {"refresh-interval", CLI_OPT_VALUE, 0, 0, 0},
    {"timeout", CLI_OPT_VALUE, 0, 0, 0},
    {"parallel", CLI_OPT_VALUE, 0, 0, 0},
    {"store-secret", CLI_OPT_FLAG, 0, 0, 0},
    {"read-only", CLI_OPT_FLAG, 0, 0, 0},
    {"encrypt", CLI_OPT_FLAG, 0, 0, 0},
    {"key-file", CLI_OPT_VALUE, 0, 0, 0},
    {"passphrase-file", CLI_OPT_VALUE, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
static const cli_opt OPTS_KEY_ADD[] = {
    {"new-key-file", CLI_OPT_VALUE, 0, 0, 0},
    {"new-passphrase-file", CLI_OPT_VALUE, 0, 0, 0},
    {"snapshot-store", CLI_OPT_FLAG, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
/* list: --snapshot-store and --json; remove: --snapshot-store */
static const cli_opt OPTS_KEY_LIST[] = {
    {"snapshot-store", CLI_OPT_FLAG, 0, 0, 0},
    {"json", CLI_OPT_FLAG, 0, 0, 0},
    {NULL, 0, 0, 0, 0},
};
static const cli_opt OPTS_KEY_REMOVE[] = {{"snapshot-store", CLI_OPT_FLAG, 0, 0, 0},
                                          {NULL, 0, 0, 0, 0}};

static const cli_cmd TARGET_KEY_CMDS[] = {
    {"add", NULL, key_add, OPTS_KEY_ADD, 0, 0, NULL, NULL},
    {"remove", "rm", key_remove, OPTS_KEY_REMOVE, 1, 1,
     "target key remove needs the key's ID (see 'target key list')", NULL},
    {"list", "ls", key_list, OPTS_KEY_LIST, 0, 0, NULL, NULL},
    {"generate", NULL, key_generate, NULL, 1, 1, "target key generate needs the FILE to create",
     NULL},
    {NULL},
};

static const cli_cmd TARGET_CMDS[] = {
    {"set", NULL, target_set, OPTS_SET, 1, 1, "target set needs exactly one URL", NULL},
    {"show", NULL, target_show, NULL, 0, 0, NULL, NULL},
    {NULL},
};

int cmd_target(cli_env *env, int argc, char **argv)
{
    static const cli_group g = {"harvbk target", HELP_TARGET, "set, show or key", TARGET_CMDS};
    static const cli_group key = {"harvbk target key", HELP_TARGET,
                                  "add, remove, list or generate", TARGET_KEY_CMDS};
    /* "target key ...": a group of its own */
    if (argc > 0 && strcmp(argv[0], "key") == 0)
        return cli_dispatch(&key, env, argc - 1, argv + 1);
    return cli_dispatch(&g, env, argc, argv);
}
