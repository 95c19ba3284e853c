#!/bin/sh
# Starts a lightweight local machine for the netns compute type, in the per-instance dir (cwd):
#   - its own network namespace, wired to the bridge rfns0 (198.18.250.1/24 on this host; the
#     range RFC 2544 reserves for benchmarking, never routed) with the lowest free address;
#   - its own mount and UTS namespaces, where this dir's root/ is /root, usr-etc/ is
#     /usr/etc/raptiformica and a fresh tmpfs is /run: its own home, cache dir and install;
#   - its own sshd on port 22 (every address of its namespace, the mesh address included) with
#     a host key made here (spawn pins it) and the operator's public keys as root's authorized
#     keys, accepted even where root's password is locked (see run_sshd.sh).
# Everything else (/usr, /etc) is this host's, so what the host has installed, the instance has.
set -eu
inst=$(pwd)
id=$(basename "$inst")
short=$(printf %s "$id" | cut -c1-8)
ns="rfn-$short"
bridge=rfns0

lock=/run/raptiformica-netns.lock
exec 9>"$lock"
flock -w 60 9

if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add 198.18.250.1/24 dev "$bridge"
    ip link set "$bridge" up
fi
# Where docker runs, bridged traffic goes through iptables' FORWARD chain with a DROP policy:
# let the instances talk to each other (this bridge only; removed with the bridge).
for t in iptables ip6tables; do
    if command -v "$t" >/dev/null 2>&1 && ! "$t" -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; then
        "$t" -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
    fi
done

used=" "
for other in $(ip netns list | awk '/^rfn-/ {print $1}'); do
    a=$(ip -n "$other" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | cut -d. -f4)
    used="$used$a "
done
n=2
while [ "$n" -le 254 ]; do
    case "$used" in *" $n "*) n=$((n + 1)) ;; *) break ;; esac
done
[ "$n" -le 254 ] || { echo "netns: all 253 instance addresses on $bridge are in use; prune or destroy some" >&2; exit 1; }
address="198.18.250.$n"

ip netns add "$ns"
ip link add "rfv$short" type veth peer name eth0 netns "$ns"
ip link set "rfv$short" master "$bridge" up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$address/24" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via 198.18.250.1
# An instance that had this address before may linger in this host's ARP cache.
ip neigh flush to "$address" dev "$bridge" 2>/dev/null || true
printf %s "$ns" > netns
# The namespace's own inode: clean_up_instance.sh finds the instance's processes by it, also where
# /run/netns/$ns is not mounted in its mount namespace (a spawn run under `unshare --mount`
# leaves the host only an empty file there, and `ip netns pids` then lists nothing).
stat -L -c %i "/run/netns/$ns" > netns-inode
printf %s "$address" > address
flock -u 9

mkdir -p root usr-etc
chmod 700 root
# `raptiformica` as a command in the instance: /usr/local/bin is the host's, so no launcher goes
# there (slave sees the install already on PATH and leaves it alone); the instance's own login
# environment puts its own install first on PATH instead. .profile for login shells, .bashrc
# for bash's others (bash also reads it for commands run over SSH).
for f in .profile .bashrc; do
    [ -e "root/$f" ] || cat > "root/$f" <<'RC'
# This netns instance shares /usr with its host: its own raptiformica (in /usr/etc/raptiformica,
# the instance's own) comes first on PATH. Written by the netns compute type.
case ":$PATH:" in *:/usr/etc/raptiformica/bin:*) ;; *) PATH=/usr/etc/raptiformica/bin:$PATH; export PATH ;; esac
RC
done
rm -f ssh_host_ed25519_key ssh_host_ed25519_key.pub
ssh-keygen -q -t ed25519 -N '' -C "$ns" -f ssh_host_ed25519_key

# The operator's keys: its agent's, its usual key files, and raptiformica's own key.
: > authorized_keys
if [ -n "${SSH_AUTH_SOCK:-}" ]; then ssh-add -L >> authorized_keys 2>/dev/null || true; fi
for k in "$HOME"/.ssh/id_ed25519.pub "$HOME"/.ssh/id_ecdsa.pub "$HOME"/.ssh/id_rsa.pub "${RAPTIFORMICA_CACHE_DIR:-$HOME/.raptiformica.d}"/ssh/id_ed25519.pub; do
    [ -f "$k" ] && cat "$k" >> authorized_keys
done
grep -q . authorized_keys || { echo "netns: no public key to let the operator in (no SSH agent keys, no ~/.ssh/id_*.pub)" >&2; exit 1; }
chmod 600 authorized_keys

# Every address of the instance's own namespace (it has no other): its bridge address, 127.0.0.1
# and, once the mesh is up, its mesh address, so members reach each other's sshd over the mesh.
cat > sshd_config <<CONF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey /run/instance/ssh_host_ed25519_key
AuthorizedKeysFile /run/instance/authorized_keys .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/instance/sshd.pid
StrictModes no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
# /usr and /etc are this host's: the server type's bootstrap must not upgrade the host's packages.
SetEnv RAPTIFORMICA_PACKAGES=keep
CONF

mkdir -p /usr/etc/raptiformica
sh "$(dirname "$0")/run_sshd.sh" "$inst" "$ns"
echo "started $ns at $address"
