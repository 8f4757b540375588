#!/usr/bin/env bash
# tests/s3/s3env.sh - start/stop the S3 test servers.
#
#   tests/s3/s3env.sh start DIR    start s3rver + the verifying proxy, write DIR/env
#   tests/s3/s3env.sh stop DIR     stop exactly the processes `start` recorded
#                                  (safe to call twice, or without a start)
#
# start: npm s3rver 3.x (node --openssl-legacy-provider) on 127.0.0.1 with its
# data in DIR/data and two buckets; in front of it tests/s3/proxy.py on
# 127.0.0.1 (plain HTTP, HTTPS with a CA made here for localhost and
# *.localhost, and a control port). Fresh random credentials every start.
# DIR/env (KEY=VALUE lines, sourceable) then holds:
#   HARVBK_TEST_S3_ENDPOINT       http://127.0.0.1:PORT (the proxy)
#   HARVBK_TEST_S3_ENDPOINT_TLS   https://localhost:PORT (the proxy, TLS)
#   HARVBK_TEST_S3_CA             PEM file of the CA that signed the TLS cert
#   HARVBK_TEST_S3_REGION         us-east-1
#   HARVBK_TEST_S3_ACCESS_KEY_ID  the access key id the proxy accepts
#   HARVBK_TEST_S3_SECRET_FILE    0600 file holding the secret (one line)
#   HARVBK_TEST_S3_BUCKET         a bucket (path style)
#   HARVBK_TEST_S3_BUCKET_VHOST   a second bucket, DNS-safe for virtual-hosted
#                                 style (BUCKET.localhost:PORT)
#   HARVBK_TEST_S3_CONTROL        http://127.0.0.1:PORT/__control (faults, stats)
#   HARVBK_TEST_S3_DIRECT         http://127.0.0.1:PORT (s3rver itself, no checks)
#   HARVBK_TEST_S3_DIR            DIR (logs: proxy.log, s3rver.log)
#   HARVBK_TEST_S3_PYTHON         a python3 with botocore + boto3
#   HARVBK_TEST_S3_CHECK          tests/s3/check_boto3.py (run it with that python)
# Logs: DIR/proxy.log (one line per request), DIR/s3rver.log.
#
# Environment: HARVBK_S3RVER_DIR (where scripts/deps.sh installed s3rver),
#   HARVBK_TEST_PYTHON (a python3 with botocore; default: Debian's).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

S3RVER_VERSION=3.7.1   # keep in step with scripts/deps.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WAIT_S=30

die() { echo "s3env.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: s3env.sh start|stop DIR"
cmd=$1
DIR=$2
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
case "$DIR" in *[[:space:]\'\"\$\`\\]*) die "DIR must not contain blanks or quotes: $DIR" ;; esac

# is PID alive and one of ours (command line mentions WHAT)?
ours() {
    local pid=$1 what=$2
    local cl
    cl=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cl == *"$what"* ]]
}

# our own child PID still running (not a zombie)? Right after the fork its
# command line is still bash's, so `ours` cannot be used for it yet.
running() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

stop_servers() {
    [ -f "$DIR/pids" ] || { rm -f "$DIR/env"; return 0; }
    local _name pid what left=()
    while read -r _name pid what; do
        [ -n "$pid" ] || continue
        if ours "$pid" "$what"; then
            kill -TERM "$pid" 2>/dev/null || true
            left+=("$pid:$what")
        fi
    done <"$DIR/pids"
    local deadline=$((SECONDS + 10)) e
    for e in "${left[@]}"; do
        pid=${e%%:*} what=${e#*:}
        while ours "$pid" "$what" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        if ours "$pid" "$what"; then
            echo "s3env.sh: $pid did not stop on TERM, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            local d2=$((SECONDS + 5))
            while ours "$pid" "$what" && [ $SECONDS -lt $d2 ]; do sleep 0.1; done
        fi
    done
    rm -f "$DIR/pids" "$DIR/env"
}

find_python() {
    local c
    for c in ${HARVBK_TEST_PYTHON:-} /usr/bin/python3 python3; do
        if command -v "$c" >/dev/null 2>&1 &&
           "$c" -c 'import botocore, boto3' >/dev/null 2>&1; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

case "$cmd" in
stop)
    stop_servers
    # last line of defence for the whole run: the secret must not be in any
    # log the servers wrote (every request of every test went through them)
    if [ -s "$DIR/secret" ]; then
        leaked=$(grep -rlF -f "$DIR/secret" "$DIR"/*.log "$DIR"/*.out 2>/dev/null || true)
        if [ -n "$leaked" ]; then
            echo "s3env.sh: the S3 secret appears in: $leaked" >&2
            exit 1
        fi
    fi
    exit 0 ;;
start) ;;
*) die "unknown command '$cmd' (start|stop)" ;;
esac

# ---------------------------------------------------------------- start
T0=$(date +%s%N)
S3RVER_DIR=${HARVBK_S3RVER_DIR:-${XDG_CACHE_HOME:-~/.cache}/harvbk/s3rver-$S3RVER_VERSION}
S3RVER_JS=$S3RVER_DIR/node_modules/s3rver/bin/s3rver.js
[ -f "$S3RVER_JS" ] || die "s3rver not found at $S3RVER_JS; run scripts/deps.sh"
command -v node >/dev/null 2>&1 || die "node not found; run scripts/deps.sh"
command -v openssl >/dev/null 2>&1 || die "openssl not found; run scripts/deps.sh"
PY=$(find_python) || die "no python3 with botocore and boto3; run scripts/deps.sh"

mkdir -p "$DIR"
stop_servers    # leftovers of an earlier run in this DIR (recorded PIDs only)
rm -rf "$DIR/data" "$DIR/tls"
rm -f "$DIR/proxy.ports" "$DIR/proxy.log" "$DIR/s3rver.log" "$DIR/proxy.out" "$DIR/secret"
mkdir -p "$DIR/data" "$DIR/tls"

BUCKET=harvbk-test
BUCKET_VHOST=harvbk-vhost

# ---- credentials: fresh per run; the secret only ever in a 0600 file
(
    umask 077
    AKID="HBKT$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
    # 40 characters like an AWS secret, '/' and '+' included on purpose
    SECRET=$(head -c 30 /dev/urandom | base64 | tr -d '\n')
    printf '%s\n' "$AKID" >"$DIR/access_key_id"
    printf '%s\n' "$SECRET" >"$DIR/secret"
)
AKID=$(cat "$DIR/access_key_id")
[ ${#AKID} -eq 20 ] || die "could not make an access key id"

# ---- TLS: a CA and a server certificate for localhost, *.localhost, the buckets
(
    cd "$DIR/tls"
    umask 077
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout ca.key -out ca.pem -days 30 -subj "/CN=harvbk test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout server.key -out server.csr -subj "/CN=localhost"
        printf '%s\n' \
            "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:localhost,DNS:*.localhost,DNS:$BUCKET.localhost,DNS:$BUCKET_VHOST.localhost,IP:127.0.0.1" \
            >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 30 -extfile server.ext -out server.pem
    } >openssl.log 2>&1 || { cat openssl.log >&2; exit 1; }
    chmod 644 ca.pem server.pem
) || die "could not make the TLS certificates (see above)"

S3RVER_PID="" PROXY_PID=""
fail() {
    echo "s3env.sh: $*" >&2
    for f in s3rver.log proxy.out proxy.log; do
        [ -s "$DIR/$f" ] && { echo "---- $DIR/$f (last lines)" >&2; tail -n 20 "$DIR/$f" >&2; }
    done
    # our children, by PID (they may not have exec'd yet: `ours` can't tell)
    local p deadline=$((SECONDS + 10))
    for p in ${S3RVER_PID:-} ${PROXY_PID:-}; do kill -TERM "$p" 2>/dev/null || true; done
    for p in ${S3RVER_PID:-} ${PROXY_PID:-}; do
        while running "$p" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        running "$p" && kill -KILL "$p" 2>/dev/null
    done
    stop_servers
    exit 1
}

# ---- s3rver (its own session, stdio on files: nothing holds ctest's pipes),
# with the fixes of s3rver-fixes.js preloaded. The log exists before the
# background child opens it: on a busy machine the wait loop below may read it
# first (and a failing sed under `set -e -o pipefail` would end this script).
: >"$DIR/s3rver.log"
setsid node --openssl-legacy-provider -r "$HERE/s3rver-fixes.js" "$S3RVER_JS" -d "$DIR/data" -a 127.0.0.1 -p 0 \
    --no-vhost-buckets --configure-bucket "$BUCKET" --configure-bucket "$BUCKET_VHOST" \
    </dev/null >"$DIR/s3rver.log" 2>&1 &
S3RVER_PID=$!
echo "s3rver $S3RVER_PID $S3RVER_JS" >>"$DIR/pids"

S3PORT=
deadline=$((SECONDS + WAIT_S))
while [ -z "$S3PORT" ]; do
    S3PORT=$(sed -nE 's/.*S3rver listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$DIR/s3rver.log" |
             head -n 1) || S3PORT=
    [ -n "$S3PORT" ] && break
    running "$S3RVER_PID" || fail "s3rver exited during start-up"
    [ $SECONDS -lt $deadline ] || fail "s3rver did not start within ${WAIT_S}s"
    sleep 0.05
done

# ---- the proxy
setsid "$PY" "$HERE/proxy.py" --upstream "http://127.0.0.1:$S3PORT" --listen 127.0.0.1 \
    --cert "$DIR/tls/server.pem" --key "$DIR/tls/server.key" \
    --access-key-id "$AKID" --secret-file "$DIR/secret" --region us-east-1 \
    --vhost-domain localhost --log "$DIR/proxy.log" --ports-file "$DIR/proxy.ports" \
    </dev/null >"$DIR/proxy.out" 2>&1 &
PROXY_PID=$!
echo "proxy $PROXY_PID $HERE/proxy.py" >>"$DIR/pids"

deadline=$((SECONDS + WAIT_S))
while [ ! -s "$DIR/proxy.ports" ]; do
    running "$PROXY_PID" || fail "the proxy exited during start-up"
    [ $SECONDS -lt $deadline ] || fail "the proxy did not start within ${WAIT_S}s"
    sleep 0.05
done
read -r HTTP_PORT HTTPS_PORT CONTROL_PORT < <("$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))
print(p["http"], p["https"], p["control"])' "$DIR/proxy.ports")

# ---- both answer? (s3rver lists the buckets; the proxy's control port, its
# TLS port verified against the CA, and its HTTP port reject an unsigned request)
if ! "$PY" - "$S3PORT" "$HTTP_PORT" "$HTTPS_PORT" "$CONTROL_PORT" "$DIR/tls/ca.pem" \
        "$BUCKET" "$BUCKET_VHOST" "$WAIT_S" <<'EOF'
import http.client, ssl, sys, time
s3port, hport, tport, cport, ca, b1, b2, wait_s = sys.argv[1:]
deadline = time.monotonic() + float(wait_s)
def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()
last = None
while time.monotonic() < deadline:
    try:
        st, body = get(http.client.HTTPConnection("127.0.0.1", int(s3port), timeout=5), "/")
        assert st == 200 and b1.encode() in body and b2.encode() in body, \
            f"s3rver bucket list: {st} {body[:200]!r}"
        st, _ = get(http.client.HTTPConnection("127.0.0.1", int(cport), timeout=5),
                    "/__control/stats")
        assert st == 200, f"proxy control: {st}"
        st, body = get(http.client.HTTPConnection("127.0.0.1", int(hport), timeout=5), "/")
        assert st == 403, f"proxy http, unsigned request: {st}"
        ctx = ssl.create_default_context(cafile=ca)
        st, _ = get(http.client.HTTPSConnection("localhost", int(tport), timeout=5,
                                                context=ctx), "/")
        assert st == 403, f"proxy https, unsigned request: {st}"
        sys.exit(0)
    except (OSError, AssertionError, http.client.HTTPException) as e:
        last = e
        time.sleep(0.1)
print(f"servers not ready: {last}", file=sys.stderr)
sys.exit(1)
EOF
then
    fail "the servers did not answer as expected within ${WAIT_S}s"
fi

# the readiness probes are not part of any test's counts
"$PY" - "$CONTROL_PORT" <<'EOF' || fail "could not reset the proxy's counters"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("POST", "/__control/stats/reset", body=b"")
sys.exit(0 if c.getresponse().status == 200 else 1)
EOF

cat >"$DIR/env.tmp" <<EOF
HARVBK_TEST_S3_ENDPOINT=http://127.0.0.1:$HTTP_PORT
HARVBK_TEST_S3_ENDPOINT_TLS=https://localhost:$HTTPS_PORT
HARVBK_TEST_S3_CA=$DIR/tls/ca.pem
HARVBK_TEST_S3_REGION=us-east-1
HARVBK_TEST_S3_ACCESS_KEY_ID=$AKID
HARVBK_TEST_S3_SECRET_FILE=$DIR/secret
HARVBK_TEST_S3_BUCKET=$BUCKET
HARVBK_TEST_S3_BUCKET_VHOST=$BUCKET_VHOST
HARVBK_TEST_S3_CONTROL=http://127.0.0.1:$CONTROL_PORT/__control
HARVBK_TEST_S3_DIRECT=http://127.0.0.1:$S3PORT
HARVBK_TEST_S3_DIR=$DIR
HARVBK_TEST_S3_PYTHON=$PY
HARVBK_TEST_S3_CHECK=$HERE/check_boto3.py
EOF
mv -f "$DIR/env.tmp" "$DIR/env"
T1=$(date +%s%N)
echo "s3env.sh: s3rver (pid $S3RVER_PID, port $S3PORT) and proxy (pid $PROXY_PID, http $HTTP_PORT," \
     "https $HTTPS_PORT, control $CONTROL_PORT) ready in $(( (T1 - T0) / 1000000 )) ms; env in $DIR/env"
