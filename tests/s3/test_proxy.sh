#!/usr/bin/env bash
# tests/s3/test_proxy.sh - run test_proxy.py with the python the S3 fixture
# found (botocore + boto3), against the servers in $HARVBK_TEST_S3_ENV.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
[ -n "${HARVBK_TEST_S3_ENV:-}" ] || { echo "test_proxy.sh: HARVBK_TEST_S3_ENV not set" >&2; exit 1; }
[ -f "$HARVBK_TEST_S3_ENV" ] ||
    { echo "test_proxy.sh: $HARVBK_TEST_S3_ENV missing: is the s3 fixture started?" >&2; exit 1; }
PY=$(sed -n 's/^HARVBK_TEST_S3_PYTHON=//p' "$HARVBK_TEST_S3_ENV")
exec "${PY:-python3}" "$(dirname "${BASH_SOURCE[0]}")/test_proxy.py" "$@"
