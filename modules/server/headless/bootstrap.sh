#!/bin/sh
# Provisioner of the stock `headless` server type: installs what a member runs (node 18+,
# yggdrasil, etcd server and client) with the host's package manager. Runs as root on the node
# with the install dir as cwd. Idempotent: installs only what is missing.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

missing=""
have node || missing="$missing node"
have yggdrasil || missing="$missing yggdrasil"
have etcd || missing="$missing etcd"
have etcdctl || missing="$missing etcdctl"
[ -z "$missing" ] && exit 0

if have apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q nodejs yggdrasil etcd-server etcd-client
elif have pacman; then
    pacman -Sy --noconfirm --needed nodejs yggdrasil etcd
elif have dnf; then
    dnf install -y nodejs yggdrasil etcd
elif have apk; then
    apk add --no-cache nodejs yggdrasil etcd etcd-ctl
else
    echo "raptiformica: no supported package manager (apt-get, pacman, dnf, apk) on $(hostname); install$missing by hand and run slave again." >&2
    exit 3
fi

# Distribution packages may start their own yggdrasil and etcd (Debian does, on 127.0.0.1:2379):
# raptiformica runs both itself, per node, so the packaged services are stopped and disabled.
if [ -d /run/systemd/system ] && have systemctl; then
    systemctl disable --now yggdrasil.service etcd.service >/dev/null 2>&1 || true
fi
