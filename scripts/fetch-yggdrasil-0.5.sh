#!/bin/sh
# Fetches Yggdrasil 0.5 (Debian trixie's package) into DIR without touching the system's apt
# sources, so tests on Debian 12 (which ships 0.4) can run both majors side by side.
# Usage: scripts/fetch-yggdrasil-0.5.sh [DIR]   (default /opt/raptiformica-test/yggdrasil-0.5)
# Prints the path of the 0.5 binary on the last line. Safe to run again: a present, working
# binary is reused.
set -eu

DIR="${1:-/opt/raptiformica-test/yggdrasil-0.5}"
BIN="$DIR/root/usr/sbin/yggdrasil"

is_05() {
  # 0.4 has neither flag; `-version` of Debian's builds may say "unknown", so ask the flags.
  [ -x "$BIN" ] && "$BIN" -h 2>&1 | grep -q -- '-publickey'
}

if is_05; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  flock 9
  if is_05; then
    echo "$BIN"
    exit 0
  fi
fi
sh "$(dirname "$0")/fetch-from-trixie.sh" "$DIR" yggdrasil
if ! is_05; then
  echo "fetch-yggdrasil-0.5: $BIN is not a Yggdrasil 0.5 binary (no -publickey flag)" >&2
  exit 1
fi
echo "$BIN"
