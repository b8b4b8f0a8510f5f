#!/usr/bin/env bash
# Layer-build benchmark: composer vs the shell pipeline a user would otherwise run, on the
# same ~1 GB tree, in one run. Reports medians of N runs, ratios, and composer's peak RSS.
#
#   bench/layer-build.sh [TREE_DIR] [RUNS]
#
# Without TREE_DIR it assembles ~1 GB of real files (shared libraries, gcc, docs) under
# $BENCH_WORK (default /tmp/compose-bench). Needs: tar, zstd, openssl, /usr/bin/time, and a
# release build (`cargo build --release -p composer-cli`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-/tmp/compose-bench}
RUNS=${2:-3}
COMPOSE=${COMPOSE:-$ROOT/target/release/compose}
[ -x "$COMPOSE" ] || { echo "build first: cargo build --release -p composer-cli" >&2; exit 1; }
mkdir -p "$WORK"

TREE=${1:-}
if [ -z "$TREE" ]; then
  TREE=$WORK/tree
  if [ ! -d "$TREE" ]; then
    mkdir -p "$TREE"
    cp -a /usr/lib/x86_64-linux-gnu "$TREE/lib"
    cp -a /usr/lib/gcc "$TREE/gcc"
    for d in /usr/share/doc /usr/share/perl /usr/share/locale /usr/share/i18n /usr/share/zoneinfo /usr/share/man; do
      [ -d "$d" ] && cp -a "$d" "$TREE/share-$(basename "$d")"
      [ "$(du -sm "$TREE" | cut -f1)" -ge 1000 ] && break
    done
  fi
fi
SIZE_MB=$(du -sm --apparent-size "$TREE" | cut -f1)
FILES=$(find "$TREE" -type f | wc -l)

cat > "$WORK/bench.kdl" <<KDL
image "bench" {
    epoch "2026-01-01T00:00:00Z"
}
layer "data" {
    copy "$TREE" "/data"
}
KDL

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }

# Warm the page cache so every contender reads from memory.
tar -cf - "$TREE" | cat > /dev/null

pipeline() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$TREE" -cf - . \
    | tee >(openssl dgst -sha256 > "$WORK/pipe-tar.sha") \
    | zstd -q -T2 -3 \
    | tee "$WORK/pipe.tar.zst" \
    | openssl dgst -sha256 > "$WORK/pipe-zst.sha"
}

pipe_t=(); first_t=(); rebuild_t=(); first_rss=(); rebuild_rss=()
for i in $(seq "$RUNS"); do
  sync
  s=$(now); pipeline; e=$(now)
  pipe_t+=("$(echo "$e - $s" | bc)")

  rm -rf "$WORK/store" "$WORK/out"; sync
  s=$(now)
  /usr/bin/time -f %M -o "$WORK/rss" "$COMPOSE" --store "$WORK/store" build -j 2 "$WORK/bench.kdl" -o "$WORK/out" > "$WORK/digest1"
  e=$(now)
  first_t+=("$(echo "$e - $s" | bc)"); first_rss+=("$(cat "$WORK/rss")")

  rm -rf "$WORK/out"; sync
  s=$(now)
  /usr/bin/time -f %M -o "$WORK/rss" "$COMPOSE" --store "$WORK/store" build -j 2 "$WORK/bench.kdl" -o "$WORK/out" > "$WORK/digest2"
  e=$(now)
  rebuild_t+=("$(echo "$e - $s" | bc)"); rebuild_rss+=("$(cat "$WORK/rss")")
  cmp -s "$WORK/digest1" "$WORK/digest2" || { echo "rebuild digest differs!" >&2; exit 1; }
done

P=$(printf '%s\n' "${pipe_t[@]}" | median)
F=$(printf '%s\n' "${first_t[@]}" | median)
R=$(printf '%s\n' "${rebuild_t[@]}" | median)
FR=$(printf '%s\n' "${first_rss[@]}" | sort -n | tail -1)
RR=$(printf '%s\n' "${rebuild_rss[@]}" | sort -n | tail -1)
ZST=$(stat -c %s "$WORK/pipe.tar.zst")
OURS=$(du -sb "$WORK/out/blobs" | cut -f1)

echo "tree: $TREE ($SIZE_MB MB apparent, $FILES files); runs: $RUNS; cpus: $(nproc)"
echo
echo "| contender | median wall (s) | ratio vs pipeline | peak RSS |"
echo "| --- | --- | --- | --- |"
echo "| tar --sort=name … \| zstd -T2 -3, sha256 of both streams | $P | 1.00 | - |"
printf '| compose build, empty store (first build) | %s | %.2f | %d MB |\n' "$F" "$(echo "$F / $P" | bc -l)" "$((FR / 1024))"
printf '| compose build, fragments in store (rebuild, fresh output dir) | %s | %.2f (%.1fx faster) | %d MB |\n' \
  "$R" "$(echo "$R / $P" | bc -l)" "$(echo "$P / $R" | bc -l)" "$((RR / 1024))"
echo
echo "compressed: pipeline $((ZST / 1048576)) MB, composer layout blobs $((OURS / 1048576)) MB"
echo "all runs (s): pipeline ${pipe_t[*]} | first ${first_t[*]} | rebuild ${rebuild_t[*]}"
