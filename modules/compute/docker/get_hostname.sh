#!/bin/sh
# The instance's IPv4 address: on $RAPTIFORMICA_DOCKER_NETWORK when set, else its first network's.
set -eu
[ -s container_id ] || { echo "docker: no container_id in $(pwd)" >&2; exit 1; }
if [ -n "${RAPTIFORMICA_DOCKER_NETWORK:-}" ]; then
    fmt="{{with index .NetworkSettings.Networks \"$RAPTIFORMICA_DOCKER_NETWORK\"}}{{.IPAddress}}{{end}}"
else
    fmt='{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'
fi
addr=$(docker inspect -f "$fmt" "$(cat container_id)" | awk '{print $1}')
[ -n "$addr" ] || { echo "docker: container $(cat container_id) has no IPv4 address" >&2; exit 1; }
echo "$addr"
