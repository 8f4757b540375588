#!/usr/bin/env python3
"""tests/s3/proxy.py - verifying, fault-injecting proxy in front of s3rver.

s3rver does not check SigV4 signatures. This proxy sits between the code under
test and s3rver and, for every request:

  1. recomputes the AWS Signature Version 4 with botocore (the reference
     signer: botocore.auth.S3SigV4Auth) from the method, path, query, the
     headers named in SignedHeaders and the known secret, and compares it with
     the one in the Authorization header;
  2. checks x-amz-content-sha256 against the SHA-256 of the body actually
     received (UNSIGNED-PAYLOAD and streaming payloads are refused: the body
     must be signed), X-Amz-Date within 15 minutes, the credential scope
     (access key id, date, region, "s3", "aws4_request"), that every x-amz-*
     header is signed and that path and query are in the canonical SigV4
     encoding (so what is signed is exactly what is sent: AWS S3 accepts it
     whichever way it canonicalises);
  3. rejects mismatches with S3-style XML errors (403 SignatureDoesNotMatch,
     403 AccessDenied, 403 InvalidAccessKeyId, 403 RequestTimeTooSkewed,
     400 XAmzContentSHA256Mismatch, 400 AuthorizationHeaderMalformed);
  4. may inject a fault (see "control" below);
  5. forwards the request to s3rver path-style (a virtual-hosted request,
     Host "BUCKET.<vhost-domain>[:port]", is verified against its original
     Host and then rewritten to /BUCKET/...), without the Authorization
     header, and streams the response back.

HTTP/1.1 with keep-alive; one plain-HTTP and one HTTPS listener (TLS with the
given certificate) for S3, and a separate plain-HTTP control listener, all on
127.0.0.1.

Control (on the control port only):
  GET  /__control            current fault configuration (JSON)
  POST /__control            replace it; JSON object, every field optional,
                             missing fields take their defaults, so
                             {"fail_rate": 0} resets everything:
       fail_rate       0..1, probability that a request gets a fault (0)
       kinds           list of "500", "503" (SlowDown), "429" (SlowDown),
                       "drop" (close without answer, before forwarding),
                       "drop_after" (forward, then close without answering),
                       "truncate" (forward, answer with the headers and half
                       the body, then close; like drop_after without a body),
                       "reset" (TCP RST, before forwarding),
                       "delay" (wait delay_ms, then forward normally; with
                       gather, only until that many delayed requests wait),
                       "hang" (no answer for hang_ms, then close)
                       default ["500", "503", "drop"]
       seed            integer seed of the fault generator (0)
       only_methods    list of methods faults apply to (all)
       only_paths      list of substrings; faults apply only to requests
                       whose (path-style, encoded) path contains one (all)
       pass_first      the first N requests that faults apply to pass
                       untouched, then faults are drawn (0): a fault at a
                       fixed point of a run, whatever its timing
       max_faults      stop injecting after this many faults (0 = no limit)
       delay_ms        (1000)   hang_ms (20000); both at most 600000
       gather          0, or N: delayed requests go on together as soon as N
                       of them wait at once (at the latest after delay_ms):
                       how many requests a client keeps in flight, measured
                       whatever its CPU speed (stat max_held)
       down            false | "refuse" (S3 listeners closed: connection
                       refused) | "close" (accept and close at once) |
                       "hang" (accept, never answer); existing connections
                       are closed when going down (false)
  GET  /__control/stats      counters: requests, rejected, injected, forwarded,
                             by_method, by_op (GET, LIST, PUT, HEAD, DELETE
                             incl. DeleteObjects, POST), rejected_by_code,
                             injected_by_kind,
                             status_by_class, connections_refused_while_down,
                             max_held (most delayed requests waiting at once)...
  POST /__control/stats/reset   zero the counters

Faults are drawn after verification: a request with a bad signature is always
rejected (and counted as rejected, not as injected).

The log (--log) has one line per request; it never contains the secret or the
Authorization header.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

MAX_BODY = 1 << 30          # 1 GiB: larger requests are refused
MAX_SKEW = 15 * 60          # seconds
UPSTREAM_TIMEOUT = 120
IDLE_TIMEOUT = 300          # keep-alive connections idle longer are closed
FAULT_KINDS = ("500", "503", "429", "drop", "drop_after", "truncate", "reset", "delay", "hang")
DOWN_MODES = ("refuse", "close", "hang")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding",
              "upgrade", "expect", "content-length", "host", "authorization"}
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
SIG_IN_QUERY_RE = re.compile(r"((?:^|[?&])(?:X-Amz-Signature|X-Amz-Credential|Signature)=)[^&]*",
                             re.IGNORECASE)


def uri_encode(raw: bytes, keep_slash: bool) -> str:
    """SigV4 UriEncode: every byte but the unreserved ones as %XX (upper case)."""
    out = []
    for b in raw:
        if b in UNRESERVED or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def is_canonical(component: str, keep_slash: bool) -> bool:
    return uri_encode(urllib.parse.unquote_to_bytes(component), keep_slash) == component


def xml_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class Reject(Exception):
    def __init__(self, status, code, message, extra=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extra = extra or {}


class VerifyingAuth(S3SigV4Auth):
    """botocore's S3 signer, made to sign exactly the headers the client
    listed in SignedHeaders (botocore's own signer leaves out user-agent,
    expect and x-amzn-trace-id; AWS verifies whatever the client signed)."""

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


# ---------------------------------------------------------------- state

class Proxy:
    def __init__(self, args, secret):
        self.args = args
        self.secret = secret
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.control_lock = threading.Lock()   # one control change at a time
        self.logf = open(args.log, "a", buffering=1, encoding="utf-8") if args.log else sys.stderr
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.faults = self.default_faults()
        self.rng = random.Random(0)
        self.up_event = threading.Event()
        self.up_event.set()
        self.injected_since_config = 0
        self.matched_since_config = 0
        self.conns = set()
        self.hold_cv = threading.Condition()  # delayed requests (hold)
        self.held = 0
        self.hold_gen = 0
        self.servers = {}          # name -> (server, thread, port, tls)
        self.reset_stats()

    @staticmethod
    def default_faults():
        return {"fail_rate": 0.0, "kinds": ["500", "503", "drop"], "seed": 0,
                "only_methods": [], "only_paths": [], "pass_first": 0, "max_faults": 0,
                "delay_ms": 1000, "gather": 0,
                "hang_ms": 20000, "down": False}

    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": 0, "rejected": 0, "injected": 0, "forwarded": 0,
                          "by_method": {}, "by_op": {}, "rejected_by_code": {},
                          "injected_by_kind": {},
                          "status_by_class": {}, "connections": 0,
                          "connections_closed_while_down": 0, "upstream_errors": 0,
                          "max_held": 0}

    def bump(self, key, sub=None, n=1):
        with self.lock:
            if sub is None:
                self.stats[key] += n
            else:
                d = self.stats[key]
                d[sub] = d.get(sub, 0) + n

    def log(self, msg):
        ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        with self.log_lock:
            self.logf.write(f"{ts}Z {msg}\n")

    # -- fault configuration

    def set_faults(self, cfg):
        with self.control_lock:
            return self._set_faults(cfg)

    def _set_faults(self, cfg):
        if not isinstance(cfg, dict):
            raise ValueError("body must be a JSON object")
        new = self.default_faults()
        for k, v in cfg.items():
            if k not in new:
                raise ValueError(f"unknown field '{k}'")
            new[k] = v
        fr = new["fail_rate"]
        if isinstance(fr, bool) or not isinstance(fr, (int, float)) or not 0 <= fr <= 1:
            raise ValueError("fail_rate must be a number in [0, 1]")
        new["fail_rate"] = float(fr)
        if not isinstance(new["kinds"], list) or not new["kinds"] or \
                any(k not in FAULT_KINDS for k in new["kinds"]):
            raise ValueError(f"kinds must be a non-empty list of {', '.join(FAULT_KINDS)}")
        if not isinstance(new["only_methods"], list) or \
                any(not isinstance(m, str) for m in new["only_methods"]):
            raise ValueError("only_methods must be a list of method names")
        new["only_methods"] = [m.upper() for m in new["only_methods"]]
        if not isinstance(new["only_paths"], list) or \
                any(not isinstance(m, str) or not m for m in new["only_paths"]):
            raise ValueError("only_paths must be a list of non-empty strings")
        for k in ("seed", "max_faults", "pass_first", "delay_ms", "hang_ms", "gather"):
            if isinstance(new[k], bool) or not isinstance(new[k], int) or new[k] < 0:
                raise ValueError(f"{k} must be a non-negative integer")
        for k in ("delay_ms", "hang_ms"):
            if new[k] > 600000:
                raise ValueError(f"{k} must be at most 600000 (10 minutes)")
        if new["down"] not in (False, None) and new["down"] not in DOWN_MODES:
            raise ValueError("down must be false, \"refuse\", \"close\" or \"hang\"")
        new["down"] = new["down"] or False
        with self.lock:
            old_down = self.faults["down"]
            self.faults = new
            self.rng = random.Random(new["seed"])
            self.injected_since_config = 0
            self.matched_since_config = 0
        if new["down"] != old_down:
            self.apply_down(old_down, new["down"])
        self.log(f"control: faults {json.dumps(new, sort_keys=True)}")
        return new

    def draw_fault(self, method, path):
        with self.lock:
            f = self.faults
            if f["fail_rate"] <= 0:
                return None
            if f["only_methods"] and method not in f["only_methods"]:
                return None
            if f["only_paths"] and not any(p in path for p in f["only_paths"]):
                return None
            self.matched_since_config += 1
            if self.matched_since_config <= f["pass_first"]:
                return None
            if f["max_faults"] and self.injected_since_config >= f["max_faults"]:
                return None
            if self.rng.random() >= f["fail_rate"]:
                return None
            self.injected_since_config += 1
            return self.rng.choice(f["kinds"]), f["delay_ms"], f["hang_ms"], f["gather"]

    def hold(self, delay_ms, gather):
        """A delayed request: wait delay_ms, or until gather delayed requests
        wait at once (then they all go on)."""
        with self.hold_cv:
            gen = self.hold_gen
            self.held += 1
            with self.lock:
                self.stats["max_held"] = max(self.stats["max_held"], self.held)
            if gather and self.held >= gather:
                self.hold_gen += 1
                self.held = 0
                self.hold_cv.notify_all()
                return
            deadline = time.monotonic() + delay_ms / 1000.0
            while self.hold_gen == gen:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.held -= 1
                    return
                self.hold_cv.wait(left)

    def down_mode(self):
        with self.lock:
            return self.faults["down"]

    # -- listeners

    def start_listener(self, name, port, tls_ctx):
        srv = S3Server((self.args.listen, port), S3Handler, self, tls_ctx)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"listen-{name}", daemon=True)
        t.start()
        self.servers[name] = (srv, t, srv.server_address[1], tls_ctx)
        return srv.server_address[1]

    def apply_down(self, old, new):
        if old == "refuse":
            for name, (srv, t, port, tls_ctx) in list(self.servers.items()):
                if srv is None:
                    self.start_listener(name, port, tls_ctx)
        if new:
            self.up_event.clear()
            if new == "refuse":
                for name, (srv, t, port, tls_ctx) in list(self.servers.items()):
                    if srv is not None:
                        srv.shutdown()
                        srv.server_close()
                        self.servers[name] = (None, None, port, tls_ctx)
            if new in ("refuse", "close"):
                with self.lock:
                    conns = list(self.conns)
                for c in conns:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        else:
            self.up_event.set()

    def shutdown(self):
        for name, (srv, t, port, tls_ctx) in list(self.servers.items()):
            if srv is not None:
                srv.shutdown()
                srv.server_close()


# ---------------------------------------------------------------- S3 side

class S3Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, proxy, tls_ctx):
        self.proxy = proxy
        self.tls_ctx = tls_ctx
        super().__init__(addr, handler)

    def process_request_thread(self, request, client_address):
        proxy = self.proxy
        sock = request
        try:
            proxy.bump("connections")
            mode = proxy.down_mode()
            if mode == "hang":
                proxy.up_event.wait(600)
                mode = proxy.down_mode()
            if mode in ("close", "refuse"):
                proxy.bump("connections_closed_while_down")
                return
            if self.tls_ctx is not None:
                sock.settimeout(30)
                try:
                    sock = self.tls_ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    proxy.log(f"{client_address[1]} TLS handshake failed: {e}")
                    return
            with proxy.lock:
                proxy.conns.add(sock)
            try:
                self.finish_request(sock, client_address)
            finally:
                with proxy.lock:
                    proxy.conns.discard(sock)
        except Exception as e:  # noqa: BLE001 - one line, not a traceback
            proxy.log(f"{client_address[1]} connection error: {type(e).__name__}: {e}")
        finally:
            self.shutdown_request(sock)


class S3Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harvbk-s3-proxy"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):  # http.server's own lines: errors only
        self.server.proxy.log(f"{self.client_address[1]} http: " + (fmt % args))

    def setup(self):
        super().setup()
        self.upstream_conn = None
        self.upstream_reused = False

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream_conn is not None:
                self.upstream_conn.close()

    def do_GET(self):
        self.handle_s3()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    # -- reading

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise Reject(501, "NotImplemented", f"Transfer-Encoding {te!r} not supported")
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("client closed during chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    raise Reject(400, "EntityTooLarge", "request body too large for the test proxy")
                parts.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(parts)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise Reject(400, "InvalidArgument", "bad Content-Length") from None
        if n < 0 or n > MAX_BODY:
            raise Reject(400, "EntityTooLarge", "request body too large for the test proxy")
        body = self.rfile.read(n)
        if len(body) != n:
            raise ConnectionError("client closed during body")
        return body

    # -- verification

    def verify(self, body, host):
        proxy = self.server.proxy
        args = proxy.args
        auth = self.headers.get("Authorization")
        if "X-Amz-Algorithm" in self.query_params or "X-Amz-Signature" in self.query_params:
            raise Reject(403, "AccessDenied", "query-string (presigned) authentication is "
                         "not accepted by the test proxy")
        if not auth:
            raise Reject(403, "AccessDenied", "Anonymous request: no Authorization header")
        alg, _, rest = auth.strip().partition(" ")
        if alg != "AWS4-HMAC-SHA256":
            raise Reject(400, "AuthorizationHeaderMalformed",
                         "only AWS4-HMAC-SHA256 authorization is accepted")
        fields = {}
        for part in rest.split(","):
            k, eq, v = part.strip().partition("=")
            if not eq or k in fields:
                raise Reject(400, "AuthorizationHeaderMalformed",
                             "malformed Authorization header")
            fields[k] = v
        if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
            raise Reject(400, "AuthorizationHeaderMalformed",
                         "Authorization needs exactly Credential, SignedHeaders, Signature")
        cred = fields["Credential"].split("/")
        if len(cred) != 5:
            raise Reject(400, "AuthorizationHeaderMalformed", "malformed Credential")
        akid, cdate, cregion, cservice, cterm = cred
        if akid != args.access_key_id:
            raise Reject(403, "InvalidAccessKeyId",
                         "The AWS Access Key Id you provided does not exist in our records.")
        if cregion != args.region:
            raise Reject(400, "AuthorizationHeaderMalformed",
                         f"the region '{cregion}' is wrong; expecting '{args.region}'")
        if cservice != "s3" or cterm != "aws4_request":
            raise Reject(400, "AuthorizationHeaderMalformed",
                         "credential scope must end in /s3/aws4_request")
        amz_date = self.headers.get("X-Amz-Date", "")
        if not AMZ_DATE_RE.match(amz_date):
            raise Reject(403, "AccessDenied", "missing or malformed X-Amz-Date header")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise Reject(403, "AccessDenied", "malformed X-Amz-Date header") from None
        skew = abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
        if skew > MAX_SKEW:
            raise Reject(403, "RequestTimeTooSkewed", "The difference between the request "
                         "time and the current time is too large.")
        if cdate != amz_date[:8]:
            raise Reject(403, "SignatureDoesNotMatch",
                         "credential scope date does not match X-Amz-Date")

        signed = fields["SignedHeaders"].split(";")
        if signed != sorted(set(signed)) or any(h != h.lower() or not h for h in signed):
            raise Reject(403, "SignatureDoesNotMatch",
                         "SignedHeaders must be lower case, sorted and unique")
        present = {k.lower() for k in self.headers.keys()}
        for required in ("host", "x-amz-date", "x-amz-content-sha256"):
            if required not in signed:
                raise Reject(403, "AccessDenied", f"header '{required}' must be signed")
        missing = [h for h in signed if h not in present]
        if missing:
            raise Reject(403, "SignatureDoesNotMatch",
                         f"signed headers missing from the request: {', '.join(missing)}")
        unsigned_amz = sorted(h for h in present if h.startswith("x-amz-") and h not in signed)
        if unsigned_amz:
            raise Reject(403, "AccessDenied", "There were headers present in the request "
                         f"which were not signed: {', '.join(unsigned_amz)}")

        payload_hash = self.headers.get("X-Amz-Content-SHA256", "")
        if payload_hash == "UNSIGNED-PAYLOAD" or payload_hash.startswith("STREAMING-"):
            raise Reject(403, "AccessDenied", f"x-amz-content-sha256 {payload_hash} is refused "
                         "by the test proxy: the payload must be signed")
        actual = hashlib.sha256(body).hexdigest()
        if payload_hash != actual:
            raise Reject(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                         "header does not match what was computed.",
                         {"ClientComputedContentSHA256": payload_hash[:64],
                          "S3ComputedContentSHA256": actual})

        raw_path, _, raw_query = self.path.partition("?")
        if not raw_path.startswith("/"):
            raise Reject(400, "InvalidURI", "request target must be an absolute path")
        if not is_canonical(raw_path, keep_slash=True):
            raise Reject(403, "SignatureDoesNotMatch", "the request path is not in the canonical "
                         "SigV4 encoding (UriEncode, upper-case hex, only A-Za-z0-9-._~/ "
                         "unencoded); the test proxy requires it")
        if raw_query:
            for pair in raw_query.split("&"):
                k, _, v = pair.partition("=")
                if not is_canonical(k, False) or not is_canonical(v, False):
                    raise Reject(403, "SignatureDoesNotMatch",
                                 "the query string is not in the canonical SigV4 encoding "
                                 "(UriEncode, upper-case hex); the test proxy requires it")

        headers = []
        for h in signed:
            values = self.headers.get_all(h)
            for v in values:
                headers.append((h, v))
        req = AWSRequest(method=self.command, url=f"http://{host}{self.path}", data=body)
        for h, v in headers:
            req.headers[h] = v  # HTTPHeaders appends: repeated headers are kept
        req.context["timestamp"] = amz_date
        signer = VerifyingAuth(Credentials(akid, proxy.secret), "s3", args.region)
        creq = signer.canonical_request(req)
        sts = signer.string_to_sign(req, creq)
        expected = signer.signature(sts, req)
        if not hmac.compare_digest(expected, fields["Signature"]):
            raise Reject(403, "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature "
                         "you provided. Check your key and signing method.",
                         {"AWSAccessKeyId": akid, "StringToSign": sts,
                          "CanonicalRequest": creq})

    # -- the request

    def handle_s3(self):
        proxy = self.server.proxy
        t0 = time.monotonic()
        rid = uuid.uuid4().hex[:16].upper()
        method = self.command
        proxy.bump("requests")
        proxy.bump("by_method", method)
        mode = proxy.down_mode()
        if mode:
            proxy.bump("connections_closed_while_down")
            if mode == "hang":
                proxy.up_event.wait(600)
            self.close_connection = True
            return
        raw_path, _, raw_query = self.path.partition("?")
        self.query_params = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        # by_op: GET, LIST (ListObjectsV2), PUT (also UploadPart), HEAD,
        # DELETE (also DeleteObjects, a POST), POST (multipart create/complete)
        op = method
        if method == "GET" and "list-type" in self.query_params:
            op = "LIST"
        elif method == "POST" and "delete" in self.query_params:
            op = "DELETE"
        proxy.bump("by_op", op)
        host = self.headers.get("Host", "")
        status, action, note = 0, "", ""
        try:
            try:
                body = self.read_body()
            except Reject:
                self.close_connection = True  # the body was not read: cannot go on
                raise
            fwd_path = self.path
            hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
            suffix = "." + proxy.args.vhost_domain
            if hostname.lower().endswith(suffix):
                # virtual-hosted style: verified as sent, forwarded path-style
                bucket = hostname[: -len(suffix)]
                if not BUCKET_RE.match(bucket):
                    raise Reject(400, "InvalidBucketName", "bad bucket name in Host")
                fwd_path = "/" + bucket + (raw_path if raw_path != "/" else "") + \
                           ("?" + raw_query if raw_query else "")
            self.verify(body, host)

            fault = proxy.draw_fault(method, fwd_path)
            if fault is not None:
                kind, delay_ms, hang_ms, gather = fault
                proxy.bump("injected")
                proxy.bump("injected_by_kind", kind)
                action = f"inject:{kind}"
                if kind == "delay":
                    proxy.hold(delay_ms, gather)
                elif kind in ("500", "503", "429"):
                    code, msg = {"500": ("InternalError", "We encountered an internal error. "
                                         "Please try again."),
                                 "503": ("SlowDown", "Please reduce your request rate."),
                                 "429": ("SlowDown", "Please reduce your request rate.")}[kind]
                    status = int(kind)
                    self.send_xml_error(status, code, f"{msg} (injected)", rid)
                    return
                elif kind in ("drop", "reset"):
                    self.abort(reset=(kind == "reset"))
                    return
                elif kind == "hang":
                    time.sleep(hang_ms / 1000.0)
                    self.abort(reset=False)
                    return
            kind = fault[0] if fault is not None else None
            status = self.forward(method, fwd_path, body, rid,
                                  drop_after=(kind == "drop_after"), truncate=(kind == "truncate"))
            action = action or "forward"
        except Reject as r:
            status, action, note = r.status, "reject", f"{r.code}: {r.message}"
            proxy.bump("rejected")
            proxy.bump("rejected_by_code", r.code)
            self.send_xml_error(r.status, r.code, r.message, rid, r.extra)
            if r.code == "SignatureDoesNotMatch" and "CanonicalRequest" in r.extra:
                note += " | canonical request: " + json.dumps(r.extra["CanonicalRequest"]) + \
                        " | string to sign: " + json.dumps(r.extra["StringToSign"])
        except (ConnectionError, socket.timeout, ssl.SSLError, OSError) as e:
            self.close_connection = True
            action, note = "error", f"{type(e).__name__}: {e}"
        finally:
            if status:
                proxy.bump("status_by_class", f"{status // 100}xx")
            ms = (time.monotonic() - t0) * 1000
            vh = f" host={host}" if host and not host.startswith("127.0.0.1") else ""
            shown = SIG_IN_QUERY_RE.sub(r"\1<redacted>", self.path)
            proxy.log(f"{self.client_address[1]} {rid} {method} {shown}{vh} -> "
                      f"{status or '-'} {action} {ms:.1f}ms{(' ' + note) if note else ''}")

    def abort(self, reset):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_xml_error(self, status, code, message, rid, extra=None):
        items = [f"<Code>{xml_escape(code)}</Code>", f"<Message>{xml_escape(message)}</Message>"]
        for k, v in (extra or {}).items():
            items.append(f"<{k}>{xml_escape(str(v))}</{k}>")
        items.append(f"<RequestId>{rid}</RequestId>")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(items) +
                "</Error>").encode()
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-amz-request-id", rid)
            self.send_header("Date", self.date_time_string())
            if self.command == "HEAD":
                self.send_header("Content-Length", "0")
            else:
                self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "1")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    # -- forwarding

    def upstream(self):
        if self.upstream_conn is None:
            u = self.server.proxy.upstream
            self.upstream_conn = http.client.HTTPConnection(u.hostname, u.port,
                                                            timeout=UPSTREAM_TIMEOUT)
            self.upstream_reused = False
        return self.upstream_conn

    def forward(self, method, path, body, rid, drop_after=False, truncate=False):
        proxy = self.server.proxy
        u = proxy.upstream
        fwd_headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        for attempt in (0, 1):
            conn = self.upstream()
            reused = self.upstream_reused
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", f"{u.hostname}:{u.port}")
                for k, v in fwd_headers:
                    conn.putheader(k, v)
                if body or method in ("PUT", "POST"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                self.upstream_reused = True
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.BadStatusLine) as e:
                conn.close()
                self.upstream_conn = None
                if attempt == 0 and reused:
                    continue  # stale keep-alive connection to s3rver
                proxy.bump("upstream_errors")
                raise Reject(502, "InternalError", f"upstream s3rver failed: {e}") from None
            except OSError as e:
                conn.close()
                self.upstream_conn = None
                proxy.bump("upstream_errors")
                raise Reject(502, "InternalError", f"upstream s3rver failed: {e}") from None

        proxy.bump("forwarded")
        length = resp.getheader("Content-Length")
        no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        limit = None
        if truncate:
            if no_body or length == "0":
                drop_after = True
            else:
                limit = int(length) // 2 if length is not None else 1
        if drop_after:
            resp.read()
            if resp.will_close:
                conn.close()
                self.upstream_conn = None
            self.abort(reset=False)
            return 0
        chunked = not no_body and length is None
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "keep-alive", "transfer-encoding"):
                continue
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body:
            sent = 0
            while True:
                chunk = resp.read(256 * 1024)
                if not chunk:
                    break
                if limit is not None and sent + len(chunk) >= limit:
                    chunk = chunk[: limit - sent]
                    if chunk:
                        self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk) if chunked
                                         else chunk)
                    resp.read()  # drain s3rver's answer: its connection stays usable
                    if resp.will_close:
                        conn.close()
                        self.upstream_conn = None
                    self.abort(reset=False)
                    return resp.status
                sent += len(chunk)
                if chunked:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        else:
            resp.read()
        self.wfile.flush()
        if resp.will_close:
            conn.close()
            self.upstream_conn = None
        return resp.status


# ---------------------------------------------------------------- control side

class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harvbk-s3-proxy-control"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = (json.dumps(obj, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 65536:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        proxy = self.server.proxy
        path = self.path.split("?")[0].rstrip("/")
        if path == "/__control":
            with proxy.lock:
                self.reply(200, dict(proxy.faults))
        elif path == "/__control/stats":
            with proxy.lock:
                self.reply(200, json.loads(json.dumps(proxy.stats)))
        else:
            self.reply(404, {"error": "unknown control path"})

    def do_POST(self):
        proxy = self.server.proxy
        path = self.path.split("?")[0].rstrip("/")
        try:
            raw = self.body()
            if path == "/__control":
                cfg = json.loads(raw.decode() or "{}")
                self.reply(200, proxy.set_faults(cfg))
            elif path == "/__control/stats/reset":
                proxy.reset_stats()
                self.reply(200, {"ok": True})
            else:
                self.reply(404, {"error": "unknown control path"})
        except (ValueError, UnicodeDecodeError) as e:
            self.reply(400, {"error": str(e)})
        except OSError as e:
            self.reply(500, {"error": f"{type(e).__name__}: {e}"})


class ControlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, proxy):
        self.proxy = proxy
        super().__init__(addr, ControlHandler)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="s3rver URL, http://127.0.0.1:PORT")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--https-port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--cert", help="PEM certificate chain for HTTPS (omit: no HTTPS)")
    ap.add_argument("--key", help="PEM private key for HTTPS")
    ap.add_argument("--access-key-id", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--vhost-domain", default="localhost")
    ap.add_argument("--log", help="log file (default stderr)")
    ap.add_argument("--ports-file", help="write {\"http\":..,\"https\":..,\"control\":..} here")
    args = ap.parse_args()
    if args.listen not in ("127.0.0.1", "::1", "localhost"):
        ap.error("--listen must be a loopback address")

    with open(args.secret_file, encoding="utf-8") as f:
        secret = f.read().strip()
    if not secret:
        ap.error("the secret file is empty")

    proxy = Proxy(args, secret)
    ports = {"http": proxy.start_listener("http", args.http_port, None)}
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        ports["https"] = proxy.start_listener("https", args.https_port, ctx)
    ctl = ControlServer((args.listen, args.control_port), proxy)
    threading.Thread(target=ctl.serve_forever, kwargs={"poll_interval": 0.2},
                     name="control", daemon=True).start()
    ports["control"] = ctl.server_address[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    proxy.log(f"proxy {os.getpid()} listening on {args.listen} {json.dumps(ports)}, "
              f"upstream {args.upstream}, region {args.region}")
    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(ports, f)
        os.replace(tmp, args.ports_file)
    while not stop.wait(1):
        pass
    proxy.log("proxy stopping")
    ctl.shutdown()
    proxy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
