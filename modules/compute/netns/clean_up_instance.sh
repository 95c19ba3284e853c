#!/bin/sh
# Stops every process of the instance and removes its namespace; the bridge goes with the last one.
[ -f netns ] || exit 0
ns=$(cat netns)
if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    for sig in TERM KILL; do
        pids=$(ip netns pids "$ns")
        [ -n "$pids" ] || break
        kill -s "$sig" $pids 2>/dev/null || true
        i=0
        while [ -n "$(ip netns pids "$ns")" ] && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    done
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
