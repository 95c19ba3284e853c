#!/usr/bin/env bash
# Makes docker usable here for the docker compute type and its tests (test/e2e/docker.test.ts):
# installs docker.io and debootstrap when missing (apt-get, as root), starts dockerd when it does
# not answer (in the background, log in /var/log/dockerd.log; there is no systemd here), and
# waits until `docker info` works. Idempotent: does nothing when docker already answers and
# debootstrap is there.
#
# It never fails the caller: when docker cannot work on this machine (not root, no apt-get, the
# daemon does not come up) it says why and exits 0; the docker tests then skip with that reason.
#
# Usage: bash scripts/setup-docker.sh
set -uo pipefail

say() { echo "setup-docker: $*" >&2; }
give_up() { say "$* — the docker compute type and its tests are unavailable here."; exit 0; }
docker_ok() { timeout 20 docker info >/dev/null 2>&1; }

if [[ $(id -u) -ne 0 ]]; then
    docker_ok && { say "docker answers (not root: nothing installed)."; exit 0; }
    give_up "not root, and docker does not answer"
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
    command -v apt-get >/dev/null 2>&1 || give_up "no apt-get to install ${need[*]}"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null 2>&1 || say "apt-get update failed; trying the install anyway"
    # shellcheck disable=SC2068 # package names are plain words
    apt-get install -y -q --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null ||
        give_up "apt-get install ${need[*]} failed"
fi

if docker_ok; then
    say "docker answers."
    exit 0
fi

command -v dockerd >/dev/null 2>&1 || give_up "no dockerd"
# A daemon of ours that is still starting: wait for it rather than start a second one.
if ! pgrep -x dockerd >/dev/null 2>&1; then
    # containerd comes with docker.io; dockerd starts its own when none runs.
    say "starting dockerd (log: /var/log/dockerd.log)"
    # Every descriptor beyond 0–2 is closed first: dockerd outlives this script, and one it
    # inherited (a `flock` around the test run) would stay held for as long as dockerd runs.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec ${fd}>&-" 2>/dev/null
        done
        exec setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null
    ) &
fi
for _ in $(seq 1 60); do
    docker_ok && { say "docker answers."; exit 0; }
    sleep 1
done
give_up "dockerd did not answer within 60 s (see the end of /var/log/dockerd.log: $(tail -n 3 /var/log/dockerd.log 2>/dev/null | tr '\n' ' '))"
