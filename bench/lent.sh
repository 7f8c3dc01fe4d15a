#!/bin/sh
# Benchmarks on a lent machine that has none of weft's packages (the
# 16-core machine of bench/RESULTS.md "On 16 cores"): build here, carry
# the build folder with the shared libraries it needs, run there.
#
#   bench/lent.sh prepare          here: release build in build/dev, and
#                                  its libraries (ldd) in build/dev/libs
#   bench/lent.sh run PHASE        there, from the repository root, with
#                                  OUT set to where results go:
#     scale   weft-scale at 1..16 workers, table and SVG (about 40 s)
#     fj      fork-join, quick sizes, 1..16 workers (about 70 s)
#     fjfull  fork-join, the full sizes, 1..16 workers, 5 runs;
#             fib and nqueens, then the trees and skew, each its own
#             table (about 6 min; OpenMP's fib at many workers times out
#             and is left out of the table)
#     actor   actors against CAF at 1, 4, 16 workers, full sizes, no
#             batch sweep (about 160 s)
#     map     parallel map, quick sizes, 1..16 workers (about 40 s)
#     tasks   futures and graphs, quick sizes, 1, 4, 16 workers, and the
#             store (about 80 s)
#
# run.py prints its tables only when a suite ends: give each phase its own
# call (or a generous timeout), or a killed suite leaves nothing. The GPU
# and libstdc++ of the lent machine are its own; ours are left behind.
# bench/lent_ab.sh compares two such builds there, process by process.
set -eu
B=build/dev
case "${1:-}" in
prepare)
    [ -d "$B" ] || meson setup "$B" --buildtype=release -Dtests=false
    ninja -C "$B"
    mkdir -p "$B/libs"
    find "$B" -type f -perm -u+x ! -path "$B/libs/*" | while read -r f; do
        ldd "$f" 2>/dev/null || true
    done | awk '/=> \//{print $3}' | sort -u |
        grep -v -E 'lib(c|m|pthread|dl|rt|stdc\+\+|gcc_s)\.so|ld-linux|libweft' |
        while read -r l; do cp -L "$l" "$B/libs/"; done
    du -sh "$B"
    ;;
run)
    : "${OUT:?set OUT to the results folder}"
    cd "$B"
    export LD_LIBRARY_PATH="$PWD/libs" PYTHONUNBUFFERED=1 WEFT_PROGRESS=0
    export BENCH_ACTOR_SWEEP=0
    { nproc; lscpu; } > "$OUT/machine.txt" 2>&1 || true
    R="python3 ../../bench/run.py --build-dir . --runs 3 --timeout 20"
    case "${2:-}" in
    scale) ./tools/weft-scale -w 1,2,4,8,16 -r 3 \
               --svg "$OUT/weft-scale.svg" > "$OUT/weft-scale.txt" ;;
    fj)    $R --suite fj --quick --workers 1,2,4,8,16 > "$OUT/fj.txt" ;;
    fjfull)
        F="python3 ../../bench/run.py --build-dir . --suite fj --runs 5
           --timeout 12 --workers 1,2,4,8,16 --no-sharing"
        $F --workloads fib,nqueens > "$OUT/fj-fib.txt" || true
        $F --workloads uts-geo,uts-bin,skew > "$OUT/fj-trees.txt" || true ;;
    actor) $R --suite actor --workers 1,4,16 > "$OUT/actor.txt" ;;
    map)   $R --suite map --quick --workers 1,2,4,8,16 > "$OUT/map.txt" ;;
    tasks) $R --suite future,dag --quick --workers 1,4,16 > "$OUT/tasks.txt"
           $R --suite store > "$OUT/store.txt" ;;
    *) echo "usage: bench/lent.sh run scale|fj|fjfull|actor|map|tasks" >&2; exit 2 ;;
    esac
    cp bench-results*.md "$OUT/" 2>/dev/null || true
    ;;
*)
    echo "usage: bench/lent.sh prepare | run PHASE" >&2
    exit 2
    ;;
esac
