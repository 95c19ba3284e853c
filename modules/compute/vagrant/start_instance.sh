#!/bin/sh
# Starts a VM for the vagrant compute type in the per-instance dir (cwd).
set -eu
cp "$RAPTIFORMICA_HOME/modules/compute/vagrant/Vagrantfile" .
: > authorized_keys
if [ -n "${SSH_AUTH_SOCK:-}" ]; then ssh-add -L >> authorized_keys 2>/dev/null || true; fi
for k in "$HOME"/.ssh/id_ed25519.pub "$HOME"/.ssh/id_ecdsa.pub "$HOME"/.ssh/id_rsa.pub "${RAPTIFORMICA_CACHE_DIR:-$HOME/.raptiformica.d}"/ssh/id_ed25519.pub; do
    [ -f "$k" ] && cat "$k" >> authorized_keys
done
grep -q . authorized_keys || { echo "vagrant: no public key to let the operator in" >&2; exit 1; }
if [ -f "${RAPTIFORMICA_CACHE_DIR:-$HOME/.raptiformica.d}/var/packaged/vagrant/raptiformica.box" ] && [ -z "${RAPTIFORMICA_VAGRANT_BOX:-}" ]; then
    export RAPTIFORMICA_VAGRANT_BOX=raptiformica-headless
fi
vagrant up
