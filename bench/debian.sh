#!/usr/bin/env bash
# Debian system image benchmark: composer vs mmdebstrap for the same package set
# (python3 + ca-certificates, Debian trixie, amd64), in one run, against the live mirror.
#
#   bench/debian.sh [RUNS]
#
# composer cold, no lock: empty store, no lock file (index download + resolution included).
# composer cold, locked:  empty store, lock present (what CI does with a committed lock).
# composer warm:          packages and fragments in the store, output image removed.
# mmdebstrap:             --variant=essential --include=python3,ca-certificates, SOURCE_DATE_EPOCH set.
# Needs: a release build (`cargo build --release -p composer-cli`), mmdebstrap, network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-3}
WORK=${BENCH_WORK:-/tmp/compose-bench-debian}
COMPOSE=${COMPOSE:-$ROOT/target/release/compose}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ -x "$COMPOSE" ] || { echo "build first: cargo build --release -p composer-cli" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK/recipe/common"
cp recipes/debian-python.kdl "$WORK/recipe/"
cp recipes/common/debian-trixie.kdl "$WORK/recipe/common/"
R=$WORK/recipe/debian-python.kdl
export SOURCE_DATE_EPOCH=1793491200

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
# A contender that fails does not get a time: the whole benchmark stops, showing why.
t() {
  local s e
  s=$(now)
  "$@" > "$WORK/last.log" 2>&1 || { echo "FAILED: $*" >&2; tail -20 "$WORK/last.log" >&2; exit 1; }
  e=$(now); echo "$e - $s" | bc
}

# The network floor: the same .debs (from a lock made once) fetched with curl, 6 at a time.
"$COMPOSE" --store "$WORK/lockstore" lock "$R" > /dev/null 2>&1
awk '/^deb /{ for (i = 1; i <= NF; i++) if ($i ~ /^(archive|filename)=/) { split($i, kv, "="); gsub(/"/, "", kv[2]); v[kv[1]] = kv[2] } print v["archive"] "/" v["filename"] }' "${R%.kdl}.lock" > "$WORK/urls"
fetch_floor() { rm -rf "$WORK/curl"; mkdir -p "$WORK/curl"; (cd "$WORK/curl" && xargs -P 6 -n 1 curl -sfO < "$WORK/urls"); }

mm=(); cold=(); coldlock=(); warm=(); floor=()
for i in $(seq "$RUNS"); do
  rm -f "$WORK/mm.tar"
  mm+=("$(t mmdebstrap --quiet --variant=essential --include=python3,ca-certificates trixie "$WORK/mm.tar" "$MIRROR")")

  floor+=("$(t fetch_floor)")

  rm -rf "$WORK/store" "$WORK/out" "${R%.kdl}.lock"
  cold+=("$(t "$COMPOSE" --store "$WORK/store" build -j 2 "$R" -o "$WORK/out")")

  rm -rf "$WORK/store" "$WORK/out"   # keep the lock
  coldlock+=("$(t "$COMPOSE" --store "$WORK/store" build -j 2 --locked "$R" -o "$WORK/out")")

  rm -rf "$WORK/out"
  warm+=("$(t "$COMPOSE" --store "$WORK/store" build -j 2 --locked "$R" -o "$WORK/out")")
done

M=$(printf '%s\n' "${mm[@]}" | median)
C=$(printf '%s\n' "${cold[@]}" | median)
L=$(printf '%s\n' "${coldlock[@]}" | median)
W=$(printf '%s\n' "${warm[@]}" | median)
F=$(printf '%s\n' "${floor[@]}" | median)
echo "package set: python3 + ca-certificates, trixie/amd64 ($(grep -c '^deb ' "${R%.kdl}.lock") packages in composer's lock); runs: $RUNS"
echo
echo "| contender | median wall (s) | ratio vs mmdebstrap |"
echo "| --- | --- | --- |"
echo "| mmdebstrap --variant=essential --include=python3,ca-certificates | $M | 1.00 |"
printf "| (network floor: curl -P6 of the same %s .debs, %s) | %s | %.3f |\n" "$(wc -l < "$WORK/urls")" "$(du -sh "$WORK/curl" | cut -f1)" "$F" "$(echo "$F / $M" | bc -l)"
printf '| compose build, empty store, no lock (resolve + fetch + build) | %s | %.3f |\n' "$C" "$(echo "$C / $M" | bc -l)"
printf '| compose build --locked, empty store (fetch + build) | %s | %.3f |\n' "$L" "$(echo "$L / $M" | bc -l)"
printf '| compose build --locked, warm store, image removed | %s | %.3f |\n' "$W" "$(echo "$W / $M" | bc -l)"
echo
echo "all runs (s): mmdebstrap ${mm[*]} | curl ${floor[*]} | cold ${cold[*]} | cold+lock ${coldlock[*]} | warm ${warm[*]}"
