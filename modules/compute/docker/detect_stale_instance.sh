#!/bin/sh
# Exit 0 while the instance's container runs, non-zero when it is stale (stopped, killed, gone).
[ -s container_id ] || exit 1
[ "$(docker inspect -f '{{.State.Running}}' "$(cat container_id)" 2>/dev/null)" = true ]
