#!/bin/sh
# Exit 0 while the instance lives (its namespace exists and its sshd runs), non-zero when stale.
[ -f netns ] && [ -s sshd.pid ] || exit 1
ip netns list | awk '{print $1}' | grep -qx "$(cat netns)" || exit 1
# A killed sshd can linger as a zombie until it is reaped: that is not alive.
state=$(awk '/^State:/ {print $2}' "/proc/$(cat sshd.pid)/status" 2>/dev/null)
[ -n "$state" ] && [ "$state" != Z ]
