#!/bin/sh
# The VM's ed25519 host key, read over vagrant's own channel (so spawn can pin it).
vagrant ssh -c 'cat /etc/ssh/ssh_host_ed25519_key.pub' 2>/dev/null | tr -d '\r' | grep '^ssh-ed25519 '
