#!/bin/sh
# Builds a box with node, yggdrasil and etcd installed (the headless bootstrap), so spawns skip
# the installs: boots a VM, runs the bootstrap in it, and packages it as raptiformica-headless.
set -eu
out="${RAPTIFORMICA_CACHE_DIR:-$HOME/.raptiformica.d}/var/packaged/vagrant"
work="$out/build"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$RAPTIFORMICA_HOME/modules/compute/vagrant/Vagrantfile" .
: > authorized_keys
vagrant up
vagrant ssh -c 'sudo sh -s' < "$RAPTIFORMICA_HOME/modules/server/headless/bootstrap.sh"
vagrant ssh -c 'sudo rm -f /etc/yggdrasil.conf /root/.ssh/authorized_keys'
vagrant package --output "$out/raptiformica.box.new"
mv "$out/raptiformica.box.new" "$out/raptiformica.box"
vagrant box add --force raptiformica-headless "$out/raptiformica.box"
vagrant destroy -f
cd /
rm -rf "$work"
echo "packaged: box raptiformica-headless ($out/raptiformica.box)"
