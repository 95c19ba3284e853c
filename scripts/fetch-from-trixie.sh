#!/bin/sh
# Fetches Debian trixie packages into DIR/root (unpacked, not installed) without touching the
# system's apt sources, so tests on Debian 12 can run newer Yggdrasil / etcd beside the
# system's. Usage: scripts/fetch-from-trixie.sh DIR PACKAGE...
# Test files running in parallel may call this at once: one fetches, the others wait (flock).
set -eu

DIR=$1
shift
[ $# -gt 0 ] || { echo "usage: fetch-from-trixie.sh DIR PACKAGE..." >&2; exit 2; }

mkdir -p "$DIR/lists/partial"
echo "deb http://deb.debian.org/debian trixie main" >"$DIR/trixie.list"

# The options point apt at our own list file and state dir; /etc/apt is never read or written.
opts="-o Dir::Etc::sourcelist=$DIR/trixie.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=$DIR/lists -o APT::Get::List-Cleanup=0"

# shellcheck disable=SC2086
apt-get $opts -q update >&2
rm -rf "$DIR/debs" "$DIR/root.tmp"
mkdir -p "$DIR/debs"
# shellcheck disable=SC2086
(cd "$DIR/debs" && apt-get $opts -q download "$@" >&2)

for p in "$@"; do
  set -- "$DIR/debs/${p}"_*.deb
  if [ ! -f "$1" ]; then
    echo "fetch-from-trixie: apt-get download produced no ${p}_*.deb in $DIR/debs" >&2
    exit 1
  fi
  dpkg-deb -x "$1" "$DIR/root.tmp"
done
rm -rf "$DIR/root"
mv "$DIR/root.tmp" "$DIR/root"
