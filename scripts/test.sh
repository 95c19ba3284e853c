#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what the tests need (as root),
# then lint, type-check, build and every test. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v git >/dev/null || need_pkgs+=(git)
command -v node >/dev/null || need_pkgs+=(nodejs npm)
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "scripts/test.sh: missing ${need_pkgs[*]}; run as root (or install them) and try again." >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need_pkgs[@]}"
fi

npm ci --no-audit --no-fund
npm run lint
npm run typecheck
npm test
