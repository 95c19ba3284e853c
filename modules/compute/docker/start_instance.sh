#!/bin/sh
# Starts an instance of the docker compute type, in the per-instance dir (cwd):
#   - a container of the packaged image (`raptiformica package --compute-type docker`) when
#     there is one, else of the plain instance image (built on first use; the server type's
#     bootstrap then installs node, yggdrasil and etcd over SSH), see image.sh;
#   - with what Yggdrasil needs (the TUN device and NET_ADMIN, not --privileged) and IPv6 on;
#   - an SSH host key made here (get_host_key prints it, spawn pins it) and the operator's
#     public keys, both mounted read-only from this dir's ssh/ and installed by the entrypoint;
#   - labelled raptiformica.instance=<uuid>, so it can always be found again.
# $RAPTIFORMICA_DOCKER_NETWORK: the docker network to attach it to (default: docker's bridge).
# $RAPTIFORMICA_DOCKER_RUN_ARGS: more `docker run` arguments (split on blanks).
# $RAPTIFORMICA_DOCKER_INIT=systemd: the container boots systemd as PID 1 (image.sh picks the
#   image built for it): no docker init; the cgroup tree, a tmpfs /run and /run/lock, and the
#   stop signal systemd shuts down on.
set -eu
inst=$(pwd)
id=$(basename "$inst")
name="raptiformica-$(printf %s "$id" | cut -c1-12)"
here=$(cd "$(dirname "$0")" && pwd)

image=$(sh "$here/image.sh" instance)

mkdir -p ssh
chmod 700 ssh
rm -f ssh/ssh_host_ed25519_key ssh/ssh_host_ed25519_key.pub
ssh-keygen -q -t ed25519 -N '' -C "$name" -f ssh/ssh_host_ed25519_key

# The operator's keys: its agent's, its usual key files, and raptiformica's own key.
: > ssh/authorized_keys
if [ -n "${SSH_AUTH_SOCK:-}" ]; then ssh-add -L >> ssh/authorized_keys 2>/dev/null || true; fi
for k in "$HOME"/.ssh/id_ed25519.pub "$HOME"/.ssh/id_ecdsa.pub "$HOME"/.ssh/id_rsa.pub "${RAPTIFORMICA_CACHE_DIR:-$HOME/.raptiformica.d}"/ssh/id_ed25519.pub; do
    [ -f "$k" ] && cat "$k" >> ssh/authorized_keys
done
grep -q . ssh/authorized_keys || { echo "docker: no public key to let the operator in (no SSH agent keys, no ~/.ssh/id_*.pub)" >&2; exit 1; }
chmod 600 ssh/authorized_keys

# What systemd as PID 1 needs from docker: its own cgroup subtree, writable (with the host's
# cgroup namespace, docker's default on cgroup v1 hosts), and /run, /run/lock as tmpfs.
if [ "${RAPTIFORMICA_DOCKER_INIT:-docker}" = systemd ]; then
    init_args="--cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 -e container=docker"
else
    init_args="--init"
fi

# shellcheck disable=SC2086 # extra arguments are split on blanks on purpose
docker run -d $init_args \
    --name "$name" --hostname "$name" \
    --label "raptiformica.instance=$id" \
    --cap-add NET_ADMIN --device /dev/net/tun \
    --sysctl net.ipv6.conf.all.disable_ipv6=0 \
    ${RAPTIFORMICA_DOCKER_NETWORK:+--network "$RAPTIFORMICA_DOCKER_NETWORK"} \
    -v "$inst/ssh:/run/raptiformica-instance:ro" \
    ${RAPTIFORMICA_DOCKER_RUN_ARGS:-} \
    "$image" > container_id
echo "$image" > image

# Up when its sshd answers (well under a second after the container starts).
addr=$(sh "$here/get_hostname.sh")
i=0
until ssh-keyscan -T 1 -t ed25519 "$addr" 2>/dev/null | grep -q ssh-ed25519; do
    state=$(docker inspect -f '{{.State.Status}}' "$(cat container_id)" 2>/dev/null || echo gone)
    i=$((i + 1))
    if [ "$state" != running ] || [ "$i" -ge 150 ]; then
        docker logs --tail 20 "$(cat container_id)" >&2 || true
        [ "$state" = running ] && state="running, but its sshd did not answer within 30 s"
        echo "docker: container $name at $addr is $state" >&2
        exit 1
    fi
    sleep 0.2
done
echo "started $name ($image) at $addr"
