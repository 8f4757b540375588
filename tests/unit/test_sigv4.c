/* tests/unit/test_sigv4.c - AWS Signature Version 4 against published vectors:
 * the signing-key example of the AWS general reference, the S3 API reference
 * examples (GET Object, PUT Object, GET ?lifecycle, list with an unsorted
 * query) and cases of the AWS SigV4 test suite (query order, UTF-8 and
 * unreserved query, header trimming and duplicates). Exact signature hex. */
#include "testutil.h"

#include "core/hb.h"
#include "target/sigv4.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* AWS SigV4 test suite credentials and time */
static const hb_sigv4_creds SUITE = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                      "us-east-1", "service" };
#define SUITE_DATE "20150830T123600Z"
/* S3 API reference examples */
static const hb_sigv4_creds S3EX = { "AKIAIOSFODNN7EXAMPLE",
                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                                     "s3" };
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static void sign_expect(const char *method, const char *uri, const hb_kv *q, size_t nq,
                        const hb_kv *h, size_t nh, const char *payload, const char *date,
                        const hb_sigv4_creds *c, const char *want_sig, const char *want_creq)
{
    hb_sigv4_req r = { method, uri, q, nq, h, nh, payload, date };
    char *auth = NULL, sig[65];
    hb_buf creq = HB_BUF_INIT;
    assert_int_equal(hb_sigv4_sign(&r, c, &auth, sig, &creq, NULL), 0);
    if (want_creq)
        assert_string_equal((char *)creq.data, want_creq);
    assert_string_equal(sig, want_sig);
    assert_non_null(strstr(auth, want_sig));
    assert_true(strncmp(auth, "AWS4-HMAC-SHA256 Credential=", 28) == 0);
    assert_null(strstr(auth, c->secret)); /* the secret never appears */
    hb_free(auth);
    hb_buf_free(&creq);
}

static void test_signing_key_matches_aws_example(void **state)
{
    (void)state;
    uint8_t key[32];
    char hex[65];
    assert_int_equal(hb_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                          "us-east-1", "iam", key),
                     0);
    hb_hex(key, sizeof key, hex);
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_suite_get_vanilla(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
    sign_expect("GET", "/", NULL, 0, h, 2, EMPTY_SHA, SUITE_DATE, &SUITE,
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" SUITE_DATE
                "\n\nhost;x-amz-date\n" EMPTY_SHA);
}

static void test_suite_query_is_sorted(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
    hb_kv q[] = { { "Param2", "value2" }, { "Param1", "value1" } };
    sign_expect("GET", "/", q, 2, h, 2, EMPTY_SHA, SUITE_DATE, &SUITE,
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:"
                SUITE_DATE "\n\nhost;x-amz-date\n" EMPTY_SHA);
}

static void test_suite_utf8_and_unreserved_query(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
    hb_kv q1[] = { { "\xe1\x88\xb4", "bar" } };
    sign_expect("GET", "/", q1, 1, h, 2, EMPTY_SHA, SUITE_DATE, &SUITE,
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04", NULL);
    const char *u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    hb_kv q2[] = { { u, u } };
    sign_expect("GET", "/", q2, 1, h, 2, EMPTY_SHA, SUITE_DATE, &SUITE,
                "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197", NULL);
    /* sorted by the encoded name: "%E1..." < "Param" < "Param-3" */
    hb_kv q3[] = { { "Param-3", "Value3" }, { "Param", "Value2" }, { "\xe1\x88\xb4", "Value1" } };
    sign_expect("GET", "/", q3, 3, h, 2, EMPTY_SHA, SUITE_DATE, &SUITE,
                "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
                "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com"
                "\nx-amz-date:" SUITE_DATE "\n\nhost;x-amz-date\n" EMPTY_SHA);
}

static void test_suite_headers_trimmed_and_merged(void **state)
{
    (void)state;
    hb_kv h1[] = { { "Host", "example.amazonaws.com" },
                   { "My-Header1", " value1" },
                   { "My-Header2", " \"a   b   c\"" },
                   { "X-Amz-Date", SUITE_DATE } };
    sign_expect("GET", "/", NULL, 0, h1, 4, EMPTY_SHA, SUITE_DATE, &SUITE,
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736", NULL);
    hb_kv h2[] = { { "Host", "example.amazonaws.com" },
                   { "My-Header1", "value2" },
                   { "My-Header1", "value2" },
                   { "My-Header1", "value1" },
                   { "X-Amz-Date", SUITE_DATE } };
    sign_expect("GET", "/", NULL, 0, h2, 5, EMPTY_SHA, SUITE_DATE, &SUITE,
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
                "x-amz-date:" SUITE_DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA);
}

static void test_suite_post_with_body(void **state)
{
    (void)state;
    char ph[65];
    hb_sigv4_sha256_hex("Param1=value1", 13, ph);
    assert_string_equal(ph, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    hb_kv h[] = { { "Content-Type", "application/x-www-form-urlencoded" },
                  { "Content-Length", "13" },
                  { "Host", "example.amazonaws.com" },
                  { "x-amz-content-sha256", ph },
                  { "X-Amz-Date", SUITE_DATE } };
    sign_expect("POST", "/", NULL, 0, h, 5, ph, SUITE_DATE, &SUITE,
                "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b", NULL);
}

static void test_s3_get_object_example(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", S3_HOST },
                  { "Range", "bytes=0-9" },
                  { "x-amz-content-sha256", EMPTY_SHA },
                  { "x-amz-date", S3_DATE } };
    sign_expect("GET", "/test.txt", NULL, 0, h, 4, EMPTY_SHA, S3_DATE, &S3EX,
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:" S3_DATE
                "\n\nhost;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
    /* the full header value */
    hb_sigv4_req r = { "GET", "/test.txt", NULL, 0, h, 4, EMPTY_SHA, S3_DATE };
    char *auth = NULL;
    assert_int_equal(hb_sigv4_sign(&r, &S3EX, &auth, NULL, NULL, NULL), 0);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                              "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
                              "x-amz-content-sha256;x-amz-date, Signature="
                              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    hb_free(auth);
}

static void test_s3_put_object_example_encodes_the_key(void **state)
{
    (void)state;
    const char *body = "Welcome to Amazon S3.";
    char ph[65];
    hb_sigv4_sha256_hex(body, strlen(body), ph);
    assert_string_equal(ph, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    hb_buf uri = HB_BUF_INIT;
    assert_int_equal(hb_buf_append_str(&uri, "/"), 0);
    assert_int_equal(hb_sigv4_uri_encode(&uri, "test$file.text", 14, true), 0);
    assert_string_equal((char *)uri.data, "/test%24file.text");
    hb_kv h[] = { { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                  { "Host", S3_HOST },
                  { "x-amz-content-sha256", ph },
                  { "x-amz-date", S3_DATE },
                  { "x-amz-storage-class", "REDUCED_REDUNDANCY" } };
    sign_expect("PUT", (char *)uri.data, NULL, 0, h, 5, ph, S3_DATE, &S3EX,
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", NULL);
    hb_buf_free(&uri);
}

static void test_s3_subresource_and_list_queries(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", S3_HOST },
                  { "x-amz-content-sha256", EMPTY_SHA },
                  { "x-amz-date", S3_DATE } };
    hb_kv lc[] = { { "lifecycle", NULL } };
    sign_expect("GET", "/", lc, 1, h, 3, EMPTY_SHA, S3_DATE, &S3EX,
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543", NULL);
    hb_kv lq[] = { { "prefix", "J" }, { "max-keys", "2" } };
    sign_expect("GET", "/", lq, 2, h, 3, EMPTY_SHA, S3_DATE, &S3EX,
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", NULL);
}

static void test_uri_encoding_rules(void **state)
{
    (void)state;
    hb_buf b = HB_BUF_INIT;
    const char *s = "a b+c%d/\xc3\xbc~._-*=&";
    assert_int_equal(hb_sigv4_uri_encode(&b, s, strlen(s), true), 0);
    assert_string_equal((char *)b.data, "a%20b%2Bc%25d/%C3%BC~._-%2A%3D%26");
    hb_buf_reset(&b);
    assert_int_equal(hb_sigv4_uri_encode(&b, s, strlen(s), false), 0);
    assert_string_equal((char *)b.data, "a%20b%2Bc%25d%2F%C3%BC~._-%2A%3D%26");
    /* canonical query: encoded, sorted, "name=" for a parameter without value */
    hb_kv q[] = { { "uploads", NULL }, { "a", "x y" }, { "prefix", "p/q+r" } };
    assert_int_equal(hb_sigv4_canonical_query(q, 3, &b), 0);
    assert_string_equal((char *)b.data, "a=x%20y&prefix=p%2Fq%2Br&uploads=");
    assert_int_equal(hb_sigv4_canonical_query(NULL, 0, &b), 0);
    assert_string_equal((char *)b.data, "");
    hb_buf_free(&b);
    char d[HB_SIGV4_DATE_LEN + 1];
    hb_sigv4_amz_date((time_t)1440938160, d);
    assert_string_equal(d, SUITE_DATE);
}

static void test_bad_input_is_refused(void **state)
{
    (void)state;
    hb_kv h[] = { { "Host", "h" } };
    char *auth = (char *)"x";
    hb_sigv4_req r = { "GET", "/", NULL, 0, h, 1, EMPTY_SHA, "2015-08-30" };
    assert_int_equal(hb_sigv4_sign(&r, &SUITE, &auth, NULL, NULL, NULL), HARVBK_E_INVALID);
    assert_null(auth);
    r.amz_date = SUITE_DATE;
    hb_sigv4_creds c = SUITE;
    c.secret = NULL;
    assert_int_equal(hb_sigv4_sign(&r, &c, &auth, NULL, NULL, NULL), HARVBK_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signing_key_matches_aws_example),
        cmocka_unit_test(test_suite_get_vanilla),
        cmocka_unit_test(test_suite_query_is_sorted),
        cmocka_unit_test(test_suite_utf8_and_unreserved_query),
        cmocka_unit_test(test_suite_headers_trimmed_and_merged),
        cmocka_unit_test(test_suite_post_with_body),
        cmocka_unit_test(test_s3_get_object_example),
        cmocka_unit_test(test_s3_put_object_example_encodes_the_key),
        cmocka_unit_test(test_s3_subresource_and_list_queries),
        cmocka_unit_test(test_uri_encoding_rules),
        cmocka_unit_test(test_bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
