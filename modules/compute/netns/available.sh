#!/bin/sh
# netns instances need root, iproute2, util-linux's unshare/flock and OpenSSH's sshd.
[ "$(id -u)" = 0 ] || exit 1
for c in ip unshare flock ssh-keygen; do command -v "$c" >/dev/null 2>&1 || exit 1; done
test -x /usr/sbin/sshd
