#!/bin/sh
# Fetches etcd 3.5 (Debian trixie's etcd-server and etcd-client) into DIR without touching the
# system's apt sources, for tests and benchmarks on Debian 12 (which ships 3.4).
# Usage: scripts/fetch-etcd-3.5.sh [DIR]   (default /opt/raptiformica-test/etcd-3.5)
# Prints the directory holding `etcd` and `etcdctl` on the last line. Safe to run again: a
# present, working 3.5 is reused.
set -eu

DIR="${1:-/opt/raptiformica-test/etcd-3.5}"
BINDIR="$DIR/root/usr/bin"

is_35() { [ -x "$BINDIR/etcd" ] && [ -x "$BINDIR/etcdctl" ] && "$BINDIR/etcd" --version 2>/dev/null | grep -q '^etcd Version: 3\.5\.'; }

if is_35; then
  echo "$BINDIR"
  exit 0
fi
mkdir -p "$DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  flock 9
  if is_35; then
    echo "$BINDIR"
    exit 0
  fi
fi
sh "$(dirname "$0")/fetch-from-trixie.sh" "$DIR" etcd-server etcd-client
if ! is_35; then
  echo "fetch-etcd-3.5: $BINDIR/etcd is not etcd 3.5" >&2
  exit 1
fi
echo "$BINDIR"
