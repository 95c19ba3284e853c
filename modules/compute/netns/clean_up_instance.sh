#!/bin/sh
# Stops every process of the instance and removes its namespace; the bridge goes with the last one.
#
# The processes are found by their network namespace's inode (netns-inode, written by
# start_instance.sh), read from /proc/PID/ns/net, not by `ip netns pids`: that needs
# /run/netns/$ns mounted where this runs, and an instance started from another mount namespace
# (`unshare --mount`) leaves only an empty file here; its agent, keeper and yggdrasil would live
# on after destroy. Namespace inodes are reused (the lowest free number, for any kind of
# namespace), so an inode alone is trusted only while /run/netns/$ns holds that namespace here;
# otherwise a process must also carry the instance's hostname (run_sshd.sh gives everything
# under its sshd its own UTS namespace named $ns).
[ -f netns ] || exit 0
ns=$(cat netns)
ino=$(cat netns-inode 2>/dev/null || true)
held_here=false
if [ -n "$ino" ] && [ "$(findmnt -n -o FSTYPE --mountpoint "/run/netns/$ns" 2>/dev/null)" = nsfs ] &&
    [ "$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)" = "$ino" ]; then
    held_here=true
fi

# PIDs of the processes in the instance's namespace, space-separated, empty when none.
pids_in_instance() {
    if [ -n "$ino" ]; then
        # One `ls` for every process (not a readlink each): the wait below scans up to 30 times a round.
        for pid in $(ls -l /proc/[0-9]*/ns/net 2>/dev/null | awk -v t="net:[$ino]" '$NF == t { split($(NF - 2), p, "/"); print p[3] }'); do
            $held_here || [ "$(nsenter --target "$pid" --uts hostname 2>/dev/null)" = "$ns" ] || continue
            printf '%s ' "$pid"
        done
    elif ip netns list | awk '{print $1}' | grep -qx "$ns"; then
        # An instance started before netns-inode was written.
        ip netns pids "$ns" 2>/dev/null | tr '\n' ' '
    fi
}

for sig in TERM KILL KILL; do
    pids=$(pids_in_instance)
    [ -n "$pids" ] || break
    kill -s "$sig" $pids 2>/dev/null || true
    i=0
    while [ -n "$(pids_in_instance)" ] && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
done
veth="rfv${ns#rfn-}"
ip link del "$veth" 2>/dev/null || true
if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    ip netns del "$ns" || true
fi
exec 9>/run/raptiformica-netns.lock
flock -w 60 9
if ! ip netns list | grep -q '^rfn-'; then
    ip link del rfns0 2>/dev/null || true
    for t in iptables ip6tables; do
        command -v "$t" >/dev/null 2>&1 && "$t" -D FORWARD -i rfns0 -o rfns0 -j ACCEPT 2>/dev/null || true
    done
fi
exit 0
