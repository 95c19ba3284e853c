#!/usr/bin/env bash
# Quick start: on a fresh Debian 12 machine (as root), installs what raptiformica needs, builds
# it, brings up a 3-node cluster on this machine and prints `members`.
#   bash scripts/demo.sh            # netns instances: namespaces with their own sshd (default)
#   bash scripts/demo.sh --docker   # docker containers instead
# Tear it down with: bin/raptiformica destroy
set -euo pipefail
cd "$(dirname "$0")/.."

compute=netns
nodes=3
for arg in "$@"; do
    case "$arg" in
        --docker) compute=docker ;;
        --nodes=*) nodes=${arg#--nodes=} ;;
        *) echo "usage: bash scripts/demo.sh [--docker] [--nodes=N]" >&2; exit 2 ;;
    esac
done
if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/demo.sh: run as root: it installs packages and creates network namespaces." >&2
    exit 1
fi

need=()
command -v node >/dev/null || need+=(nodejs npm)
command -v npm >/dev/null || need+=(npm)
command -v git >/dev/null || need+=(git)
command -v yggdrasil >/dev/null || need+=(yggdrasil)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v ssh >/dev/null || need+=(openssh-client)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v rsync >/dev/null || need+=(rsync)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v unshare >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need[@]}"
    # Debian starts the packaged services; raptiformica runs its own, per node.
    if [[ -d /run/systemd/system ]]; then systemctl disable --now yggdrasil etcd ssh 2>/dev/null || true; fi
fi
if [[ $compute == docker ]]; then bash scripts/setup-docker.sh; fi

[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm run build >/dev/null

rf=bin/raptiformica
if [[ $compute == docker ]]; then
    echo "building the docker image (once; a few minutes the first time)"
    "$rf" package --compute-type docker
fi
for i in $(seq 1 "$nodes"); do
    echo "spawning node $i of $nodes ($compute)"
    "$rf" spawn --compute-type "$compute" >/dev/null
done
echo
"$rf" members
echo
echo "Try: $rf config set hello/world 1 && $rf config get hello/world; $rf ssh --info-only"
echo "Tear it down: $rf destroy"
