#!/usr/bin/env bash
# tests/nfs/in-netns.sh ENVFILE -- COMMAND [ARGS...]
# Run COMMAND inside the network namespace of the NFS test server that
# tests/nfs/nfsenv.sh started (ENVFILE is its DIR/env), with the
# HARVBK_TEST_NFS_* settings of that file exported. Fails loudly when the
# server is not there (the ctest fixture "nfs" did not start it).
set -euo pipefail
[ $# -ge 3 ] && [ "$2" = "--" ] || { echo "usage: in-netns.sh ENVFILE -- COMMAND [ARGS...]" >&2; exit 2; }
envfile=$1
shift 2
if [ ! -r "$envfile" ]; then
    echo "in-netns.sh: $envfile missing: the NFS test server is not running (ctest fixture 'nfs', tests/nfs/nfsenv.sh start)" >&2
    exit 1
fi
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
if ! ip netns list | grep -qw "$HARVBK_TEST_NFS_NETNS"; then
    echo "in-netns.sh: network namespace $HARVBK_TEST_NFS_NETNS does not exist (server stopped?)" >&2
    exit 1
fi
exec ip netns exec "$HARVBK_TEST_NFS_NETNS" "$@"
