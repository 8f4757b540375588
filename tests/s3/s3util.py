"""tests/s3/s3util.py - shared helpers of the python S3 test tools (boto3
clients for the test servers that tests/s3/s3env.sh starts, the proxy's control
endpoint). Python stdlib + Debian's python3-boto3/botocore only."""

import json
import os
import socket
import urllib.request

import boto3
import botocore.config

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    # glibc does not resolve *.localhost (libcurl does, to loopback); boto3 needs
    # it for virtual-hosted style requests to BUCKET.localhost
    if isinstance(host, str) and host.lower().endswith(".localhost"):
        host = "127.0.0.1"
    elif host == "localhost":
        host = "127.0.0.1"  # the servers listen on 127.0.0.1 only
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo


def load_env(path=None):
    """Read the KEY=VALUE env file that s3env.sh wrote (default:
    $HARVBK_TEST_S3_ENV)."""
    path = path or os.environ.get("HARVBK_TEST_S3_ENV")
    if not path:
        raise SystemExit("no env file: pass --env or set HARVBK_TEST_S3_ENV")
    env = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#") and "=" in line:
                    k, _, v = line.partition("=")
                    env[k] = v
    except OSError as e:
        raise SystemExit(f"cannot read the S3 test env file {path}: {e.strerror} "
                         "(is the s3 fixture started? tests/s3/s3env.sh start DIR)") from None
    return env


def secret(env):
    with open(env["HARVBK_TEST_S3_SECRET_FILE"], encoding="utf-8") as f:
        return f.read().strip()


def client(env, tls=False, vhost=False, secret_key=None, attempts=1,
           connect_timeout=5, read_timeout=60, sign_payload=True):
    """A boto3 S3 client talking to the proxy. vhost: virtual-hosted style
    (BUCKET.localhost:PORT), else path style. attempts: total attempts per
    call (1 = no retries)."""
    endpoint = env["HARVBK_TEST_S3_ENDPOINT_TLS"] if tls else env["HARVBK_TEST_S3_ENDPOINT"]
    if vhost and not tls:
        endpoint = endpoint.replace("127.0.0.1", "localhost")
    cfg = botocore.config.Config(
        region_name=env["HARVBK_TEST_S3_REGION"], signature_version="s3v4",
        s3={"addressing_style": "virtual" if vhost else "path",
            "payload_signing_enabled": sign_payload},
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=connect_timeout, read_timeout=read_timeout)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint,
        aws_access_key_id=env["HARVBK_TEST_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_key if secret_key is not None else secret(env),
        verify=env["HARVBK_TEST_S3_CA"] if tls else None, config=cfg)


def control(env, cfg=None, path=""):
    """POST cfg (dict) to the control endpoint (or GET when cfg is None);
    returns the decoded JSON answer."""
    url = env["HARVBK_TEST_S3_CONTROL"] + path
    data = None if cfg is None else json.dumps(cfg).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def stats(env):
    return control(env, path="/stats")


def reset_stats(env):
    return control(env, {}, path="/stats/reset")
