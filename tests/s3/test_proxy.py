#!/usr/bin/env python3
"""tests/s3/test_proxy.py - proves the verifying proxy of the S3 tests works.

Needs the servers of tests/s3/s3env.sh (env file in $HARVBK_TEST_S3_ENV; ctest
fixture "s3"). Checks that boto3 with the right secret can create, put, get,
list and delete (path and virtual-hosted style, HTTP and HTTPS with the test
CA) and gets its bytes back; that requests with a wrong secret, a tampered
body or header, an unsigned payload, unsigned x-amz-* headers, a stale date
or a non-canonical path are rejected; that each fault kind of the control
endpoint happens, and that {"fail_rate": 0} ends them; that the log never
shows the secret or a signature.
"""

import datetime
import re
import hashlib
import http.client
import os
import socket
import ssl
import sys
import time
import threading
import unittest
import warnings
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3util  # noqa: E402

import botocore.exceptions as bexc  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.compat import HTTPHeaders  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

ENV = s3util.load_env()
SECRET = s3util.secret(ENV)
BUCKET = ENV["HARVBK_TEST_S3_BUCKET"]
VBUCKET = ENV["HARVBK_TEST_S3_BUCKET_VHOST"]
RUN = f"proxytest-{os.getpid()}-{int(time.time())}"
SIGNATURES_SEEN = []

CONN_ERRORS = (bexc.ConnectionClosedError, bexc.EndpointConnectionError,
               bexc.ConnectionError, bexc.ReadTimeoutError)
TRUNC_ERRORS = CONN_ERRORS + (bexc.IncompleteReadError,) + (
    (bexc.ResponseStreamingError,) if hasattr(bexc, "ResponseStreamingError") else ())


class SignAll(S3SigV4Auth):
    """botocore's S3 signer, signing every header given (botocore leaves out
    user-agent and expect; a client may sign them)."""

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for k, v in request.headers.items():
            hm[k.lower()] = v
        return hm


def port_of(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])


def raw_request(method, path, body=b"", *, host=None, secret=SECRET, sign_hash=None,
                send_hash=None, extra_signed=None, extra_unsigned=None, when=None,
                akid=None, tls=False):
    """Sign a request with botocore and send it with http.client, possibly
    tampered with. Returns (status, body)."""
    endpoint = ENV["HARVBK_TEST_S3_ENDPOINT_TLS" if tls else "HARVBK_TEST_S3_ENDPOINT"]
    port = port_of(endpoint)
    host = host or (f"localhost:{port}" if tls else f"127.0.0.1:{port}")
    when = when or datetime.datetime.now(datetime.timezone.utc)
    ts = when.strftime("%Y%m%dT%H%M%SZ")
    sign_hash = sign_hash or hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    req.headers["Host"] = host
    req.headers["X-Amz-Date"] = ts
    req.headers["X-Amz-Content-SHA256"] = sign_hash
    for k, v in (extra_signed or {}).items():
        req.headers[k] = v
    req.context["timestamp"] = ts
    auth = SignAll(Credentials(akid or ENV["HARVBK_TEST_S3_ACCESS_KEY_ID"], secret),
                       "s3", ENV["HARVBK_TEST_S3_REGION"])
    creq = auth.canonical_request(req)
    sig = auth.signature(auth.string_to_sign(req, creq), req)
    SIGNATURES_SEEN.append(sig)
    auth._inject_signature_to_request(req, sig)
    headers = dict(req.headers.items())
    if send_hash is not None:
        headers["X-Amz-Content-SHA256"] = send_hash
    headers.update(extra_unsigned or {})
    if tls:
        ctx = ssl.create_default_context(cafile=ENV["HARVBK_TEST_S3_CA"])
        conn = http.client.HTTPSConnection("localhost", port, timeout=30, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def err_code(e):
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


class ProxyTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        warnings.simplefilter("ignore", ResourceWarning)  # boto3's pooled sockets
        s3util.control(ENV, {"fail_rate": 0})

    def tearDown(self):
        s3util.control(ENV, {"fail_rate": 0})

    # ------------------------------------------------------------ good clients

    def roundtrip(self, tls, vhost):
        s3 = s3util.client(ENV, tls=tls, vhost=vhost)
        bucket = VBUCKET if vhost else BUCKET
        prefix = f"{RUN}/rt-{int(tls)}{int(vhost)}/"
        objs = {
            prefix + "empty": b"",
            prefix + "small": b"hello, s3\n",
            prefix + "with space/ü+%~*!'()=&$@,;:": os.urandom(1000),
            prefix + "big": os.urandom(3 * 1024 * 1024 + 7),   # Expect: 100-continue
        }
        for i in range(5):
            objs[prefix + f"many/{i:03d}"] = bytes([i]) * (i + 1)
        for k, v in objs.items():
            s3.put_object(Bucket=bucket, Key=k, Body=v)
        for k, v in objs.items():
            self.assertEqual(s3.get_object(Bucket=bucket, Key=k)["Body"].read(), v, k)
            self.assertEqual(s3.head_object(Bucket=bucket, Key=k)["ContentLength"], len(v))
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 2}):
            keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(sorted(keys), sorted(objs))
        r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in objs]})
        self.assertEqual(len(r.get("Deleted", [])), len(objs))
        self.assertNotIn("Contents", s3.list_objects_v2(Bucket=bucket, Prefix=prefix))

    def test_roundtrip_path_http(self):
        self.roundtrip(tls=False, vhost=False)

    def test_roundtrip_vhost_http(self):
        self.roundtrip(tls=False, vhost=True)

    def test_roundtrip_path_https(self):
        self.roundtrip(tls=True, vhost=False)

    def test_roundtrip_vhost_https(self):
        self.roundtrip(tls=True, vhost=True)

    def test_bucket_create_delete(self):
        for tls in (False, True):
            s3 = s3util.client(ENV, tls=tls)
            name = f"harvbk-proxytest-{os.getpid()}-{int(tls)}"
            s3.create_bucket(Bucket=name)
            self.assertIn(name, [b["Name"] for b in s3.list_buckets()["Buckets"]])
            s3.put_object(Bucket=name, Key="k", Body=b"v")
            s3.delete_object(Bucket=name, Key="k")
            s3.delete_bucket(Bucket=name)
            self.assertNotIn(name, [b["Name"] for b in s3.list_buckets()["Buckets"]])

    def test_multipart(self):
        s3 = s3util.client(ENV)
        key = f"{RUN}/multipart"
        parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
        up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        done = []
        for i, p in enumerate(parts, 1):
            etag = s3.upload_part(Bucket=BUCKET, Key=key, PartNumber=i, UploadId=up,
                                  Body=p)["ETag"]
            done.append({"PartNumber": i, "ETag": etag})
        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up,
                                     MultipartUpload={"Parts": done})
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), b"".join(parts))
        s3.delete_object(Bucket=BUCKET, Key=key)

    def test_listing_order_and_pagination(self):
        # s3rver walks directories: without s3rver-fixes.js "a/b" came before "a-c"
        s3 = s3util.client(ENV)
        prefix = f"{RUN}/order/"
        keys = [prefix + k for k in ("a", "a!", "a-c", "a/b", "a/b/c", "a.b", "a0", "b", "\u00e9", "~")]
        for k in keys:
            s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
        for size in (1, 3, 1000):
            got = []
            for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": size}):
                got += [o["Key"] for o in page.get("Contents", [])]
            self.assertEqual(got, sorted(keys, key=lambda k: k.encode()), size)
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})

    def test_concurrent_put_delete(self):
        # s3rver's DeleteObjects raced with itself and with puts in one directory
        prefix = f"{RUN}/conc/"
        errors = []
        before = s3util.stats(ENV)["status_by_class"].get("5xx", 0)

        def worker(n):
            try:
                s3 = s3util.client(ENV)
                for rnd in range(3):
                    keys = [f"{prefix}d{n % 2}/k{n}-{rnd}-{i}" for i in range(15)]
                    for k in keys:
                        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode() * 100)
                    for k in keys[::4]:
                        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read(),
                                         k.encode() * 100)
                    r = s3.delete_objects(Bucket=BUCKET,
                                          Delete={"Objects": [{"Key": k} for k in keys]})
                    self.assertEqual(len(r.get("Deleted", [])), len(keys))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        s3 = s3util.client(ENV)
        self.assertNotIn("Contents", s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix))
        self.assertEqual(s3util.stats(ENV)["status_by_class"].get("5xx", 0), before)

    def test_https_needs_the_ca(self):
        ctx = ssl.create_default_context()  # system CAs only
        with socket.create_connection(("127.0.0.1", port_of(ENV["HARVBK_TEST_S3_ENDPOINT_TLS"])),
                                      timeout=10) as sock:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(sock, server_hostname="localhost")

    def test_raw_signing_accepted(self):
        # the raw helper used below is right when nothing is tampered with
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/raw", b"payload")
        self.assertEqual(st, 200, body)
        st, body = raw_request("GET", f"/{BUCKET}/{RUN}/raw")
        self.assertEqual((st, body), (200, b"payload"))
        port = port_of(ENV["HARVBK_TEST_S3_ENDPOINT"])
        st, body = raw_request("GET", f"/{RUN}/raw", host=f"{VBUCKET}.localhost:{port}")
        self.assertEqual(st, 404, body)  # vhost: verified, forwarded to the other bucket
        st, body = raw_request("GET", f"/{RUN}/raw", tls=True,
                               host=f"{BUCKET}.localhost:{port_of(ENV['HARVBK_TEST_S3_ENDPOINT_TLS'])}")
        self.assertEqual((st, body), (200, b"payload"))
        # a header the client chose to sign (user-agent: botocore itself never signs it)
        st, body = raw_request("GET", f"/{BUCKET}/{RUN}/raw",
                               extra_signed={"User-Agent": "harvbk-test/1"})
        self.assertEqual((st, body), (200, b"payload"))

    # ------------------------------------------------------------ bad clients

    def assert_rejected(self, fn, code, status):
        with self.assertRaises(bexc.ClientError) as cm:
            fn()
        self.assertEqual(err_code(cm.exception), (code, status))

    def test_wrong_secret_rejected(self):
        before = s3util.stats(ENV)
        for tls, vhost in ((False, False), (False, True), (True, False), (True, True)):
            bad = s3util.client(ENV, tls=tls, vhost=vhost, secret_key=SECRET[:-1] + (
                "A" if SECRET[-1] != "A" else "B"))
            bucket = VBUCKET if vhost else BUCKET
            self.assert_rejected(lambda: bad.put_object(Bucket=bucket, Key=f"{RUN}/bad", Body=b"x"),
                                 "SignatureDoesNotMatch", 403)
            self.assert_rejected(lambda: bad.list_objects_v2(Bucket=bucket),
                                 "SignatureDoesNotMatch", 403)
        after = s3util.stats(ENV)
        self.assertGreaterEqual(after["rejected"] - before["rejected"], 8)
        s3 = s3util.client(ENV)
        self.assert_rejected(lambda: s3.head_object(Bucket=BUCKET, Key=f"{RUN}/bad"), "404", 404)

    def test_wrong_access_key_rejected(self):
        st, body = raw_request("GET", f"/{BUCKET}", akid="AKIAWRONGWRONGWRONG1")
        self.assertEqual(st, 403)
        self.assertIn(b"<Code>InvalidAccessKeyId</Code>", body)

    def test_tampered_body_rejected(self):
        key = f"/{BUCKET}/{RUN}/tampered"
        # valid signature over body A's hash, body B sent
        st, body = raw_request("PUT", key, b"body B", sign_hash=hashlib.sha256(b"body A").hexdigest())
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>XAmzContentSHA256Mismatch</Code>", body)
        # hash header changed to body B's after signing over A's
        st, body = raw_request("PUT", key, b"body B", sign_hash=hashlib.sha256(b"body A").hexdigest(),
                               send_hash=hashlib.sha256(b"body B").hexdigest())
        self.assertEqual(st, 403)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)
        self.assertIn(b"<CanonicalRequest>", body)
        st, _ = raw_request("HEAD", key)
        self.assertEqual(st, 404)  # nothing was stored

    def test_unsigned_payload_rejected(self):
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/unsigned", b"x", sign_hash="UNSIGNED-PAYLOAD")
        self.assertEqual(st, 403)
        self.assertIn(b"UNSIGNED-PAYLOAD", body)
        s3 = s3util.client(ENV, tls=True, sign_payload=False)  # botocore: unsigned over TLS
        self.assert_rejected(lambda: s3.put_object(Bucket=BUCKET, Key=f"{RUN}/unsigned", Body=b"x"),
                             "AccessDenied", 403)
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/unsigned", b"x",
                               sign_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        self.assertEqual(st, 403)

    def test_unsigned_amz_header_rejected(self):
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/meta", b"x",
                               extra_unsigned={"x-amz-meta-sneaky": "1"})
        self.assertEqual(st, 403)
        self.assertIn(b"not signed", body)
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/meta", b"x",
                               extra_signed={"x-amz-meta-fine": "1"})
        self.assertEqual(st, 200, body)

    def test_tampered_header_rejected(self):
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/hdr", b"x",
                               extra_signed={"x-amz-meta-a": "1"},
                               extra_unsigned={"x-amz-meta-a": "2"})
        self.assertEqual(st, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)

    def test_host_is_verified(self):
        port = port_of(ENV["HARVBK_TEST_S3_ENDPOINT"])
        # signed for one bucket's host, sent with another's
        req_host = f"{VBUCKET}.localhost:{port}"
        st, body = raw_request("GET", "/", host=req_host, extra_unsigned={"Host": f"{BUCKET}.localhost:{port}"})
        self.assertEqual(st, 403, body)

    def test_stale_date_rejected(self):
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
        st, body = raw_request("GET", f"/{BUCKET}", when=old)
        self.assertEqual(st, 403)
        self.assertIn(b"RequestTimeTooSkewed", body)
        ok = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=14)
        self.assertEqual(raw_request("GET", f"/{BUCKET}", when=ok)[0], 200)

    def test_noncanonical_path_rejected(self):
        # '+' unencoded, signed as sent: botocore would accept it, AWS canonicalises
        # to %2B: the proxy refuses anything not sent in canonical form
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/a+b", b"x")
        self.assertEqual(st, 403)
        self.assertIn(b"canonical", body)
        st, body = raw_request("PUT", f"/{BUCKET}/{RUN}/a%2bb", b"x")  # lower-case hex
        self.assertEqual(st, 403)
        st, body = raw_request("GET", f"/{BUCKET}?list-type=2&prefix={RUN}/")  # '/' in query
        self.assertEqual(st, 403)
        st, body = raw_request("GET", f"/{BUCKET}?list-type=2&prefix={RUN}%2F")
        self.assertEqual(st, 200, body)

    def test_presigned_rejected(self):
        url = s3util.client(ENV).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": f"{RUN}/presigned"}, ExpiresIn=60)
        SIGNATURES_SEEN.append(re.search(r"X-Amz-Signature=([0-9a-f]+)", url).group(1))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url, timeout=10)
        self.assertEqual(cm.exception.code, 403)
        self.assertIn(b"AccessDenied", cm.exception.read())

    def test_no_auth_rejected(self):
        conn = http.client.HTTPConnection("127.0.0.1", port_of(ENV["HARVBK_TEST_S3_ENDPOINT"]), timeout=10)
        conn.request("GET", f"/{BUCKET}")
        r = conn.getresponse()
        self.assertEqual(r.status, 403)
        self.assertIn(b"AccessDenied", r.read())
        conn.close()

    # ------------------------------------------------------------ faults

    def test_fault_status_kinds(self):
        s3 = s3util.client(ENV)
        for kind, code in (("500", "InternalError"), ("503", "SlowDown"), ("429", "SlowDown")):
            before = s3util.stats(ENV)
            s3util.control(ENV, {"fail_rate": 1.0, "kinds": [kind]})
            for _ in range(3):
                self.assert_rejected(lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN),
                                     code, int(kind))
            after = s3util.stats(ENV)
            self.assertEqual(after["injected"] - before["injected"], 3)
            self.assertEqual(after["injected_by_kind"].get(kind, 0) -
                             before["injected_by_kind"].get(kind, 0), 3)
        s3util.control(ENV, {"fail_rate": 0})
        s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)

    def test_fault_drop_reset(self):
        for kind in ("drop", "reset"):
            s3util.control(ENV, {"fail_rate": 1.0, "kinds": [kind]})
            s3 = s3util.client(ENV)
            with self.assertRaises(CONN_ERRORS):
                s3.put_object(Bucket=BUCKET, Key=f"{RUN}/{kind}", Body=b"x")
            s3util.control(ENV, {"fail_rate": 0})
            self.assert_rejected(lambda: s3.head_object(Bucket=BUCKET, Key=f"{RUN}/{kind}"),
                                 "404", 404)  # dropped before it reached the server

    def test_fault_drop_after(self):
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["drop_after"]})
        s3 = s3util.client(ENV)
        with self.assertRaises(CONN_ERRORS):
            s3.put_object(Bucket=BUCKET, Key=f"{RUN}/drop_after", Body=b"stored")
        s3util.control(ENV, {"fail_rate": 0})
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=f"{RUN}/drop_after")["Body"].read(),
                         b"stored")

    def test_fault_truncate(self):
        s3 = s3util.client(ENV)
        data = os.urandom(300000)
        s3.put_object(Bucket=BUCKET, Key=f"{RUN}/trunc", Body=data)
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["truncate"], "only_methods": ["GET"]})
        with self.assertRaises(TRUNC_ERRORS):
            s3.get_object(Bucket=BUCKET, Key=f"{RUN}/trunc")["Body"].read()
        # with the raw socket: the status line and headers come, half the body, then EOF
        st = None
        try:
            st, body = raw_request("GET", f"/{BUCKET}/{RUN}/trunc")
        except http.client.IncompleteRead as e:
            self.assertEqual(len(e.partial), len(data) // 2)
            self.assertEqual(e.expected, len(data) - len(data) // 2)
        self.assertIsNone(st, "the body was not cut short")
        s3util.control(ENV, {"fail_rate": 0})
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=f"{RUN}/trunc")["Body"].read(), data)

    def test_fault_delay_and_hang(self):
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["delay"], "delay_ms": 400})
        s3 = s3util.client(ENV)
        t0 = time.monotonic()
        s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["hang"], "hang_ms": 3000})
        s3 = s3util.client(ENV, read_timeout=1)
        t0 = time.monotonic()
        with self.assertRaises(CONN_ERRORS):
            s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        self.assertLess(time.monotonic() - t0, 2.9)

    def test_fault_delay_gather(self):
        # N delayed requests waiting at once go on together, long before
        # delay_ms; fewer wait delay_ms; max_held counts them
        def lists(n):
            took, errors = [], []

            def one():
                try:
                    t0 = time.monotonic()
                    s3util.client(ENV).list_objects_v2(Bucket=BUCKET, Prefix=RUN)
                    took.append(time.monotonic() - t0)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
            threads = [threading.Thread(target=one) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(errors, [])
            return took
        def gathered(n, delay_ms):
            s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["delay"], "delay_ms": delay_ms,
                                 "gather": 3})
            s3util.reset_stats(ENV)
            took = lists(n)
            self.assertEqual(len(took), n)
            self.assertEqual(s3util.stats(ENV)["max_held"], n)
            return took
        self.assertLess(max(gathered(3, 60000)), 30)
        self.assertGreaterEqual(min(gathered(2, 1500)), 1.5)

    def test_fault_selection(self):
        s3 = s3util.client(ENV)
        s3.put_object(Bucket=BUCKET, Key=f"{RUN}/sel", Body=b"x")
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["500"], "only_methods": ["put"]})
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=f"{RUN}/sel")["Body"].read(), b"x")
        self.assert_rejected(lambda: s3.put_object(Bucket=BUCKET, Key=f"{RUN}/sel", Body=b"y"),
                             "InternalError", 500)
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["503"], "max_faults": 2})
        for _ in range(2):
            self.assert_rejected(lambda: s3.head_object(Bucket=BUCKET, Key=f"{RUN}/sel"), "503", 503)
        s3.head_object(Bucket=BUCKET, Key=f"{RUN}/sel")
        # only puts under one path, after the first two of them
        s3util.control(ENV, {"fail_rate": 1.0, "kinds": ["500"], "only_methods": ["PUT"],
                             "only_paths": ["/sub/"], "pass_first": 2})
        for i in range(3):
            s3.put_object(Bucket=BUCKET, Key=f"{RUN}/other{i}", Body=b"o")
        for i in range(2):
            s3.put_object(Bucket=BUCKET, Key=f"{RUN}/sub/k{i}", Body=b"s")
        for i in range(2, 4):
            self.assert_rejected(
                lambda: s3.put_object(Bucket=BUCKET, Key=f"{RUN}/sub/k{i}", Body=b"s"),
                "InternalError", 500)
        self.assertEqual(s3.get_object(Bucket=BUCKET, Key=f"{RUN}/sub/k1")["Body"].read(), b"s")
        s3.put_object(Bucket=BUCKET, Key=f"{RUN}/other9", Body=b"o")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            s3util.control(ENV, {"only_paths": [""]})
        self.assertEqual(cm.exception.code, 400)

        def pattern():
            s3util.control(ENV, {"fail_rate": 0.5, "kinds": ["500"], "seed": 42})
            out = []
            for _ in range(16):
                try:
                    s3.head_object(Bucket=BUCKET, Key=f"{RUN}/sel")
                    out.append(0)
                except bexc.ClientError:
                    out.append(1)
            return out
        p1, p2 = pattern(), pattern()
        self.assertEqual(p1, p2)
        self.assertTrue(0 < sum(p1) < 16, p1)

    def test_down_modes(self):
        s3 = s3util.client(ENV, connect_timeout=2, read_timeout=2)
        port = port_of(ENV["HARVBK_TEST_S3_ENDPOINT"])
        tport = port_of(ENV["HARVBK_TEST_S3_ENDPOINT_TLS"])
        s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)    # a kept-alive connection
        s3util.control(ENV, {"down": "refuse"})
        for p in (port, tport):
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", p), timeout=5).close()
        t0 = time.monotonic()
        with self.assertRaises(CONN_ERRORS):
            s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        self.assertLess(time.monotonic() - t0, 1.5)
        s3util.control(ENV, {"fail_rate": 0})
        s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        s3util.client(ENV, tls=True).list_objects_v2(Bucket=BUCKET, Prefix=RUN)

        s3util.control(ENV, {"down": "close"})
        with self.assertRaises(CONN_ERRORS):
            s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        s3util.control(ENV, {"down": "hang"})
        t0 = time.monotonic()
        with self.assertRaises(CONN_ERRORS):
            s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)
        self.assertLess(time.monotonic() - t0, 5)
        s3util.control(ENV, {"fail_rate": 0})
        s3.list_objects_v2(Bucket=BUCKET, Prefix=RUN)

    def test_control_api(self):
        cfg = s3util.control(ENV, {"fail_rate": 0.25, "kinds": ["503", "drop"], "seed": 7})
        self.assertEqual(cfg["fail_rate"], 0.25)
        self.assertEqual(s3util.control(ENV), cfg)
        reset = s3util.control(ENV, {"fail_rate": 0})
        self.assertEqual(reset["kinds"], ["500", "503", "drop"])
        self.assertIs(reset["down"], False)
        for bad in ({"fail_rate": 2}, {"kinds": ["nope"]}, {"whatever": 1}, {"down": "sideways"},
                    {"seed": -1}, [1]):
            with self.assertRaises(urllib.error.HTTPError) as cm:
                s3util.control(ENV, bad)
            self.assertEqual(cm.exception.code, 400)
        st = s3util.stats(ENV)
        for k in ("requests", "rejected", "injected", "forwarded", "by_method"):
            self.assertIn(k, st)


class ZLogTest(unittest.TestCase):
    """Runs last (name order): nothing secret in the logs of the whole run."""

    def test_log_has_no_secret(self):
        logdir = ENV["HARVBK_TEST_S3_DIR"]
        for name in ("proxy.log", "proxy.out", "s3rver.log"):
            path = os.path.join(logdir, name)
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                text = f.read()
            self.assertNotIn(SECRET.encode(), text, name)
            self.assertIsNone(re.search(rb"Signature=[0-9a-f]{64}", text), name)
            self.assertNotIn(b"AWS4-HMAC-SHA256 Credential", text, name)
            for sig in SIGNATURES_SEEN:
                self.assertNotIn(sig.encode(), text, name)
        st = os.stat(ENV["HARVBK_TEST_S3_SECRET_FILE"])
        self.assertEqual(st.st_mode & 0o077, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
