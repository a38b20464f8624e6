#!/bin/bash
# Interleaved A/B of the gateway's upstream client, deferred settle commits and settle linger:
# 'before' switches them off (net/http, runtime.commit_defer 0, gateway.settle_linger 0), 'after' is the default.
# (Later changes that have no switch, such as the admit's narrow output gate, are in both.)
# Each run has its own direct and nginx baselines; runs alternate so machine noise hits both. Output: docs/BENCHMARKS-gateway-ab.md.
cd "$(dirname "$0")/../.." && go build -o /tmp/gwb ./test/cmd/gatewaybench || exit 1
for i in 1 2; do
  for v in "before net_http 0s 0s" "after auto 10ms 5ms"; do
    set -- $v
    /tmp/gwb -runs 1 -rates 1000,3000 -hold 300 -dur 6s -upstream-client $2 -commit-defer $3 -settle-linger $4 -out ${OUT:-/tmp}/gateway-ab-$1-$i.md >/dev/null 2>&1
    echo "== $1 run $i ($2, commit_defer $3, settle_linger $4)"
    grep -E "^\| (1000|3000)/s \| (holdfast|holdfast-limits|nginx) \|" ${OUT:-/tmp}/gateway-ab-$1-$i.md | cut -d'|' -f2-13,16-19
    grep "streams/s ceiling" ${OUT:-/tmp}/gateway-ab-$1-$i.md | cut -d'|' -f3-6
  done
done
