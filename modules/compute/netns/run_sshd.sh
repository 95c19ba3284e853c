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
    # sshd without PAM refuses a locked account before it looks at keys ("!" in the password
    # field: hosts installed with a sudo user, `passwd -l root`), and logins here are by key
    # only (PasswordAuthentication no). So the instance sees its own copy of /etc/shadow where
    # root is not locked (no password, "*"), or gets a root line if there is none; the
    # host'"'"'s file is never written.
    if [ -r /etc/shadow ]; then
        awk -F: -v OFS=: '"'"'$1 == "root" { seen = 1; if ($2 ~ /^!/ || $2 ~ /LOCKED/ || $2 == "*LK*") $2 = "*" } { print } END { if (!seen) print "root:*:19000:0:99999:7:::" }'"'"' /etc/shadow > /run/shadow
        chmod --reference=/etc/shadow /run/shadow
        chown --reference=/etc/shadow /run/shadow
        mount --bind /run/shadow /etc/shadow
    fi
    # Its own /etc/hosts too (a copy of the host'"'"'s): the agent keeps the member names in it.
    cp /etc/hosts /run/hosts
    mount --bind /run/hosts /etc/hosts
    exec /usr/sbin/sshd -f /run/instance/sshd_config -E /run/instance/sshd.log
' sh "$inst" "$ns"

i=0
while [ ! -s "$inst/sshd.pid" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$inst/sshd.pid" ] || { echo "netns: sshd did not start in $ns; see $inst/sshd.log" >&2; exit 1; }
