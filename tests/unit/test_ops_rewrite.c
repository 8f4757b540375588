/* tests/unit/test_ops_rewrite.c - the default metadata rewrite
 * (ops/rewrite.c) called directly: whatever bytes separate the tokens of a
 * VirtualMachine document, the result is exactly the rewrite of the same
 * document with plain spaces, or a refusal - never values moved between keys.
 */
#include "testutil.h"

#include "core/json.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const hb_rw_volume VOLS[] = { { "d1", "dst1-d1", NULL } };

/* Run the default on doc: its return; *out the new document (malloc'd,
 * NUL-terminated) or NULL when it set none. */
static int run_default(const char *doc, size_t len, char **out)
{
    harvbk_metadata_rewrite rw;
    hb_rewrite_init(&rw);
    rw.in = doc;
    rw.in_len = len;
    rw.src_ns = "default";
    rw.src_vm = "src1";
    rw.ns = "default";
    rw.vm = "dst1";
    rw.vols = VOLS;
    rw.nvols = 1;
    int rc = harvbk_metadata_rewrite_default(&rw, NULL);
    *out = NULL;
    if (rw.has_out) {
        *out = malloc(rw.out.len + 1);
        memcpy(*out, rw.out.data, rw.out.len);
        (*out)[rw.out.len] = '\0';
    }
    hb_rewrite_clear(&rw);
    return rc;
}

static bool cjson_accepts(const char *doc, size_t len)
{
    cJSON *root = NULL;
    hb_err e;
    hb_err_clear(&e);
    bool ok = hb_json_parse(doc, len, NULL, &root, &e) == 0;
    cJSON_Delete(root);
    return ok;
}

/* '~' marks where a separator may go. Numbers come first and the strings
 * after them hold \u0000 (kept as raw text): a scan that takes a key for a
 * value shifts every later string onto the next key without noticing. */
static const char TEMPLATE[] =
    "~{~\"kind\"~:~\"VirtualMachine\"~,~\"metadata\"~:~{~\"name\"~:~\"src1\"~,~\"namespace\"~:"
    "~\"default\"~,\"uid\"~:~\"u1\"~}~,~\"spec\"~:~{~\"n\"~:~[~1~,~2.50~,~12345678901234567890~]"
    "~,~\"a\"~:~\"x\\u0000y\"~,~\"b\"~:~\"p\\u0000q\"~,~\"c\"~:~\"z\"~,~\"t\"~:~true~,~\"nil\"~:"
    "~null~,~\"template\"~:~{~\"spec\"~:~{~\"volumes\"~:~[~{~\"name\"~:~\"d1\"~,"
    "~\"persistentVolumeClaim\"~:~{~\"claimName\"~:~\"src1-d1\"~}~}~]~}~}~}~}~";

/* TEMPLATE with marker `which` replaced by `sep` (sep_len bytes) and every
 * other marker removed; which = -1: all removed. */
static char *make_doc(int which, const char *sep, size_t sep_len, size_t *len)
{
    size_t n = strlen(TEMPLATE);
    char *d = malloc(n + sep_len + 1);
    size_t k = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (TEMPLATE[i] != '~') {
            d[k++] = TEMPLATE[i];
            continue;
        }
        if (m++ == which) {
            memcpy(d + k, sep, sep_len);
            k += sep_len;
        }
    }
    d[k] = '\0';
    *len = k;
    return d;
}

static int count_markers(void)
{
    int m = 0;
    for (const char *p = TEMPLATE; *p; p++)
        m += *p == '~';
    return m;
}

/* Every byte that is not part of a JSON token, at every place between tokens. */
static void test_default_rewrite_whitespace_never_moves_values(void **state)
{
    (void)state;
    size_t clen;
    char *clean = make_doc(-1, NULL, 0, &clen);
    char *want = NULL;
    assert_int_equal(run_default(clean, clen, &want), 0);
    assert_non_null(want);
    /* the rewrite itself is right */
    assert_non_null(strstr(want, "\"name\":\"dst1\""));
    assert_non_null(strstr(want, "\"a\":\"x\\u0000y\",\"b\":\"p\\u0000q\",\"c\":\"z\""));
    assert_non_null(strstr(want, "[1,2.50,12345678901234567890]"));
    assert_non_null(strstr(want, "\"claimName\":\"dst1-d1\""));
    assert_null(strstr(want, "uid"));

    int nm = count_markers();
    unsigned refused = 0, rewritten = 0, unchanged = 0;
    for (int b = 0; b <= 0x20; b++) {
        char sep[3] = { (char)b, (char)b, 0 };
        for (size_t sl = 1; sl <= 2; sl++) {
            for (int m = 0; m < nm; m++) {
                size_t len;
                char *doc = make_doc(m, sep, sl, &len);
                bool json_ws = b == ' ' || b == '\t' || b == '\n' || b == '\r';
                char *got = NULL;
                int rc = run_default(doc, len, &got);
                if (rc == 0 && got) {
                    if (strcmp(got, want) != 0)
                        fail_msg("byte 0x%02x x%zu at place %d: the rewrite differs:\n"
                                 " got  %s\n want %s",
                                 b, sl, m, got, want);
                    rewritten++;
                } else if (rc == 0) {
                    /* unchanged: only a document that is not JSON to the parser */
                    if (cjson_accepts(doc, len))
                        fail_msg("byte 0x%02x x%zu at place %d: a VirtualMachine document "
                                 "the parser accepts was left unchanged",
                                 b, sl, m);
                    unchanged++;
                } else {
                    if (rc != HARVBK_E_INVALID)
                        fail_msg("byte 0x%02x x%zu at place %d: refused with %s, not "
                                 "HARVBK_E_INVALID",
                                 b, sl, m, harvbk_error_name(rc));
                    assert_null(got);
                    refused++;
                }
                if (json_ws && !(rc == 0 && got)) /* JSON's own whitespace always works */
                    fail_msg("byte 0x%02x at place %d: not rewritten (%d)", b, m, rc);
                free(got);
                free(doc);
            }
        }
    }
    print_message("%u rewritten exactly, %u refused, %u left unchanged (not JSON)\n",
                  rewritten, refused, unchanged);
    assert_true(refused > 0);
    free(want);
    free(clean);
}

/* Every value of `in` (but metadata, which the rewrite changes) is in `out`
 * under the same key. */
static void assert_same_values(const cJSON *in, const cJSON *out)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, in)
    {
        if (it->string && strcmp(it->string, "metadata") == 0)
            continue;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(out, it->string);
        assert_non_null(o);
        if (cJSON_IsObject(it))
            assert_same_values(it, o);
        else
            assert_true(cJSON_Compare(it, o, 1));
    }
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The cases that moved values: a form feed, vertical tab or other control
 * byte between a key and its colon. Exactly right, or refused. */
static void test_default_rewrite_form_feed_before_colon(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},\"spec\":{\"n\":[1],"
        "\"a\"\f:\"x\\u0000y\",\"b\":\"p\\u0000q\",\"c\":\"z\"}}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},\"spec\":{\"n\":[1],"
        "\"a\"\v:\"x\\u0000y\",\"b\":\"p\\u0000q\",\"c\":\"z\"}}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},\"spec\":{\"n\":[1],"
        "\"a\"\x01:\"x\\u0000y\",\"b\":\"p\\u0000q\",\"c\":\"z\"}}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},\"spec\":{\"n\":[1],"
        "\"a\"\x1f\f\v:\"x\\u0000y\",\"b\":\"p\\u0000q\",\"c\":\"z\"}}",
        /* a key holding \u0000 hidden from the key scan by a form feed */
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},\"spec\":{"
        "\"k\\u0000x\"\f:1}}",
        /* another Kubernetes object that names the source VM */
        "{\"kind\":\"Thing\",\"metadata\":{\"name\":\"src1\"},\"n\":[1],"
        "\"a\"\f:\"x\\u0000y\",\"b\":\"p\\u0000q\"}",
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(docs); i++) {
        char *got = NULL;
        int rc = run_default(docs[i], strlen(docs[i]), &got);
        if (rc == 0 && got) {
            cJSON *in = cJSON_Parse(docs[i]), *out = cJSON_Parse(got);
            assert_non_null(in);
            assert_non_null(out);
            assert_same_values(in, out);
            /* \u0000 (cut short by the parser) stays where it was */
            assert_int_equal(count_of(got, "\\u0000"), count_of(docs[i], "\\u0000"));
            assert_null(strstr(got, "\"b\":\"x"));
            assert_non_null(strstr(got, "\"name\":\"dst1\""));
            cJSON_Delete(in);
            cJSON_Delete(out);
        } else {
            if (rc != HARVBK_E_INVALID)
                fail_msg("document %zu: %d %s", i, rc, got ? got : "(unchanged)");
            assert_null(got);
        }
        free(got);
    }
}

/* Through hb_rewrite_run (what a restore calls): the refusal says why. */
static void test_default_rewrite_refusal_message(void **state)
{
    (void)state;
    const char *doc = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\"\f:\"src1\"}}";
    harvbk_metadata_rewrite rw;
    hb_rewrite_init(&rw);
    rw.in = doc;
    rw.in_len = strlen(doc);
    rw.src_ns = "default";
    rw.src_vm = "src1";
    rw.ns = "default";
    rw.vm = "dst1";
    hb_buf res = HB_BUF_INIT;
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_rewrite_run(&rw, NULL, NULL, &res, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "default metadata rewrite"));
    assert_non_null(strstr(e.msg, "whitespace"));
    assert_int_equal(res.len, 0);
    hb_rewrite_clear(&rw);
    hb_buf_free(&res);
}

/* An object with the same key twice (found by fuzz_metadata_rewrite): cJSON
 * reads the first, Go and Python the last, so renaming the one could leave
 * the source VM's name in the other. A VirtualMachine document is refused,
 * any other one left as it is. */
static void test_default_rewrite_duplicate_keys(void **state)
{
    (void)state;
    static const char *const vm_docs[] = {
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
        "\"metadata\":{\"name\":\"src1\"}}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":\"x\",\"metadata\":{\"name\":\"src1\"}}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\",\"name\":\"src1\"}}",
        "{\"kind\":\"VirtualMachine\",\"spec\":{\"a\":[{\"b\":1,\"b\":2}]}}",
    };
    for (size_t i = 0; i < sizeof vm_docs / sizeof vm_docs[0]; i++) {
        char *out = NULL;
        assert_int_equal(run_default(vm_docs[i], strlen(vm_docs[i]), &out), HARVBK_E_UNSUPPORTED);
        assert_null(out);
    }
    const char *other = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"src1\"},"
                        "\"metadata\":{\"name\":\"src1\"}}";
    char *out = NULL;
    assert_int_equal(run_default(other, strlen(other), &out), 0);
    assert_null(out);
    /* the same keys in different objects are no duplicates */
    const char *ok = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
                     "\"spec\":{\"metadata\":{\"name\":\"x\"}}}";
    assert_int_equal(run_default(ok, strlen(ok), &out), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"metadata\":{\"name\":\"dst1\""));
    free(out);
}

/* A VirtualMachine whose "metadata" is not an object (found by
 * fuzz_metadata_rewrite): adding the new names used to append a second
 * "metadata" object, so readers took the old value. Refused instead; a
 * VirtualMachine without metadata still gets one. */
static void test_default_rewrite_metadata_not_object(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"kind\":\"VirtualMachine\",\"metadata\":1}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":\"src1\"}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":[{\"name\":\"src1\"}]}",
        "{\"kind\":\"VirtualMachine\",\"metadata\":null}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char *out = NULL;
        assert_int_equal(run_default(docs[i], strlen(docs[i]), &out), HARVBK_E_INVALID);
        assert_null(out);
        assert_non_null(strstr(harvbk_error_last(), "\"metadata\" is not an object"));
    }
    const char *none = "{\"kind\":\"VirtualMachine\",\"spec\":{}}";
    char *out = NULL;
    assert_int_equal(run_default(none, strlen(none), &out), 0);
    assert_non_null(out);
    cJSON *root = NULL;
    assert_int_equal(hb_json_parse(out, strlen(out), NULL, &root, NULL), 0);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    assert_true(cJSON_IsObject(meta));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring, "dst1");
    cJSON_Delete(root);
    free(out);
}

/* NUL inside strings (found by fuzz_metadata_rewrite). An escaped one
 * (\u0000) in a value is kept as written, so the result is JSON only to a
 * reader that allows NUL in strings (hb_json_parse_opaque; the strict reader
 * of our own records refuses it). A raw NUL byte inside a string (not JSON;
 * cJSON cuts the string there, and no printer could give it back) is refused
 * where the document would change, never printed cut short. */
static void test_default_rewrite_nul_in_strings(void **state)
{
    (void)state;
    const char *esc = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
                      "\"a\":\"x\\u0000y\"}";
    char *out = NULL;
    assert_int_equal(run_default(esc, strlen(esc), &out), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"a\":\"x\\u0000y\""));
    assert_non_null(strstr(out, "\"name\":\"dst1\""));
    cJSON *root = NULL;
    assert_int_equal(hb_json_parse_opaque(out, strlen(out), NULL, &root, NULL), 0);
    cJSON_Delete(root);
    root = NULL;
    assert_int_equal(hb_json_parse(out, strlen(out), NULL, &root, NULL), HARVBK_E_CORRUPT);
    free(out);

    static const char vm_val[] = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
                                 "\"a\":\"x\0y\",\"b\":\"z\"}";
    static const char vm_key[] = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
                                 "\"a\0b\":1}";
    static const char cm_src[] = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"src1\"},"
                                 "\"a\":\"x\0y\"}";
    const struct { const char *doc; size_t len; } refused[] = {
        { vm_val, sizeof vm_val - 1 }, { vm_key, sizeof vm_key - 1 },
        { cm_src, sizeof cm_src - 1 },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        out = NULL;
        assert_int_equal(run_default(refused[i].doc, refused[i].len, &out), HARVBK_E_INVALID);
        assert_null(out);
        assert_non_null(strstr(harvbk_error_last(), "raw NUL byte inside a string"));
    }
    /* an object that needs no change stays byte for byte */
    static const char cm_other[] = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"other\"},"
                                   "\"a\":\"x\0y\"}";
    out = NULL;
    assert_int_equal(run_default(cm_other, sizeof cm_other - 1, &out), 0);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_rewrite_whitespace_never_moves_values),
        cmocka_unit_test(test_default_rewrite_form_feed_before_colon),
        cmocka_unit_test(test_default_rewrite_refusal_message),
        cmocka_unit_test(test_default_rewrite_duplicate_keys),
        cmocka_unit_test(test_default_rewrite_metadata_not_object),
        cmocka_unit_test(test_default_rewrite_nul_in_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
