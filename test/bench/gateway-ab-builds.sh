#!/bin/bash
# Interleaved A/B of two builds of the gateway: BASE (default fad8822, the
# gateway before session 6's narrow admit gate, settle cache and deferred
# admit commits) against the working tree, then of
# gateway.defer_admit_commits on and off (working tree) with a 20 ms
# upstream time to first token. Runs alternate so machine noise hits both
# sides; each run has its own direct and nginx baselines, so compare the
# ratios to nginx. Needs nginx. Figures: docs/BENCHMARKS-gateway-ab.md.
# RUNS (default 2) pairs; NO_DEFER=1 skips the defer_admit_commits part.
# The working tree's gatewaybench runs with -syscalls=false (its perf
# phases are extra time the old build does not spend).
cd "$(dirname "$0")/../.." || exit 1
BASE=${BASE:-fad8822}
OUT=${OUT:-/tmp}
wt=$(mktemp -d) && git worktree add -q "$wt" "$BASE" || exit 1
(cd "$wt" && go build -o /tmp/gwb-old ./test/cmd/gatewaybench) || exit 1
git worktree remove --force "$wt"
go build -o /tmp/gwb-new ./test/cmd/gatewaybench || exit 1
row() { grep -E "^\| [0-9]+/s \| (holdfast|holdfast-limits|nginx) \|" "$1" | cut -d'|' -f2-3,9-10,12,16,19; }
RUNS=${RUNS:-2}
for i in $(seq "$RUNS"); do
  for v in old new; do
    extra=""; [ $v = new ] && extra="-syscalls=false"
    /tmp/gwb-$v $extra -runs 1 -rates 1000,3000 -hold 300 -dur 6s -out $OUT/gateway-ab-build-$v-$i.md >/dev/null 2>&1
    echo "== build $v ($([ $v = old ] && echo $BASE || echo working tree)) run $i"; row $OUT/gateway-ab-build-$v-$i.md
  done
done
[ -n "$NO_DEFER" ] && exit 0
for i in 1 2; do
  for d in true false; do
    /tmp/gwb-new -syscalls=false -runs 1 -rates 1000 -hold 300 -dur 6s -upstream-ttft 20ms -defer-admit-commits $d -out $OUT/gateway-ab-defer-$d-$i.md >/dev/null 2>&1
    echo "== defer_admit_commits $d, 20 ms TTFT, run $i"; row $OUT/gateway-ab-defer-$d-$i.md
  done
done
