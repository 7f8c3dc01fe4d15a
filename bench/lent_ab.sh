#!/bin/bash
# A/B of two builds on the lent 16-core machine (see bench/lent.sh): the
# build to test in build/dev, the one to compare with in build/dev-old,
# each made here with `bench/lent.sh prepare` (copy build/dev to
# build/dev-old before changing the code). Alternates the two builds
# process by process, 5 processes of 3 runs per point, at 2, 4 and 16
# workers, so the machine's drift hits both alike. Run there from the
# repository root, with both folders carried:
#
#   bash bench/lent_ab.sh > $OUT/ab.txt
#
# Each output line is "old|new RESULT ..."; a median per (workload,
# workers, build) is what RESULTS.md quotes. About 90 s.
export WEFT_PROGRESS=0
one() {
    local label=$1 dir=$2
    shift 2
    local prog=$1
    shift
    (cd "$dir" && env LD_LIBRARY_PATH="$PWD/libs" "./bench/$prog" "$@" -r 3) 2>&1 |
        grep -E "^RESULT" | sed "s/^/$label /"
}
for rep in 1 2 3 4 5; do
    for w in 2 4 16; do
        for v in old new; do
            case $v in old) D=build/dev-old ;; new) D=build/dev ;; esac
            one $v $D future-weft -k inside-flat -n 400000 -w $w
            one $v $D future-weft -k inside-tree -n 400000 -w $w
            one $v $D future-weft -k outside -n 100000 -w $w
            one $v $D future-weft -k rt-spin -n 10000 -w $w
            one $v $D dag-weft-dyn -k dag -n 300000 -w $w
            one $v $D dag-weft-graph -k dag -n 300000 -w $w
            one $v $D dag-weft-graph -k chol-fine -n 16 -w $w
            one $v $D map-weft -k pareto -n 400000 -w $w
            one $v $D fj-weft -k uts-geo -w $w
            one $v $D actor/actor-weft -k chameneos -w $w
            one $v $D actor/actor-weft -k manysenders -w $w
        done
    done
done
