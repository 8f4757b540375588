#!/usr/bin/env python3
"""tests/s3/check_boto3.py - an independent client's view of the S3 test server.

Lists every object under a prefix with boto3 (ListObjectsV2, paginated) through
the verifying proxy and downloads each one, then prints one JSON object on
stdout:

    {"KEY": {"size": N, "sha256": "HEX"}, ...}      (keys sorted)

so a test can compare it with what the library says it wrote. Exits 1 with a
one-line message on stderr on any error (2 on bad usage).

  check_boto3.py [--env FILE] [--bucket B] [--prefix P] [--tls] [--vhost]
                 [--no-download] [--page-size N]

--env defaults to $HARVBK_TEST_S3_ENV (the env file tests/s3/s3env.sh writes),
--bucket to HARVBK_TEST_S3_BUCKET from it. --no-download prints sizes and
"sha256": null without fetching the objects.
"""

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3util  # noqa: E402

import botocore.exceptions  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="list and download objects with boto3")
    ap.add_argument("--env", help="env file (default $HARVBK_TEST_S3_ENV)")
    ap.add_argument("--bucket", help="bucket (default HARVBK_TEST_S3_BUCKET)")
    ap.add_argument("--prefix", default="", help="key prefix (default: all)")
    ap.add_argument("--tls", action="store_true", help="use the HTTPS endpoint")
    ap.add_argument("--vhost", action="store_true", help="virtual-hosted style")
    ap.add_argument("--no-download", action="store_true", help="list only")
    ap.add_argument("--page-size", type=int, default=1000, help="MaxKeys per listing page")
    args = ap.parse_args()
    if not 1 <= args.page_size <= 1000:
        ap.error("--page-size must be in 1..1000")

    env = s3util.load_env(args.env)
    bucket = args.bucket or env["HARVBK_TEST_S3_BUCKET"]
    s3 = s3util.client(env, tls=args.tls, vhost=args.vhost, attempts=3)
    out = {}
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=args.prefix, PaginationConfig={"PageSize": args.page_size})
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in out:
                    raise RuntimeError(f"key listed twice: {key!r}")
                out[key] = {"size": obj["Size"], "sha256": None}
        if not args.no_download:
            for key, info in out.items():
                h = hashlib.sha256()
                n = 0
                body = s3.get_object(Bucket=bucket, Key=key)["Body"]
                for chunk in iter(lambda: body.read(1 << 20), b""):
                    h.update(chunk)
                    n += len(chunk)
                if n != info["size"]:
                    raise RuntimeError(f"{key!r}: listed size {info['size']}, downloaded {n}")
                info["sha256"] = h.hexdigest()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
            RuntimeError, OSError) as e:
        print(f"check_boto3.py: {bucket}/{args.prefix}: {e}", file=sys.stderr)
        return 1
    text = json.dumps(dict(sorted(out.items())), ensure_ascii=False, sort_keys=True)
    sys.stdout.buffer.write(text.encode("utf-8") + b"\n")  # UTF-8 whatever the locale
    return 0


if __name__ == "__main__":
    sys.exit(main())
