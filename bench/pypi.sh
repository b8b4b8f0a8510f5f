#!/usr/bin/env bash
# Python layer benchmark: composer vs uv + the deterministic tar | zstd pipeline, in one run,
# against the live PyPI, for the same requirements.
#
#   bench/pypi.sh [RUNS] [REQUIREMENTS…]        (default: numpy pandas requests)
#
# composer cold: a store that already holds the Debian system layer (seeded once), no
#   lock for the Python half, no wheels: resolve (PEP 691 pages + PEP 658 metadata),
#   download, install per the wheel spec, compress, write the image.
# composer warm: wheels and fragments stored, output image removed (`--locked`).
# uv cold/warm: `uv pip install --target T --link-mode=copy` with an empty / a warm cache
#   (for the host's interpreter: uv needs one), then tar --sort=name … | zstd -T2 -3 with
#   sha256 of both streams, as in bench/layer-build.sh.
# Each contender's CPU time (user + system, all its processes) is reported beside its wall
# time: on a small machine both are CPU-bound, and the CPU says how much work each does.
# Needs: a release build, uv (`pip install uv`), network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-3}
shift || true
REQS=("$@")
[ ${#REQS[@]} -gt 0 ] || REQS=(numpy pandas requests)
WORK=${BENCH_WORK:-/tmp/compose-bench-pypi}
COMPOSE=${COMPOSE:-$ROOT/target/release/compose}
[ -x "$COMPOSE" ] || { echo "build first: cargo build --release -p composer-cli" >&2; exit 1; }
command -v uv >/dev/null || { echo "install uv: pip install uv" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK/recipe/common"
cp recipes/common/debian-trixie.kdl "$WORK/recipe/common/"
R=$WORK/recipe/py.kdl
reqs=$(printf '"%s" ' "${REQS[@]}")
cat > "$R" <<KDL
include "common/debian-trixie.kdl"
image "bench-py" { epoch "2026-11-01T00:00:00Z"; }
layer "system" { debian "python3" "ca-certificates" "libstdc++6"; }
layer "python" after="system" { pypi $reqs; }
KDL
# Seed: the Debian half locked and built once, kept as a template store.
cat > "$WORK/recipe/sys.kdl" <<KDL
include "common/debian-trixie.kdl"
image "bench-sys" { epoch "2026-11-01T00:00:00Z"; }
layer "system" { debian "python3" "ca-certificates" "libstdc++6"; }
KDL
"$COMPOSE" --store "$WORK/seed" build "$WORK/recipe/sys.kdl" -o "$WORK/seed-out" > /dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
# A contender that fails does not get a time: the whole benchmark stops, showing why.
# Prints the wall time; appends the CPU time (user + system of every process it waited for,
# from the `times` builtin) to $WORK/cpu.<contender>.
# `times` must run in t's own shell (a command substitution would be another process).
children_cpu() {
  tail -1 "$1" | tr -d 's' | awk '{split($1, u, "m"); split($2, y, "m"); print u[1] * 60 + u[2] + y[1] * 60 + y[2]}'
}
t() {
  local s e
  times > "$WORK/times.0"; s=$(now)
  "$@" > "$WORK/last.log" 2>&1 || { echo "FAILED: $*" >&2; tail -20 "$WORK/last.log" >&2; exit 1; }
  e=$(now); times > "$WORK/times.1"
  echo "$e - $s" | bc
  echo "$(children_cpu "$WORK/times.1") - $(children_cpu "$WORK/times.0")" | bc >> "$WORK/cpu.$1"
}
pipeline() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$WORK/uv-target" -cf - . \
    | tee >(openssl dgst -sha256 > /dev/null) | zstd -q -T2 -3 | openssl dgst -sha256 > /dev/null
  wait # the process substitution, so that its CPU time is counted
}
uv_install() { rm -rf "$WORK/uv-target"; uv pip install --quiet --cache-dir "$WORK/uv-cache" --target "$WORK/uv-target" --link-mode=copy "${REQS[@]}"; }
uv_cold() { rm -rf "$WORK/uv-cache"; uv_install; pipeline; }
uv_warm() { uv_install; pipeline; }
# COMPOSE_BUILD_FLAGS adds build options (e.g. --no-check, to time the build alone).
read -r -a FLAGS <<< "${COMPOSE_BUILD_FLAGS:-}"
compose_cold() { rm -rf "$WORK/store" "$WORK/out" "${R%.kdl}.lock"; cp -a "$WORK/seed" "$WORK/store"; "$COMPOSE" --store "$WORK/store" build -j 2 "${FLAGS[@]}" "$R" -o "$WORK/out"; }
compose_warm() { rm -rf "$WORK/out"; "$COMPOSE" --store "$WORK/store" build -j 2 --locked "${FLAGS[@]}" "$R" -o "$WORK/out"; }

rm -f "$WORK"/cpu.*
uc=(); uw=(); cc=(); cw=()
for i in $(seq "$RUNS"); do
  uc+=("$(t uv_cold)"); uw+=("$(t uv_warm)")
  cc+=("$(t compose_cold)"); cw+=("$(t compose_warm)")
done
UC=$(printf '%s\n' "${uc[@]}" | median); UW=$(printf '%s\n' "${uw[@]}" | median)
CC=$(printf '%s\n' "${cc[@]}" | median); CW=$(printf '%s\n' "${cw[@]}" | median)
cpu() { median < "$WORK/cpu.$1"; }
echo "requirements: ${REQS[*]}; $(grep -c '^wheel ' "${R%.kdl}.lock") wheels in composer's lock; uv $(uv --version | cut -d' ' -f2); runs: $RUNS; $(nproc) cores"
echo
echo "| contender | median wall (s) | ratio | median CPU, user + system (s) |"
echo "| --- | --- | --- | --- |"
echo "| uv pip install --target (cold cache) + tar \| zstd -T2 -3 | $UC | 1.00 | $(cpu uv_cold) |"
printf "| compose build, Python half cold (resolve + fetch + install + build) | %s | %.2f × uv cold | %s |\n" "$CC" "$(echo "$CC / $UC" | bc -l)" "$(cpu compose_cold)"
echo "| uv pip install --target (warm cache) + tar \| zstd -T2 -3 | $UW | 1.00 | $(cpu uv_warm) |"
printf "| compose build --locked, wheels stored, image removed | %s | %.3f × uv warm | %s |\n" "$CW" "$(echo "$CW / $UW" | bc -l)" "$(cpu compose_warm)"
echo
echo "all runs (s): uv cold ${uc[*]} | uv warm ${uw[*]} | compose cold ${cc[*]} | compose warm ${cw[*]}"
