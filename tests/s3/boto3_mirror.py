#!/usr/bin/env python3
"""tests/s3/boto3_mirror.py - copy a store between the S3 test server and a
local directory with an independent client (boto3), so a test can check that
what the library wrote to S3 is a store the library reads on a local
directory, and the other way round (the store format is backend-independent).

  boto3_mirror.py down --prefix P --dir D [--env FILE] [--bucket B] [--tls] [--vhost]
      every object whose key starts with P (ListObjectsV2, paginated) is
      downloaded to D/<key without P>; D must be empty or missing
  boto3_mirror.py up --prefix P --dir D [...]
      every regular file below D is uploaded as P<path relative to D>

P is used literally (give the trailing "/"). Prints one line "N objects, B
bytes" on stdout; exits 1 with a one-line message on stderr on any error (2 on
bad usage). --env defaults to $HARVBK_TEST_S3_ENV, --bucket to
HARVBK_TEST_S3_BUCKET from it.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3util  # noqa: E402

import botocore.exceptions  # noqa: E402


def safe_rel(key, prefix):
    rel = key[len(prefix):]
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise RuntimeError(f"key {key!r} does not map to a file below the directory")
    return os.path.join(*parts)


def down(s3, bucket, prefix, d):
    if os.path.isdir(d) and os.listdir(d):
        raise RuntimeError(f"{d} is not empty")
    os.makedirs(d, exist_ok=True)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    total = 0
    for key in keys:
        path = os.path.join(d, safe_rel(key, prefix))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(path, "wb") as f:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                f.write(chunk)
                total += len(chunk)
    return len(keys), total


def up(s3, bucket, prefix, d):
    n = total = 0
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            rel = os.path.relpath(path, d).replace(os.sep, "/")
            with open(path, "rb") as f:
                data = f.read()
            s3.put_object(Bucket=bucket, Key=prefix + rel, Body=data)
            n += 1
            total += len(data)
    return n, total


def main():
    ap = argparse.ArgumentParser(description="copy objects between S3 and a directory with boto3")
    ap.add_argument("direction", choices=("down", "up"))
    ap.add_argument("--prefix", required=True, help="key prefix, literal (end it with '/')")
    ap.add_argument("--dir", required=True, help="local directory")
    ap.add_argument("--env", help="env file (default $HARVBK_TEST_S3_ENV)")
    ap.add_argument("--bucket", help="bucket (default HARVBK_TEST_S3_BUCKET)")
    ap.add_argument("--tls", action="store_true", help="use the HTTPS endpoint")
    ap.add_argument("--vhost", action="store_true", help="virtual-hosted style")
    args = ap.parse_args()

    env = s3util.load_env(args.env)
    bucket = args.bucket or env["HARVBK_TEST_S3_BUCKET"]
    s3 = s3util.client(env, tls=args.tls, vhost=args.vhost, attempts=3)
    try:
        fn = down if args.direction == "down" else up
        n, total = fn(s3, bucket, args.prefix, args.dir)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
            RuntimeError, OSError) as e:
        print(f"boto3_mirror.py {args.direction}: {bucket}/{args.prefix}: {e}", file=sys.stderr)
        return 1
    print(f"{n} objects, {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
