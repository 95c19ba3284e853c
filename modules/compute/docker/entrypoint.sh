#!/bin/sh
# Entrypoint of a docker compute-type instance (run under docker's init, `docker run --init`).
# Installs the instance's SSH host key and the operator's public keys — from the instance dir
# mounted read-only at /run/raptiformica-instance, or RAPTIFORMICA_AUTHORIZED_KEYS — then, on a
# restart of a container that is already a member, starts raptiformica again, and runs sshd in
# the foreground. In an image built with INIT=systemd (RAPTIFORMICA_INIT, set by the
# Dockerfile) and started as PID 1 (no --init), it execs systemd instead, which starts sshd and,
# on a member, the agent's unit (enabled when the agent first started).
set -eu
src=/run/raptiformica-instance
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh

if [ -f "$src/ssh_host_ed25519_key" ]; then
    install -m 600 "$src/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
    install -m 644 "$src/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
elif [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then
    ssh-keygen -q -t ed25519 -N '' -C "$(hostname)" -f /etc/ssh/ssh_host_ed25519_key
fi

keys=$(
    [ -f "$src/authorized_keys" ] && cat "$src/authorized_keys"
    [ -n "${RAPTIFORMICA_AUTHORIZED_KEYS:-}" ] && printf '%s\n' "$RAPTIFORMICA_AUTHORIZED_KEYS"
    true
)
if [ -n "$keys" ]; then
    printf '%s\n' "$keys" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
fi

if [ "${RAPTIFORMICA_INIT:-docker}" = systemd ]; then
    [ "$$" = 1 ] && exec /lib/systemd/systemd
    echo "raptiformica-entrypoint: this image boots systemd, which must be PID 1 (start it without --init); running sshd without it" >&2
fi

# A member that was stopped (docker stop/start, docker restart, the daemon restarting): its
# identity and config survived in the container, so it rejoins on its own.
rf=/usr/etc/raptiformica/bin/raptiformica
if [ -x "$rf" ] && [ -d /root/.raptiformica.d/node ]; then
    mkdir -p /var/log/raptiformica
    HOME=/root setsid "$rf" mesh --no-after-mesh >>/var/log/raptiformica/restart.log 2>&1 </dev/null &
fi

exec /usr/sbin/sshd -D -e
