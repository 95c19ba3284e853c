#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what the tests need (as root),
# then lint, type-check, build and every test. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests start for real: yggdrasil, etcd (server and etcdctl), sshd, network
# namespaces (iproute2), ping, ss; git for modules.
need_pkgs=()
command -v git >/dev/null || need_pkgs+=(git)
command -v node >/dev/null || need_pkgs+=(nodejs npm)
command -v yggdrasil >/dev/null || need_pkgs+=(yggdrasil)
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v etcdctl >/dev/null || need_pkgs+=(etcd-client)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v ping >/dev/null || need_pkgs+=(iputils-ping)
command -v ss >/dev/null || need_pkgs+=(iproute2)
command -v dpkg-deb >/dev/null || need_pkgs+=(dpkg)
command -v ssh >/dev/null || need_pkgs+=(openssh-client)
[[ -x /usr/sbin/sshd ]] || need_pkgs+=(openssh-server)
command -v rsync >/dev/null || need_pkgs+=(rsync)
# The mesh map's page tests and bench/map-render.ts drive Debian's chromium (playwright-core).
command -v chromium >/dev/null || need_pkgs+=(chromium)
# Not for the tests: bench/mesh-throughput.ts measures with iperf3.
command -v iperf3 >/dev/null || need_pkgs+=(iperf3)
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "scripts/test.sh: missing ${need_pkgs[*]}; run as root (or install them) and try again." >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need_pkgs[@]}"
fi

# Yggdrasil 0.5 and etcd 3.5 (Debian 13's packages) beside the system's 0.4 and 3.4, for the tests
# of both majors and of clusters mixing etcd versions.
if [[ $(id -u) -eq 0 ]]; then
    bash scripts/fetch-yggdrasil-0.5.sh >/dev/null || echo "scripts/test.sh: could not fetch yggdrasil 0.5; its tests will be skipped" >&2
    bash scripts/fetch-etcd-3.5.sh >/dev/null || echo "scripts/test.sh: could not fetch etcd 3.5; the mixed-version tests will be skipped" >&2
fi

bash scripts/setup-docker.sh
npm ci --no-audit --no-fund
npm run lint
npm run typecheck
status=0
npm test || status=$?
sh scripts/leftovers.sh
exit "$status"
