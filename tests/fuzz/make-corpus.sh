#!/usr/bin/env bash
# tests/fuzz/make-corpus.sh - (re)make the seed corpus of every fuzz target,
# tests/fuzz/corpus/<target>/, from real stores and state directories:
#
#   tests/fuzz/make-corpus.sh BUILD_DIR
#
# BUILD_DIR is an ordinary build (its `harvbk` CLI is used). The script makes
# a VM of two small disks, a metadata document and an image, backs it up into
# file:// stores of each codec, takes a snapshot, runs a schedule, syncs, and
# copies what the stores and the state directory then hold (store configs,
# manifests, indexes, chunks, records, catalogs, schedules, images, target
# settings); the directory tree of a store becomes the NFS listing seeds.
# Inputs that only a server or a user gives (S3 answers, URLs, cron
# expressions, changed-ranges files) and edge cases (empty, truncated, one
# byte changed, limits) are written here. Paths of this machine are replaced
# by /data in every text file. Seeds stay small (a few KiB): libFuzzer's
# default input size follows the largest seed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/tests/fuzz/corpus
PY=/usr/bin/python3
if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
# shellcheck source=scripts/common.sh
. "$ROOT/scripts/common.sh"
CLI=$(find_cli "$1") || { echo "no harvbk CLI in $1 (build it first)" >&2; exit 1; }
CLI=$(cd "$(dirname "$CLI")" && pwd)/$(basename "$CLI")

W=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-corpus.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
hb() { "$CLI" --state "$W/st" "$@" >/dev/null; }

# ---- real stores and a real state directory
"$PY" - <<'EOF'
with open('d1.img', 'wb') as f:  # text: compresses well
    for i in range(4096):
        f.write(('line %06d of the root disk of web\n' % i).encode())
with open('d2.img', 'wb') as f:  # a hole, then a pattern
    f.write(b'\0' * 65536)
    f.write(bytes(range(256)) * 256)
with open('d3.img', 'wb') as f:  # small: one small chunk per codec
    for i in range(128):
        f.write(('row %04d\n' % i).encode()[:32].ljust(32, b'.'))
EOF
cat >vm.json <<'EOF'
{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","metadata":{"name":"web","namespace":"default","uid":"7d3c1f9e-0c1b-4d7e-9d35-7e0f9c2a1b11","resourceVersion":"123456","labels":{"kubevirt.io/vm":"web","harvesterhci.io/vmName":"web"}},"spec":{"running":false,"dataVolumeTemplates":[{"metadata":{"name":"web-data"}}],"template":{"metadata":{"labels":{"kubevirt.io/vm":"web"}},"spec":{"domain":{"cpu":{"cores":2},"memory":{"guest":"2147483648"},"devices":{"interfaces":[{"name":"default","macAddress":"52:54:00:12:34:56","masquerade":{}}]}},"volumes":[{"name":"rootdisk","persistentVolumeClaim":{"claimName":"web-rootdisk"}},{"name":"data","dataVolume":{"name":"web-data"}}]}}},"status":{"ready":false,"size":12345678901234567890}}
EOF
hb target set "file://$W/zstd" --codec zstd
hb image register default/img --display-name "Ubuntu 22.04" --url https://example.com/u.img \
    --checksum "$(printf 'ab%.0s' $(seq 32))"
hb vm add default/web --disk "rootdisk=$W/d1.img" --disk "data=$W/d2.img" --metadata vm.json \
    --image default/img
hb backup create default/web --name b1
printf 'rootdisk 0 4096\n' >ranges.txt
printf 'changed\n' | dd of=d1.img bs=1 seek=100 conv=notrunc status=none
hb backup create default/web --name b2 --changed-ranges ranges.txt
hb snapshot create default/web --name s1
hb schedule create nightly --type backup --vm default/web --cron 'CRON_TZ=Europe/Berlin 30 2 * * *' \
    --retain 3 --now 2026-01-01T00:00:00Z
hb schedule run-due --now 2026-01-02T01:31:00Z
hb sync
hb quota set --namespace default 100000000
for codec in lz4 gzip none; do
    "$CLI" --state "$W/st-$codec" target set "file://$W/$codec" --codec "$codec" >/dev/null
    "$CLI" --state "$W/st-$codec" vm add default/web --disk "rootdisk=$W/d3.img" >/dev/null
    "$CLI" --state "$W/st-$codec" backup create default/web --name b1 >/dev/null
done
# no path of this machine in the corpus
find "$W" -name '*.json' -type f -exec sed -i "s#$W#/data#g" {} +

rm -rf "$OUT"
mkdir -p "$OUT"
seed() { # TARGET NAME < content
    mkdir -p "$OUT/$1"
    cat >"$OUT/$1/$2"
}
copy() { # TARGET NAME FILE
    mkdir -p "$OUT/$1"
    cp "$3" "$OUT/$1/$2"
}

# ---- store config, manifests, indexes, chunks, images of the store
for codec in zstd lz4 gzip none; do
    copy store_config "$codec.json" "$W/$codec/harvbk-store.json"
    copy manifest "backup-$codec.json" "$W/$codec/backups/default/b1/manifest.json"
    copy index "rootdisk-$codec.idx" "$W/$codec/backups/default/b1/rootdisk.idx"
done
copy store_config snapshot-store.json "$W/st/snapshot-store/harvbk-store.json"
copy manifest backup-b2.json "$W/zstd/backups/default/b2/manifest.json"
copy manifest snapshot-s1.json "$W/st/snapshot-store/snapshots/default/s1/manifest.json"
copy index data-hole.idx "$W/zstd/backups/default/b1/data.idx"
copy image_record store-image.json "$W/zstd/images/default/img.json"
copy image_record registry-image.json "$W/st/images/default/img.json"
n=0
for codec in zstd lz4 gzip none; do
    for c in $(find "$W/$codec/chunks" -type f | sort); do
        [ "$(stat -c %s "$c")" -le 16384 ] || continue
        n=$((n + 1))
        copy chunk "$codec-$n.chunk" "$c"
    done
done

# ---- the state directory
copy backup_record backup-b1.json "$W/st/backups/default/b1.json"
copy backup_record backup-scheduled.json "$W/st/backups/default/nightly-20260102-0130.json"
copy backup_record snapshot-s1.json "$W/st/snapshots/default/s1.json"
copy vm_catalog web.json "$W/st/vms/default/web.json"
copy schedule_record nightly.json "$W/st/schedules/default/nightly.json"
copy synced_catalog backups.json "$W/st/catalog/backups.json"
copy target_options target.json "$W/st/target.json"

# ---- edge cases of the JSON documents and binary objects, made from the
# real ones: empty, truncated, one byte changed, a newer format
"$PY" - "$OUT" <<'EOF'
import hashlib, json, os, struct, sys
out = sys.argv[1]

def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def first(target, suffix):
    d = os.path.join(out, target)
    return open(os.path.join(d, sorted(x for x in os.listdir(d) if x.endswith(suffix))[0]), 'rb').read()

for target, suffix in [('store_config', '.json'), ('manifest', '.json'), ('backup_record', '.json'),
                       ('vm_catalog', '.json'), ('schedule_record', '.json'),
                       ('synced_catalog', '.json'), ('image_record', '.json'),
                       ('target_options', '.json')]:
    doc = first(target, suffix)
    put(target, 'empty', b'')
    put(target, 'truncated', doc[:len(doc) // 2])
    put(target, 'not-object', b'[1,2,3]')
    j = json.loads(doc)
    for k in ('format', 'format_major', 'version'):
        if k in j:
            j2 = dict(j); j2[k] = 99
            put(target, 'newer-' + k, json.dumps(j2, separators=(',', ':')))
            j2[k] = 0
            put(target, 'zero-' + k, json.dumps(j2, separators=(',', ':')))
    # every string value once replaced by a long one, every number by 2^64
    for k, v in list(j.items())[:12]:
        j2 = dict(j)
        if isinstance(v, str):
            j2[k] = 'x' * 300
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            j2[k] = 18446744073709551616
        else:
            continue
        put(target, 'field-' + k, json.dumps(j2, separators=(',', ':')))

# store config with odd chunk sizes and codecs
sc = json.loads(first('store_config', 'zstd.json'))
for cs in (65535, 1 << 27, 3 << 20):
    s = dict(sc); s['chunk_size'] = cs
    put('store_config', 'chunk-size-%d' % cs, json.dumps(s))
for codec in ('brotli', ''):
    s = dict(sc); s['codec'] = codec
    put('store_config', 'codec-' + (codec or 'empty'), json.dumps(s))
s = dict(sc); s['encryption'] = 'aes-256-gcm'
put('store_config', 'encrypted', json.dumps(s))

# manifests: a volume with ../ in its name, duplicate volumes, huge sizes
m = json.loads(first('manifest', 'zstd.json'))
m2 = json.loads(json.dumps(m)); m2['volumes'][0]['name'] = '../../etc/passwd'
put('manifest', 'volume-dotdot', json.dumps(m2))
m2 = json.loads(json.dumps(m)); m2['volumes'].append(dict(m2['volumes'][0]))
put('manifest', 'volume-twice', json.dumps(m2))
m2 = json.loads(json.dumps(m)); m2['volumes'][0]['size'] = 1 << 53
put('manifest', 'volume-huge', json.dumps(m2))
m2 = json.loads(json.dumps(m)); m2['metadata'] = '!!!notbase64'
put('manifest', 'metadata-bad-base64', json.dumps(m2))

# indexes: header variants, with a correct trailer where it matters
def index(chunk_size, size, count, ids, version=1, reserved=0):
    body = b'HBI1' + struct.pack('<IIIQQ', version, chunk_size, reserved, size, count) + ids
    return body + hashlib.sha256(body).digest()
put('index', 'empty-volume', index(1 << 20, 0, 0, b''))
put('index', 'one-hole', index(65536, 1, 1, b'\0' * 32))
put('index', 'count-lies', index(65536, 1 << 40, 1, b'\1' * 32))
put('index', 'count-huge', index(65536, 1 << 62, 1 << 46, b''))
put('index', 'version-2', index(65536, 1, 1, b'\0' * 32, version=2))
put('index', 'chunk-size-0', index(0, 1, 1, b'\0' * 32))
ix = first('index', 'zstd.idx')
put('index', 'bad-trailer', ix[:-1] + bytes([ix[-1] ^ 1]))
put('index', 'truncated', ix[:40])

# chunks: every codec's header, flags, lying lengths
def chunk(codec, raw_len, payload, flags=0, reserved=b'\0' * 16):
    return b'HBC1' + bytes([codec, flags, 0, 0]) + struct.pack('<II', raw_len, len(payload)) + reserved + payload
put('chunk', 'none-small', chunk(0, 5, b'hello'))
put('chunk', 'none-empty', chunk(0, 0, b''))
put('chunk', 'encrypted-flag', chunk(1, 5, b'xxxxx', flags=1))
put('chunk', 'unknown-codec', chunk(9, 5, b'hello'))
put('chunk', 'raw-len-huge', chunk(1, 0xffffffff, b'\x28\xb5\x2f\xfd\x00\x00'))
put('chunk', 'header-only', b'HBC1' + b'\0' * 28)
import gzip, zlib
put('chunk', 'gzip-small', chunk(3, 11, gzip.compress(b'hello world', mtime=0)))
# [codec][expected length LE32][payload] seeds of the decompressors
put('chunk', 'raw-gzip', bytes([3]) + struct.pack('<I', 11) + gzip.compress(b'hello world', mtime=0))
put('chunk', 'raw-none', bytes([0]) + struct.pack('<I', 3) + b'abc')
put('chunk', 'key', b'chunks/0a/1e/0a1e95875753ace06ebf9fe2c61a0f88eac6f6524d1503254dd6e2765291fccd')

# schedule history edge cases
s = json.loads(first('schedule_record', 'nightly.json'))
s2 = json.loads(json.dumps(s)); s2['history'] = [dict(s['history'][0], state='Bogus')]
put('schedule_record', 'history-bad-state', json.dumps(s2))
s2 = json.loads(json.dumps(s)); s2['history'] = s['history'] * 40
put('schedule_record', 'history-long', json.dumps(s2))
s2 = json.loads(json.dumps(s)); s2['suspended'] = True; s2['suspended_by'] = 'max-failure'
s2['suspend_reason'] = '2 failures in a row'; s2['type'] = 'snapshot'
put('schedule_record', 'suspended-snapshot', json.dumps(s2))

# synced catalog: the same backup twice, forgotten entries
c = json.loads(first('synced_catalog', 'backups.json'))
if c.get('backups'):
    c2 = json.loads(json.dumps(c)); c2['backups'].append(c2['backups'][0])
    put('synced_catalog', 'backup-twice', json.dumps(c2))
c2 = json.loads(json.dumps(c))
c2['forgotten'] = [{'namespace': 'default', 'name': 'old', 'fp': {'size': 10, 'mtime': 5},
                    'forgotten_ms': 1}]
put('synced_catalog', 'forgotten', json.dumps(c2))

# leases and claims as writers write them
lease = {'role': 'writer', 'owner': 'ctx-1234', 'heartbeat': 1800000000, 'host': 'node1',
         'boot': '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 'pidns': 'pid:[4026531836]', 'pid': 4242}
put('lease', 'writer.json', json.dumps(lease))
put('lease', 'gc-old.json', json.dumps(dict(lease, role='gc', heartbeat=1)))
put('lease', 'future.json', json.dumps(dict(lease, heartbeat=9223372036854775807)))
put('lease', 'no-ident.json', json.dumps({'role': 'writer', 'owner': 'x', 'heartbeat': 1800000000}))
put('lease', 'pid-fraction.json', json.dumps(dict(lease, pid=1.5)))
put('lease', 'owner-name', b'ctx-1234_a.b')
put('lease', 'garbage', b'\xff\xfe{')
EOF

# ---- S3 answers (as AWS S3 and s3rver send them)
XMLH='<?xml version="1.0" encoding="UTF-8"?>'
seed s3_xml list-one-page <<EOF
store/prefix backups/
$XMLH<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>store/prefix/backups/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>store/prefix/backups/default/b1/manifest.json</Key><LastModified>2026-01-02T01:31:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>store/prefix/backups/default/b1/rootdisk.idx</Key><LastModified>2026-01-02T01:31:00.000Z</LastModified><Size>96</Size></Contents></ListBucketResult>
EOF
seed s3_xml list-two-pages <<EOF
p chunks/
$XMLH<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>p/chunks/0a/1e/0a1e95875753ace06ebf9fe2c61a0f88eac6f6524d1503254dd6e2765291fccd</Key><Size>2400</Size><LastModified>2009-10-12T17:50:30.000Z</LastModified></Contents></ListBucketResult>
==PAGE==
$XMLH<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>p/chunks/cd/47/cd472ddd8589c1d1e6d8d86901ce0983c14945ee6a3d5b889565d67cc97b764f</Key><Size>2300</Size></Contents></ListBucketResult>
EOF
seed s3_xml list-entities <<EOF
 
<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a&amp;b/c&#x41;&#66;&lt;&gt;&quot;&apos;</Key><Size>1</Size></Contents><Contents><Key>images/x/&#x1F600;.json</Key><Size>18446744073709551615</Size></Contents><Contents><Key/></Contents></ListBucketResult>
EOF
seed s3_xml list-out-of-order <<EOF
 
<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>b</Key></Contents><Contents><Key>a</Key></Contents></ListBucketResult>
EOF
seed s3_xml list-token-repeats <<EOF
 
<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>
==PAGE==
<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>
EOF
seed s3_xml list-not-ours <<EOF
store 
<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>store/../x</Key></Contents><Contents><Key>store/a//b</Key></Contents><Contents><Key>storey/a</Key></Contents><Contents><Key>store/ok</Key></Contents></ListBucketResult>
EOF
seed s3_xml error-nosuchkey <<EOF
 
$XMLH<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message><Resource>/bucket/store/x</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>
EOF
seed s3_xml error-control-chars <<EOF
 
<Error><Code>Slow&#10;Down</Code><Message>Please reduce your request rate.&#13;&#9;</Message></Error>
EOF
seed s3_xml delete-result <<EOF
 
$XMLH<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>p/a</Key></Deleted><Error><Key>p/b</Key><Code>NoSuchKey</Code><Message>gone</Message></Error><Error><Key>p/c&amp;d</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>
EOF
seed s3_xml multipart-create <<EOF
 
$XMLH<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>bucket</Bucket><Key>p/big</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>
EOF
seed s3_xml multipart-complete-error <<EOF
 
<CompleteMultipartUploadResult><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error></CompleteMultipartUploadResult>
EOF
seed s3_xml bad-entities <<EOF
 
<ListBucketResult><Contents><Key>&#0;</Key></Contents><Contents><Key>&#xD800;</Key></Contents><Contents><Key>&#x110000;</Key></Contents><Contents><Key>&unknown;</Key></Contents></ListBucketResult>
EOF
printf ' \n<ListBucketResult><Contents><Key>a</Key' | seed s3_xml truncated

# ---- HTTP answers as the S3 client captures them: [flags][head][body pieces]
# (flags: bit 0 HEAD, bits 1-3 the largest body in KiB)
http() { { printf "\\x$2"; cat; } | seed http_response "$1"; }
printf 'HTTP/1.1 200 OK\r\nx-amz-request-id: 4442587FB7D0A2F9\r\nETag: "9b2cf535f27731c974343645a3985328"\r\nContent-Length: 11\r\nContent-Type: application/octet-stream\r\n\r\nhello world' |
    http get-200 0e
printf 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab\n~\ncd' | http continue-then-200 0e
printf 'HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n' | http too-large 02
printf 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n' | http length-overflow 02
printf 'HTTP/1.1 200 OK\r\nContent-Length: 123456789\r\nETag: "abc"\r\n\r\n' | http head 01
printf 'HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n\r\n<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>' |
    http error-404 02
printf 'HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\n\r\n<Error><Code>SlowDown</Code></Error>\n~\nmore' | http error-503 00
printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234\n~\n5678\n~\n9' | http chunked 02
printf 'HTTP/2 200\r\netag:%0200d\r\ncontent-length:\t7\r\n\r\n' 0 | http odd-headers 0e

# ---- NFS: the directory tree of a real store, as a listing walks it
"$PY" - "$W/zstd" "$OUT/nfs_entries" <<'EOF'
import os, sys
root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def groups(prefix):
    by_depth = {}
    for d, dirs, files in os.walk(root):
        depth = 0 if d == root else os.path.relpath(d, root).count('/') + 1
        g = by_depth.setdefault(depth, [])
        g += ['d ' + x for x in dirs] + ['f ' + x for x in files]
    text = prefix + '\n' + '\n\n'.join('\n'.join(sorted(set(by_depth[k]))) for k in sorted(by_depth))
    return text + '\n'
for name, prefix in [('store-all', ''), ('store-chunks', 'chunks/'),
                     ('store-manifests', 'backups/default/'), ('store-one-key', 'harvbk-store.json')]:
    open(os.path.join(out, name), 'w').write(groups(prefix))
open(os.path.join(out, 'tmp-names'), 'w').write(
    '\nd tmp\n\nf ctx-1234-5678-99-ab12cd\nf ctx-1234-5678-ab12cd\nf -1-ab\nf x--ab\nf owner.with.dots-7-0\n'
    'f nothing-here\no sock\nf .hidden\n')
open(os.path.join(out, 'self-containing'), 'w').write('\nd a\nf a\n')
open(os.path.join(out, 'exports'), 'w').write('/export/backups\nd /export\nd /export/backups/\nd /\nf x\n')
open(os.path.join(out, 'odd-names'), 'w').write('b\nd .\nd ..\nf a\\b\nf \x01\nd backups\n\nf ok\nd ..\n')
EOF

# ---- target URLs and settings
url() { printf '%s\n%s\n%s\n' "$2" "${3:-}" "${4:-}" | seed target_url "$1"; }
url file 'file:///var/lib/backups'
url file-relative 'file://relative/path'
url nfs 'nfs://nfs.example/export/harvbk?nfsport=2049&mountport=20048'
url nfs-v4 'nfs://server/export?version=4'
url nfs-dotdot 'nfs://server/export/../etc'
url nfs-port 'nfs://server:2049/export'
url nfs-trailing 'NFS://Server/export/dir///'
url s3 's3://bucket/store/prefix' 'https://s3.example:9000/base/path'
url s3-vhost 's3://my-bucket.example/p' 'http://localhost:9000' v
url s3-vhost-ip 's3://my-bucket/p' 'http://127.0.0.1:9000' v
url s3-ipv6 's3://b' 'http://[::1]:9000/'
url s3-bad-endpoint 's3://b/p' 'http://user@host/'
url s3-dotdot 's3://b/p/../q'
url credentials 's3://key:secret@bucket/p'
url unknown-scheme 'ftp://host/p'
url control $'file:///a\tb'
opt() { seed target_options "$1"; }
printf '1 s3://bucket/prefix\n2 https://s3.example:9000\n3 eu-west-1\n4 AKIDEXAMPLE\n5 wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n13 1\n9 lz4\n10 4194304\n11 2500\n12 16\n7 1\n8 300\n14 1\n' | opt s3-all
printf '1 nfs://server/export/dir\n9 gzip\n10 65536\n6 /etc/ssl/certs/ca.pem\n' | opt nfs
printf '10 3\n11 0\n12 100000\n9 brotli\n7 maybe\n99 x\n-1 y\n1 \n' | opt invalid-values
printf '{"version":1,"url":"s3://b/p","endpoint":"http://h:1","access_key_id":"A","secret_access_key":"S","store_secret":true,"codec":"none","chunk_size":65536,"parallel":3}' | opt stored-secret.json
printf '{"version":2,"url":"file:///x","read_only":true,"timeout_ms":4294967296}' | opt read-only.json

# ---- the changed-ranges file
seed ranges_file ranges.txt <ranges.txt
seed ranges_file comments.txt <<'EOF'
# changed since the last backup
rootdisk 0 4096      # first block
data	65536	131072
rootdisk 4096 0
a 18446744073709551615 0

rootdisk 8192 4096
EOF
printf 'rootdisk 18446744073709551615 1\n' | seed ranges_file overflow.txt
printf 'rootdisk 0x10 5\n' | seed ranges_file hex.txt
printf 'nosuchvolume 0 1\n' | seed ranges_file unknown-volume.txt
printf 'rootdisk 1 2 3\n' | seed ranges_file four-fields.txt
printf 'rootdisk 1\0 2\n' | seed ranges_file nul.txt
printf 'data 10 10' | seed ranges_file no-newline.txt
head -c 5000 /dev/zero | tr '\0' 'x' | seed ranges_file long-line.txt

# ---- cron expressions (and zone data after the first line)
cron() { printf '%s\n' "$2" | seed cron "$1"; }
cron every-minute '* * * * *'
cron nightly-berlin 'CRON_TZ=Europe/Berlin 30 2 * * *'
cron steps '*/15 0-23/2 1-31/3 JAN-DEC/2 MON-FRI'
cron lists '0,15,30,45 8,12,18 1,15 * 0,7'
cron descriptors '@weekly'
cron yearly-tz 'CRON_TZ=America/New_York @yearly'
cron never '0 0 30 2 *'
cron feb29 '0 0 29 2 *'
cron bad-range '60 24 32 13 8'
cron six-fields '0 0 0 * * *'
cron tz-dotdot 'CRON_TZ=../../etc/passwd * * * * *'
cron tz-unknown 'CRON_TZ=Mars/Olympus * * * * *'
{ printf '30 2 * * *\n'; cat /usr/share/zoneinfo/Europe/Berlin; } | seed cron tzif-berlin
{ printf '0 * * * *\n'; cat /usr/share/zoneinfo/Australia/Lord_Howe; } | seed cron tzif-lord-howe
{ printf '*/30 * * * *\n'; cat /usr/share/zoneinfo/UTC; } | seed cron tzif-utc

# ---- the metadata a restore rewrites: [flags byte][document]
md() { { printf "\\x$2"; cat; } | seed metadata_rewrite "$1"; }
md vm-new 00 <vm.json
md vm-keep-mac 01 <vm.json
md vm-replace 02 <vm.json
md vm-same-names 04 <vm.json
printf '{"kind":"ConfigMap","metadata":{"name":"web","namespace":"default"},"data":{"n":1.50}}' | md other-kind 00
printf '{"kind":"VirtualMachine","metadata":{"name":"web"}\f}' | md vm-formfeed 00
printf '{"kind":"VirtualMachine","a\\u0000b":1}' | md vm-nul-key 00
printf 'not json at all' | md not-json 00
printf '{"kind":"VirtualMachine","spec":{"template":{"spec":{"volumes":[{"name":"rootdisk","dataVolume":{"name":"old"}}]}},"dataVolumeTemplates":[{"metadata":{"name":"old"}}]},"n":123456789012345678901234567890}' | md vm-datavolume 00

echo "corpus written to $OUT:"
for d in "$OUT"/*/; do
    printf '  %-18s %3d files, %6d bytes\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)" \
        "$(find "$d" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
done
