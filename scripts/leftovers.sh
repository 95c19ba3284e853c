#!/bin/sh
# Lists the member processes (agent, agent keeper, yggdrasil, etcd) that outlived the test suite
# in a network namespace other than this host's: each is a machine a test made and did not
# destroy whole. Prints them and stops them, so one leak does not slow the rest of a machine's
# day; exits 0 either way (the tests themselves check destroy, e.g. netns-locked-root).
# This shell runs in the host's namespace (where test.sh runs); /proc/1 may not be readable.
host=$(readlink /proc/$$/ns/net)
[ -n "$host" ] || { echo "leftovers: cannot read this shell's network namespace; not checked"; exit 0; }
found=0
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    net=$(readlink "$p/ns/net" 2>/dev/null) || continue
    [ "$net" = "$host" ] && continue
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null | cut -c1-160)
    case "$cmd" in
        *"raptiformica.mjs agent"*|*raptiformica-agent-keeper*|yggdrasil\ *|*/yggdrasil\ *|etcd\ *|*/etcd\ *)
            [ "$found" = 0 ] && echo "leftovers: member processes still running after the suite (network namespace, pid, command):"
            found=1
            echo "  $net $pid $cmd"
            kill -9 "$pid" 2>/dev/null || true
            ;;
    esac
done
[ "$found" = 0 ] && echo "leftovers: none (no agent, keeper, yggdrasil or etcd outlived the suite outside this host's network namespace)"
exit 0
