#!/bin/sh
# Exit 0 while the instance lives (its namespace exists and its sshd runs), non-zero when stale.
[ -f netns ] && [ -s sshd.pid ] || exit 1
ip netns list | awk '{print $1}' | grep -qx "$(cat netns)" || exit 1
kill -0 "$(cat sshd.pid)" 2>/dev/null
