#!/bin/sh
# Provisioner of the stock `headless` server type: installs what a member runs — node 18+,
# Yggdrasil 0.5 and etcd 3.5 (server and client) — with the host's package manager. Runs as root
# on the node with the install dir as cwd. Idempotent: when everything is there in the wanted
# version it changes nothing (and needs no network).
#
# Versions (README "Distributions" has the table):
#   - Yggdrasil 0.5 everywhere. On Debian 12 (bookworm, whose own package is 0.4, which cannot
#     peer with 0.5) it comes from bookworm-backports, enabled for that one package by an apt pin.
#   - etcd 3.5.13 or newer (its grpc-proxy keeps its upstream connection alive, so a member's
#     local endpoint notices a dead voter within seconds). On Debian 12 (3.4) etcd-server and
#     etcd-client come from trixie (3.5.16; they need only libc6 >= 2.34 and
#     init-system-helpers, which bookworm has), enabled for those two packages by an apt pin.
#   Both pins are files named raptiformica-* (/etc/apt/sources.list.d, /etc/apt/preferences.d):
#   every other package of bookworm-backports and trixie is pinned to -1, so nothing else on the
#   host is ever installed or upgraded from there.
#
# Environment:
#   RAPTIFORMICA_YGGDRASIL_MAJOR  0.5 (default) or 0.4: the major the cluster this host joins
#       runs (`slave` sets it from the members' neighbour entries). 0.4 keeps a member of a 0.4
#       cluster on 0.4 (Debian 12's own package) instead of upgrading it out of its mesh.
#   RAPTIFORMICA_PACKAGES=keep  install only what is missing, never upgrade what is installed
#       (machines that share their host's /usr and /etc, like the netns compute type's
#       instances, set it: the host's own versions are used as they are).
#   RAPTIFORMICA_DEBIAN_MIRROR  the Debian mirror for the pinned suites (default: the one the
#       host already uses for bookworm, else http://deb.debian.org/debian).
#   RAPTIFORMICA_OS_RELEASE  the os-release file that says which distribution this is (default
#       /etc/os-release, else /usr/lib/os-release, as os-release(5) says).
#   RAPTIFORMICA_BOOTSTRAP_PLAN=1  print the steps it would run, one per line, and exit 0
#       without running them (and without needing the package manager): the package-manager
#       commands as they run, and `pin NAME SUITE PACKAGE...` / `unpin NAME` for the apt pins.
#       Nothing is printed when nothing is missing. test/unit/bootstrap.test.ts checks the plan
#       for each distribution's os-release.
#
# The distribution is chosen by os-release's ID, then each word of ID_LIKE (so derivatives
# install like their parent), never by which package manager happens to be on PATH; Debian's
# VERSION_CODENAME decides the pins. All package-manager commands are in plan() below.
# Exit 3 with one paragraph naming the host and what to do when it cannot reach that state.
set -eu

ETCD_MIN=3.5.13
host=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null || echo "this host")
want_ygg=${RAPTIFORMICA_YGGDRASIL_MAJOR:-0.5}
mode=${RAPTIFORMICA_PACKAGES:-upgrade}

have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "raptiformica: $*" >&2; }
die() {
    echo "raptiformica: $*" >&2
    exit 3
}

case "$want_ygg" in 0.4 | 0.5) ;; *) die "RAPTIFORMICA_YGGDRASIL_MAJOR=$want_ygg on $host: give 0.4 or 0.5 (the Yggdrasil major the cluster runs), or leave it unset for 0.5." ;; esac
case "$mode" in keep | upgrade) ;; *) die "RAPTIFORMICA_PACKAGES=$mode on $host: give keep (install only what is missing) or leave it unset." ;; esac

# The installed Yggdrasil's major, empty when there is none. The rule of
# src/mesh/yggdrasil/version.ts: 0.5 added -publickey and -exportkey (Debian's 0.4 build does not
# know its own version number, so -version cannot decide).
ygg_major() {
    have yggdrasil || return 0
    usage=$(yggdrasil -h 2>&1 || true)
    case "$usage" in
    *-publickey*-exportkey* | *-exportkey*-publickey*) echo 0.5 ;;
    *) echo 0.4 ;;
    esac
}

# The installed etcd's version (e.g. 3.5.16), empty when there is none or it does not say.
etcd_version() {
    have etcd || return 0
    etcd --version 2>/dev/null | sed -n 's/^etcd Version: *v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# version_ge A B: A >= B, for dotted numbers (no sort -V: busybox has none).
version_ge() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, "."); m = split(b, y, "."); if (m > n) n = m
        for (i = 1; i <= n; i++) { if (x[i] + 0 > y[i] + 0) exit 0; if (x[i] + 0 < y[i] + 0) exit 1 }
        exit 0 }'
}

etcd_ok() {
    v=$(etcd_version)
    [ -n "$v" ] && version_ge "$v" "$ETCD_MIN"
}

# What is missing or, unless mode=keep, older than wanted.
need_node="" need_ygg="" need_etcd=""
have node || need_node=1
have_major=$(ygg_major)
if [ -z "$have_major" ]; then
    need_ygg=1
elif [ "$have_major" != "$want_ygg" ] && [ "$mode" = upgrade ]; then
    [ "$want_ygg" = 0.5 ] ||
        die "the cluster $host joins runs Yggdrasil 0.4, but $host has Yggdrasil 0.5 installed; the two cannot peer. Move the cluster to 0.5 with \`raptiformica migrate-mesh\` (README, \"Distributions\"), or install Yggdrasil 0.4 on $host and run slave again."
    need_ygg=1
fi
if ! have etcd || ! have etcdctl; then
    need_etcd=1
elif [ "$mode" = upgrade ] && ! etcd_ok; then
    need_etcd=1
fi
[ -z "$need_node$need_ygg$need_etcd" ] && exit 0

missing=""
[ -n "$need_node" ] && missing="$missing node"
[ -n "$need_ygg" ] && missing="$missing yggdrasil-$want_ygg"
[ -n "$need_etcd" ] && missing="$missing etcd-$ETCD_MIN+"

# put FILE CONTENT: writes FILE (0644) only when its content differs, atomically.
put() {
    if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 0; fi
    printf '%s\n' "$2" > "$1.raptiformica-new"
    chmod 644 "$1.raptiformica-new"
    mv -f "$1.raptiformica-new" "$1"
}

# The mirror this host uses for bookworm, for the pinned suites beside it.
debian_mirror() {
    if [ -n "${RAPTIFORMICA_DEBIAN_MIRROR:-}" ]; then
        echo "$RAPTIFORMICA_DEBIAN_MIRROR"
        return
    fi
    m=$(apt-get indextargets --no-release-info --format '$(RELEASE) $(REPO_URI) $(TARGET_OF)' 2>/dev/null |
        awk '$1 == "bookworm" && $3 == "deb" && $2 ~ /^https?:\/\// { print $2; exit }')
    echo "${m:-http://deb.debian.org/debian}"
}

# pin NAME SUITE PACKAGE...: enables SUITE of the Debian archive for those packages only.
pin() {
    name=$1 suite=$2
    shift 2
    set -- "$name" "$suite" "$*"
    put "/etc/apt/sources.list.d/raptiformica-$1.sources" "# raptiformica (server type headless): $3 from $2 only; see /etc/apt/preferences.d/raptiformica-$1
Types: deb
URIs: $(debian_mirror)
Suites: $2
Components: main"
    # A specific pin wins over the general one: $3 at 990 (above the release's 500, so they
    # are installed and upgraded from $2), everything else of $2 at -1 (never installed).
    put "/etc/apt/preferences.d/raptiformica-$1" "# raptiformica (server type headless): only $3 from $2
Package: *
Pin: release n=$2
Pin-Priority: -1

Package: $3
Pin: release n=$2
Pin-Priority: 990"
}

unpin() {
    rm -f "/etc/apt/sources.list.d/raptiformica-$1.sources" "/etc/apt/preferences.d/raptiformica-$1"
}

# The os-release file: ID, ID_LIKE, VERSION_CODENAME and PRETTY_NAME, read in a subshell.
osfile=${RAPTIFORMICA_OS_RELEASE:-}
if [ -z "$osfile" ]; then
    osfile=/etc/os-release
    [ -r "$osfile" ] || osfile=/usr/lib/os-release
fi
[ -r "$osfile" ] ||
    die "cannot tell which distribution $host runs: $osfile is missing or unreadable. Install$missing by hand there (README, \"Distributions\"), or give the os-release file in RAPTIFORMICA_OS_RELEASE, and run slave again."
# shellcheck disable=SC1090
os=$(
    set +eu
    . "$osfile" >/dev/null 2>&1
    printf '%s\n%s\n%s\n%s\n' "$ID" "$ID_LIKE" "$VERSION_CODENAME" "${PRETTY_NAME:-$NAME}"
)
id=$(printf '%s\n' "$os" | sed -n 1p)
id_like=$(printf '%s\n' "$os" | sed -n 2p)
codename=$(printf '%s\n' "$os" | sed -n 3p)
pretty=$(printf '%s\n' "$os" | sed -n 4p)

# The package manager of the distribution: ID first, then each word of ID_LIKE.
pm=""
for d in $id $id_like; do
    case "$d" in
    debian | ubuntu) pm=apt-get ;;
    arch) pm=pacman ;;
    fedora) pm=dnf ;;
    alpine) pm=apk ;;
    *) continue ;;
    esac
    break
done
[ -n "$pm" ] ||
    die "cannot install on $host: its os-release ($osfile) says ${pretty:-no name} (ID=${id:-none}, ID_LIKE=${id_like:-none}), a distribution the headless bootstrap does not know; it installs with apt-get on Debian and Ubuntu, pacman on Arch, dnf on Fedora and apk on Alpine, and on their derivatives (by ID_LIKE). Install$missing by hand there (README, \"Distributions\") and run slave again."

# The steps, one per line: every package-manager command this bootstrap runs is here.
plan() {
    case "$pm" in
    apt-get)
        pkgs=""
        [ -z "$need_node" ] || pkgs="$pkgs nodejs"
        [ -z "$need_ygg" ] || pkgs="$pkgs yggdrasil"
        [ -z "$need_etcd" ] || pkgs="$pkgs etcd-server etcd-client"
        # Debian 12's own Yggdrasil is 0.4 and its etcd 3.4: the pins (see the top).
        if [ "$id" = debian ] && [ "$codename" = bookworm ]; then
            if [ -n "$need_ygg" ]; then
                if [ "$want_ygg" = 0.5 ]; then echo "pin yggdrasil bookworm-backports yggdrasil"; else echo "unpin yggdrasil"; fi
            fi
            [ -z "$need_etcd" ] || echo "pin etcd trixie etcd-server etcd-client"
        fi
        echo "apt-get update -q"
        echo "apt-get install -y -q$pkgs"
        ;;
    pacman) echo "pacman -Sy --noconfirm --needed nodejs yggdrasil etcd" ;;
    dnf) echo "dnf install -y nodejs yggdrasil etcd" ;;
    apk) echo "apk add --no-cache nodejs yggdrasil etcd etcd-ctl" ;;
    esac
}

steps=$(plan)
if [ "${RAPTIFORMICA_BOOTSTRAP_PLAN:-}" = 1 ]; then
    printf '%s\n' "$steps"
    exit 0
fi
have "$pm" ||
    die "cannot install on $host: it runs ${pretty:-$id} (os-release: $osfile), which installs with $pm, but $pm is not on its PATH. Install$missing by hand there (README, \"Distributions\") and run slave again."
[ "$pm" != apt-get ] || export DEBIAN_FRONTEND=noninteractive
# Each step's words are plain (package names, suites, options): split on blanks, no globbing.
set -f
while IFS= read -r step; do
    # shellcheck disable=SC2086
    set -- $step
    "$@" </dev/null >&2 || die "\`$step\` failed on $host (output above); fix what it says there (network, mirror, package sources), then run slave again."
done <<STEPS
$steps
STEPS
set +f

# What the package manager gave must be what the cluster needs.
have node || die "node is still missing on $host after the install; install Node.js 18 or newer there and run slave again."
have etcd && have etcdctl || die "etcd or etcdctl is still missing on $host after the install; install etcd 3.5 (server and client) there and run slave again."
got=$(ygg_major)
if [ -z "$got" ] || { [ "$got" != "$want_ygg" ] && [ "$mode" = upgrade ]; }; then
    die "$host has Yggdrasil ${got:-(none)} after the install, but the cluster needs $want_ygg; install Yggdrasil $want_ygg there (README, \"Distributions\") and run slave again."
fi
if [ "$mode" = upgrade ] && ! etcd_ok; then
    # Not fatal: such a member works, its local endpoint only notices a dead voter later.
    say "warning: $host has etcd $(etcd_version) from its distribution, older than $ETCD_MIN: its local grpc-proxy does not keep its upstream alive, so it notices a dead voter only after minutes. Install etcd $ETCD_MIN or newer there when you can."
fi

# Distribution packages may start their own yggdrasil and etcd (Debian does, on 127.0.0.1:2379):
# raptiformica runs both itself, per node, so the packaged services are stopped and disabled.
# Disabled also where systemd is installed but not running (an image build, a chroot), so a
# later boot under systemd does not start them either.
if have systemctl; then
    if [ -d /run/systemd/system ]; then
        systemctl disable --now yggdrasil.service etcd.service >/dev/null 2>&1 || true
    else
        systemctl disable yggdrasil.service etcd.service >/dev/null 2>&1 || true
    fi
fi
