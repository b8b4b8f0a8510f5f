#!/usr/bin/env bash
# Peak memory of `compose diff` on two images whose layers are several GB each (issue 6:
# "runs with peak RSS under 300 MB"), next to the time it takes and to diffoscope's refusal
# territory. Two images are built from a tree of GB_TOTAL GiB of incompressible files (B
# differs from A in one file's content and one file's mode); the two images are diffed as
# OCI layouts with /usr/bin/time -v.
#
#   bench/diff-rss.sh [GB_TOTAL]      (default 3: three 1 GiB files per image)
#
# Needs openssl, /usr/bin/time and a release build (`cargo build --release -p composer-cli`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-/tmp/compose-diff-bench}
GB=${1:-3}
COMPOSE=${COMPOSE:-$ROOT/target/release/compose}
[ -x "$COMPOSE" ] || { echo "build first: cargo build --release -p composer-cli" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK"/{a,b}/tree

gen() { # gen FILE SEED: 1 GiB of AES-CTR keystream (incompressible, fast)
  { openssl enc -aes-128-ctr -nosalt -pass "pass:$2" -in /dev/zero 2>/dev/null || true; } | head -c $((1 << 30)) > "$1"
}
for i in $(seq 1 "$GB"); do
  gen "$WORK/a/tree/big$i.bin" "seed$i"
  if [ "$i" -eq 1 ]; then gen "$WORK/b/tree/big$i.bin" "other"; else cp "$WORK/a/tree/big$i.bin" "$WORK/b/tree/big$i.bin"; fi
done
echo small > "$WORK/a/tree/small.txt"; echo small > "$WORK/b/tree/small.txt"
chmod 0755 "$WORK/b/tree/small.txt"
for s in a b; do
  cat > "$WORK/$s/big.kdl" <<KDL
image "big" {
    tag "1"
    epoch "2026-11-01T00:00:00Z"
}
layer "data" {
    copy "tree" "/data"
}
KDL
  "$COMPOSE" --store "$WORK/store" build "$WORK/$s/big.kdl" -o "$WORK/out-$s" -j 2 >/dev/null 2>&1
done
du -sh "$WORK/out-a/blobs" "$WORK/out-b/blobs"
set +e
/usr/bin/time -v "$COMPOSE" diff "$WORK/out-a" "$WORK/out-b" > "$WORK/diff.txt" 2> "$WORK/time.txt"
rc=$?
set -e
cat "$WORK/diff.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
layer=$(ls -l "$WORK/out-a/blobs/sha256" | sort -k5 -n | tail -1 | awk '{print $5}')
echo
echo "| layer size (each image) | diff exit | wall | peak RSS |"
echo "| --- | --- | --- | --- |"
echo "| $((layer / 1048576)) MiB | $rc | $wall | $((rss_kb / 1024)) MiB |"
rm -rf "$WORK"
