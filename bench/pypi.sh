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
t() {
  local s e
  s=$(now)
  "$@" > "$WORK/last.log" 2>&1 || { echo "FAILED: $*" >&2; tail -20 "$WORK/last.log" >&2; exit 1; }
  e=$(now); echo "$e - $s" | bc
}
pipeline() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$WORK/uv-target" -cf - . \
    | tee >(openssl dgst -sha256 > /dev/null) | zstd -q -T2 -3 | openssl dgst -sha256 > /dev/null
}
uv_install() { rm -rf "$WORK/uv-target"; uv pip install --quiet --cache-dir "$WORK/uv-cache" --target "$WORK/uv-target" --link-mode=copy "${REQS[@]}"; }
uv_cold() { rm -rf "$WORK/uv-cache"; uv_install; pipeline; }
uv_warm() { uv_install; pipeline; }
# COMPOSE_BUILD_FLAGS adds build options (e.g. --no-check, to time the build alone).
read -r -a FLAGS <<< "${COMPOSE_BUILD_FLAGS:-}"
compose_cold() { rm -rf "$WORK/store" "$WORK/out" "${R%.kdl}.lock"; cp -a "$WORK/seed" "$WORK/store"; "$COMPOSE" --store "$WORK/store" build -j 2 "${FLAGS[@]}" "$R" -o "$WORK/out"; }
compose_warm() { rm -rf "$WORK/out"; "$COMPOSE" --store "$WORK/store" build -j 2 --locked "${FLAGS[@]}" "$R" -o "$WORK/out"; }

uc=(); uw=(); cc=(); cw=()
for i in $(seq "$RUNS"); do
  uc+=("$(t uv_cold)"); uw+=("$(t uv_warm)")
  cc+=("$(t compose_cold)"); cw+=("$(t compose_warm)")
done
UC=$(printf '%s\n' "${uc[@]}" | median); UW=$(printf '%s\n' "${uw[@]}" | median)
CC=$(printf '%s\n' "${cc[@]}" | median); CW=$(printf '%s\n' "${cw[@]}" | median)
echo "requirements: ${REQS[*]}; $(grep -c '^wheel ' "${R%.kdl}.lock") wheels in composer's lock; uv $(uv --version | cut -d' ' -f2); runs: $RUNS"
echo
echo "| contender | median wall (s) | ratio |"
echo "| --- | --- | --- |"
echo "| uv pip install --target (cold cache) + tar \| zstd -T2 -3 | $UC | 1.00 |"
printf "| compose build, Python half cold (resolve + fetch + install + build) | %s | %.2f × uv cold |\n" "$CC" "$(echo "$CC / $UC" | bc -l)"
echo "| uv pip install --target (warm cache) + tar \| zstd -T2 -3 | $UW | 1.00 |"
printf "| compose build --locked, wheels stored, image removed | %s | %.3f × uv warm |\n" "$CW" "$(echo "$CW / $UW" | bc -l)"
echo
echo "all runs (s): uv cold ${uc[*]} | uv warm ${uw[*]} | compose cold ${cc[*]} | compose warm ${cw[*]}"
