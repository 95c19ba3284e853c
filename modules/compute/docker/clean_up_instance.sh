#!/bin/sh
# Removes the instance's container (and its anonymous volumes). A container that is already gone is fine.
[ -s container_id ] || exit 0
id=$(cat container_id)
docker inspect "$id" >/dev/null 2>&1 || exit 0
docker rm -f -v "$id" >/dev/null
