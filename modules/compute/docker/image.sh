#!/bin/sh
# Images of the docker compute type.
#
#   image.sh instance   prints the image a new instance runs: the packaged image when there is
#                       one, else the plain instance image (built first if missing)
#   image.sh package    (re)builds the packaged image: everything the server type installs, done
#   image.sh base       makes sure the base image exists
#
# The Debian release of instances: $RAPTIFORMICA_DOCKER_RELEASE, bookworm (default) or trixie
# (any Debian codename debootstrap knows works the same way). Every image below exists once per
# release, tagged with it, so instances of several releases run side by side.
#
# Images, from the bottom:
#   base       $RAPTIFORMICA_DOCKER_BASE_IMAGE (default debian:<release>-slim). Used when present,
#              else pulled; when it cannot be pulled (no registry reachable) an equivalent is
#              made with debootstrap from $RAPTIFORMICA_DOCKER_MIRROR (default deb.debian.org)
#              and kept under that same tag, so later builds skip this.
#   instance   raptiformica-docker:sshd-<release> — base + sshd, rsync, iproute2, ping, the
#              entrypoint
#   packaged   raptiformica-docker:<server type>-<release> — instance + node, yggdrasil, etcd
#              (the server type's bootstrap.sh run at build time)
# $RAPTIFORMICA_DOCKER_INIT=systemd: images whose instances boot systemd as PID 1 (the agent then
# runs as a systemd unit), tagged <release>-systemd; default docker (docker's init, sshd).
# $RAPTIFORMICA_YGGDRASIL_MAJOR=0.4: a packaged image for a cluster that still runs Yggdrasil 0.4
# (the bootstrap then installs Debian 12's own 0.4), tagged <release>-yggdrasil0.4; instances
# spawned with it set run that image. Unset or 0.5: the default images.
# $RAPTIFORMICA_DOCKER_IMAGE, when set, is the image instances run, as is.
# $RAPTIFORMICA_DOCKER_NO_CACHE=1: `package` rebuilds every layer (fresh packages from the mirror)
# instead of reusing docker's build cache.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
home=${RAPTIFORMICA_HOME:-$(cd "$here/../../.." && pwd)}
server=${RAPTIFORMICA_SERVER_TYPE:-headless}
mirror=${RAPTIFORMICA_DOCKER_MIRROR:-http://deb.debian.org/debian}

say() { echo "docker: $*" >&2; }
die() { echo "docker: $*" >&2; exit 1; }

# The suite of a debian:<suite>[-variant] image name, empty for any other image.
suite_of() { printf %s "$1" | sed -n 's/^\(.*\/\)\{0,1\}debian:\([a-z]*\).*/\2/p'; }

# The release: as given, else the one of a debian:<suite> base image given, else bookworm.
if [ -n "${RAPTIFORMICA_DOCKER_RELEASE:-}" ]; then
    release=$RAPTIFORMICA_DOCKER_RELEASE
elif [ -n "${RAPTIFORMICA_DOCKER_BASE_IMAGE:-}" ]; then
    release=$(suite_of "$RAPTIFORMICA_DOCKER_BASE_IMAGE")
else
    release=bookworm
fi
case "$release" in
"" | *[!a-z0-9]* | [0-9]*)
    [ -z "$release" ] && [ -n "${RAPTIFORMICA_DOCKER_BASE_IMAGE:-}" ] ||
        die "RAPTIFORMICA_DOCKER_RELEASE=$release is not a Debian release codename; give bookworm or trixie (lowercase letters and digits), or leave it unset for bookworm."
    ;;
esac
init=${RAPTIFORMICA_DOCKER_INIT:-docker}
case "$init" in
docker | systemd) ;;
*) die "RAPTIFORMICA_DOCKER_INIT=$init: give systemd (instances boot systemd as PID 1) or docker (docker's init and sshd), or leave it unset for docker." ;;
esac
base=${RAPTIFORMICA_DOCKER_BASE_IMAGE:-debian:$release-slim}
# The Debian suite of the base, for debootstrap: bookworm from debian:bookworm-slim.
suite=${RAPTIFORMICA_DOCKER_SUITE:-${release:-$(suite_of "$base")}}
# Image tags per release (a base that is no debian:<suite>, with no release given: per base).
tag=${release:-$(printf %s "$base" | tr -c 'a-z0-9.\n-' '-')}
[ "$init" = docker ] || tag=$tag-$init
ygg_major=${RAPTIFORMICA_YGGDRASIL_MAJOR:-0.5}
case "$ygg_major" in
0.4 | 0.5) ;;
*) die "RAPTIFORMICA_YGGDRASIL_MAJOR=$ygg_major: give 0.4 (images for a cluster that still runs Yggdrasil 0.4) or 0.5, or leave it unset for 0.5." ;;
esac
instance_image=raptiformica-docker:sshd-$tag
packaged_image=raptiformica-docker:$server-$tag
[ "$ygg_major" = 0.5 ] || packaged_image=$packaged_image-yggdrasil$ygg_major
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# An image a rebuild replaced (now untagged): removed, unless a container still runs it.
retire() {
    [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ] || return 0
    docker image rm "$1" >/dev/null 2>&1 || true
}

# One build at a time on this docker daemon (concurrent spawns would each build the image).
lock() {
    command -v flock >/dev/null 2>&1 || return 0
    lockfile=/run/raptiformica-docker.lock
    [ -w /run ] || lockfile=${TMPDIR:-/tmp}/raptiformica-docker-$(id -u).lock
    exec 8>"$lockfile"
    flock -w 1800 8 || die "waited 30 min for another image build ($lockfile)"
}

# docker build, with the bridge's network; if the installs cannot reach the mirror from there
# (no NAT to the outside), again with the host's network.
build() {
    ctx=$1
    shift
    log=$ctx/build.log
    [ "${RAPTIFORMICA_DOCKER_NO_CACHE:-}" = 1 ] && set -- --no-cache "$@"
    set -- --force-rm "$@"
    if docker build "$@" "$ctx" >"$log" 2>&1; then return 0; fi
    if grep -qE "Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect" "$log"; then
        say "the build could not reach the package mirror through docker's bridge; building with the host's network"
        docker build --network host "$@" "$ctx" >"$log" 2>&1 && return 0
    fi
    tail -n 25 "$log" >&2
    return 1
}

ensure_base() {
    have_image "$base" && return 0
    say "pulling $base"
    if timeout 300 docker pull -q "$base" >/dev/null 2>&1; then return 0; fi
    [ -n "$suite" ] || die "cannot pull $base, and it is not a debian:<suite> image that debootstrap could make; pull or build it, or set RAPTIFORMICA_DOCKER_BASE_IMAGE"
    command -v debootstrap >/dev/null 2>&1 || die "cannot pull $base, and debootstrap (to make an equivalent) is not installed: apt-get install debootstrap"
    [ "$(id -u)" = 0 ] || die "cannot pull $base; making an equivalent with debootstrap needs root"
    say "cannot pull $base: making it with debootstrap ($suite from $mirror; a few minutes, once)"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/raptiformica-debootstrap.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    if ! debootstrap --variant=minbase "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
        tail -n 20 "$tmp/debootstrap.log" >&2
        die "debootstrap $suite from $mirror failed"
    fi
    # What the official slim images leave out: caches, package lists, logs.
    rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/log/*.log \
        "$tmp"/rootfs/dev/* "$tmp"/rootfs/proc/* "$tmp"/rootfs/sys/* 2>/dev/null || true
    tar --numeric-owner -C "$tmp/rootfs" -c . |
        docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
            --message "debootstrap --variant=minbase $suite $mirror (raptiformica docker compute type)" - "$base" >/dev/null ||
        die "docker import of the debootstrapped $suite failed"
    rm -rf "$tmp"
    trap - EXIT
    say "made $base with debootstrap"
}

# build_instance_image: (re)build it; docker's layer cache makes this quick when nothing changed.
ensure_instance_image() {
    have_image "$instance_image" && return 0
    build_instance_image
}

build_instance_image() {
    ensure_base
    say "building $instance_image from $base"
    ctx=$(mktemp -d "${TMPDIR:-/tmp}/raptiformica-docker-build.XXXXXX")
    cp "$here/Dockerfile" "$here/entrypoint.sh" "$here/sshd_config" "$ctx/"
    if ! build "$ctx" --build-arg "BASE=$base" --build-arg "INIT=$init" -t "$instance_image" --label raptiformica.image=sshd --label "raptiformica.release=$tag"; then
        rm -rf "$ctx"
        die "building $instance_image failed"
    fi
    rm -rf "$ctx"
}

package() {
    bootstrap="$home/modules/server/$server/bootstrap.sh"
    [ -f "$bootstrap" ] || die "server type $server has no $bootstrap to bake into the image"
    old_instance=$(image_id "$instance_image")
    old_packaged=$(image_id "$packaged_image")
    build_instance_image
    say "building $packaged_image ($instance_image + what $bootstrap installs)"
    ctx=$(mktemp -d "${TMPDIR:-/tmp}/raptiformica-docker-build.XXXXXX")
    cp "$here/Dockerfile.packaged" "$ctx/Dockerfile"
    cp "$bootstrap" "$ctx/bootstrap.sh"
    if ! build "$ctx" --build-arg "FROM=$instance_image" --build-arg "RAPTIFORMICA_YGGDRASIL_MAJOR=$ygg_major" -t "$packaged_image" --label "raptiformica.image=$server" --label "raptiformica.release=$tag"; then
        rm -rf "$ctx"
        die "building $packaged_image failed"
    fi
    rm -rf "$ctx"
    retire "$old_packaged" "$packaged_image"
    retire "$old_instance" "$instance_image"
    say "built $packaged_image: spawns with --compute-type docker${release:+ (release $release)} use it"
}

case "${1:-}" in
base)
    lock
    ensure_base
    ;;
instance)
    if [ -n "${RAPTIFORMICA_DOCKER_IMAGE:-}" ]; then
        have_image "$RAPTIFORMICA_DOCKER_IMAGE" || docker pull -q "$RAPTIFORMICA_DOCKER_IMAGE" >/dev/null || die "no image $RAPTIFORMICA_DOCKER_IMAGE"
        echo "$RAPTIFORMICA_DOCKER_IMAGE"
    elif have_image "$packaged_image"; then
        echo "$packaged_image"
    else
        lock
        ensure_instance_image
        echo "$instance_image"
    fi
    ;;
package)
    lock
    package
    ;;
*)
    die "usage: image.sh instance|package|base"
    ;;
esac
