#!/bin/sh
# A read/write prober for bench/proxy-stall.ts, run inside a lab node's namespace: what an app
# on a member does, through etcd's own client against the local endpoint. Alternates
# `etcdctl put` and `etcdctl get` (each a process of its own, with a 1 s command timeout) for
# SECONDS, and prints one line per operation: "<put|get> <start ms> <end ms> <0|exit code>".
# Usage: etcdctl-prober.sh TLS_DIR SECONDS [ENDPOINT] [KEY]
set -u
tls=$1
seconds=$2
endpoint=${3:-https://127.0.0.1:2379}
key=${4:-raptiformica/bench/stall/$(hostname)}
now() { date +%s%3N; }
stop=$(( $(now) + seconds * 1000 ))
n=0
while [ "$(now)" -lt "$stop" ]; do
  for op in put get; do
    s=$(now)
    if [ "$op" = put ]; then
      ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --cacert "$tls/ca.crt" --cert "$tls/node.crt" --key "$tls/node.key" \
        --dial-timeout 1s --command-timeout 1s put "$key" "$n" >/dev/null 2>&1
    else
      ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --cacert "$tls/ca.crt" --cert "$tls/node.crt" --key "$tls/node.key" \
        --dial-timeout 1s --command-timeout 1s get "$key" >/dev/null 2>&1
    fi
    rc=$?
    echo "$op $s $(now) $rc"
    n=$((n + 1))
  done
done
