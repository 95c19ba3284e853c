#!/bin/sh
# Starts the instance's sshd in its network namespace, inside its own mount and UTS namespaces
# (its /root, /usr/etc/raptiformica and hostname), and waits for its pidfile.
# Usage: run_sshd.sh INSTANCE_DIR NAMESPACE — used by start_instance.sh and by the tests that
# move an instance onto another link (test/helpers/machines.ts).
set -eu
inst=$1
ns=$2
rm -f "$inst/sshd.pid"
ip netns exec "$ns" unshare --mount --uts --propagation private sh -c '
    set -e
    inst=$1
    hostname "$2"
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/instance /run/sshd
    mount --bind "$inst" /run/instance
    # From here on through /run/instance: the instance dir may itself be under /root.
    mount --bind /run/instance/usr-etc /usr/etc/raptiformica
    mount --bind /run/instance/root /root
    exec /usr/sbin/sshd -f /run/instance/sshd_config -E /run/instance/sshd.log
' sh "$inst" "$ns"

i=0
while [ ! -s "$inst/sshd.pid" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$inst/sshd.pid" ] || { echo "netns: sshd did not start in $ns; see $inst/sshd.log" >&2; exit 1; }
