#!/bin/sh
# bench/gpu-smoke.sh LAYOUT_DIR [WORK_DIR]
#
# Runs the CUDA smoke image (recipes/cuda-smoke.kdl, built with `--compression gzip`) on a
# GPU host that has nothing but a POSIX shell, tar, gzip, sed and grep: no Python, jq, umoci,
# zstd or container engine.
#
#   1. reads LAYOUT_DIR/index.json -> the first manifest -> its config and layers, in order;
#   2. unpacks the layers into WORK_DIR/rootfs (whiteouts applied), checking each blob's
#      sha256 when sha256sum exists;
#   3. finds the host driver's libcuda.so.1 (`ldconfig -p`, then the usual directories) and
#      puts it at rootfs/usr/local/nvidia/lib64/libcuda.so.1, as the NVIDIA Container
#      Toolkit / GKE device plugin would;
#   4. runs the image's own python3 with the image config's Env: ctypes loads libcudart.so.12
#      from the wheel in site-packages and calls cudaGetDeviceCount.
#
# Two ways to run the image, printed as `mode:` in the output:
#   chroot  (root, mounts permitted) in a private mount namespace when `unshare` exists:
#           libcuda.so.1 bind-mounted read-only, /dev, /proc and /sys bind-mounted, then
#           `chroot rootfs /usr/bin/python3`;
#   loader  (not root, or mounts refused) libcuda.so.1 copied into the rootfs, then the
#           image's own dynamic loader runs the image's python with the image's libraries:
#           rootfs/lib64/ld-linux-x86-64.so.2 --library-path <image lib dirs>
#           rootfs/usr/bin/python3.X, with PYTHONHOME=rootfs/usr; /dev is the host's.
# GPU_SMOKE_MODE=chroot|loader forces one; CUDA_DRIVER_LIB=/path/libcuda.so.1 overrides the
# search; KEEP=1 keeps WORK_DIR (by default a temporary directory that is removed).
#
# Exit status: 0 at least one CUDA device; 1 the call ran but found none (or failed);
# 2 no CUDA driver on this host; 3 bad layout or usage; 4 unpacking failed.

set -eu

die() { code=$1; shift; echo "gpu-smoke: $*" >&2; exit "$code"; }

[ $# -ge 1 ] && [ $# -le 2 ] || die 3 "usage: $0 LAYOUT_DIR [WORK_DIR]"
LAYOUT=$1
[ -f "$LAYOUT/index.json" ] || die 3 "$LAYOUT/index.json: no such file (not an OCI layout directory)"
case $LAYOUT in /*) ;; *) LAYOUT=$(pwd)/$LAYOUT ;; esac

# As root, run everything in a private mount namespace when unshare is there: the mounts
# below then vanish with this process even if it is killed.
if [ "$(id -u)" = 0 ] && [ "${GPU_SMOKE_MODE:-auto}" != loader ] && [ -z "${GPU_SMOKE_NS:-}" ] &&
    command -v unshare >/dev/null 2>&1 && unshare --mount --propagation private true 2>/dev/null; then
    GPU_SMOKE_NS=1 exec unshare --mount --propagation private /bin/sh "$0" "$@"
fi

# A digest "sha256:<64 hex>" -> the blob's path, checked when sha256sum is available.
blob() {
    hex=${1#sha256:}
    f=$LAYOUT/blobs/sha256/$hex
    [ -f "$f" ] || die 3 "blob $1 is missing from $LAYOUT"
    if command -v sha256sum >/dev/null 2>&1; then
        got=$(sha256sum "$f" | sed 's/ .*//')
        [ "$got" = "$hex" ] || die 3 "blob $1 does not match its digest (sha256 $got)"
    fi
    echo "$f"
}

# The first manifest of the index (the layout's tags all name the same image).
manifest_digest=$(grep -o '"digest":"sha256:[0-9a-f]\{64\}"' "$LAYOUT/index.json" | head -n 1 | sed 's/.*"\(sha256:[^"]*\)"/\1/')
[ -n "$manifest_digest" ] || die 3 "no manifest in $LAYOUT/index.json"
manifest=$(cat "$(blob "$manifest_digest")")

# "config":{...} holds one digest; "layers":[{...},...] the layers, bottom first.
config_digest=$(printf '%s' "$manifest" | sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p')
[ -n "$config_digest" ] || die 3 "manifest $manifest_digest has no config digest"
layers=$(printf '%s' "$manifest" | sed -n 's/.*"layers":\[\([^]]*\)\].*/\1/p' | sed 's/},{/}\
{/g')
[ -n "$layers" ] || die 3 "manifest $manifest_digest has no layers"
config=$(cat "$(blob "$config_digest")")

if [ $# -eq 2 ]; then
    WORK=$2
    mkdir -p "$WORK"
    made_work=
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX")
    made_work=1
fi
case $WORK in /*) ;; *) WORK=$(pwd)/$WORK ;; esac
ROOT=$WORK/rootfs
[ ! -e "$ROOT" ] || die 3 "$ROOT exists already; give an empty WORK_DIR"
mkdir "$ROOT"

mounted=
cleanup() {
    # Unmount in reverse order; never delete the tree while anything is mounted inside it.
    for m in $mounted; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    mounted=
    if [ -n "$made_work" ] && [ "${KEEP:-0}" != 1 ]; then
        if grep -q " $ROOT/" /proc/mounts 2>/dev/null; then
            echo "gpu-smoke: something is still mounted under $ROOT; leaving $WORK in place" >&2
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 2. unpack -------------------------------------------------------------------------
n=0
for desc in $(printf '%s\n' "$layers" | tr -d ' '); do
    n=$((n + 1))
    media=$(printf '%s' "$desc" | sed -n 's/.*"mediaType":"\([^"]*\)".*/\1/p')
    digest=$(printf '%s' "$desc" | sed -n 's/.*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p')
    case $media in
        application/vnd.oci.image.layer.v1.tar+gzip | application/vnd.docker.image.rootfs.diff.tar.gzip) dec="gzip -dc" ;;
        application/vnd.oci.image.layer.v1.tar) dec=cat ;;
        *) die 3 "layer $n has media type $media; rebuild the image with --compression gzip" ;;
    esac
    f=$(blob "$digest")
    # Whiteouts of this layer delete from the layers below before it is applied.
    $dec "$f" | tar -tf - | grep '\.wh\.' | while IFS= read -r p; do
        p=${p#./}
        dir=$(dirname "$p"); base=$(basename "$p")
        if [ "$base" = .wh..wh..opq ]; then
            [ -d "$ROOT/$dir" ] && find "$ROOT/$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
        else
            rm -rf "$ROOT/$dir/${base#.wh.}"
        fi
    done
    $dec "$f" | (cd "$ROOT" && tar -xf -) || die 4 "unpacking layer $n ($digest) failed"
    find "$ROOT" -name '.wh.*' -exec rm -rf {} + 2>/dev/null || true
    echo "layer $n: $digest ($media)"
done

# --- the image's python and its site-packages --------------------------------------------
py=
for c in "$ROOT"/usr/bin/python3.[0-9]*; do
    case $c in *-config | *m) continue ;; esac
    [ -f "$c" ] && py=$(basename "$c") && break
done
[ -n "$py" ] || die 3 "no /usr/bin/python3.X in the image"
site=/usr/local/lib/$py/dist-packages
cudart=$site/nvidia/cuda_runtime/lib/libcudart.so.12
[ -f "$ROOT$cudart" ] || die 3 "$cudart is not in the image (is nvidia-cuda-runtime-cu12 installed?)"

# --- 3. the host driver ---------------------------------------------------------------
driver=${CUDA_DRIVER_LIB:-}
if [ -z "$driver" ] && command -v ldconfig >/dev/null 2>&1; then
    driver=$(ldconfig -p 2>/dev/null | grep 'libcuda\.so\.1 ' | grep 'x86-64' | head -n 1 | sed 's/.* => //') || true
fi
if [ -z "$driver" ]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/lib/wsl/lib /run/nvidia/driver/usr/lib/x86_64-linux-gnu; do
        if [ -e "$d/libcuda.so.1" ]; then driver=$d/libcuda.so.1; break; fi
    done
fi
if [ -z "$driver" ] || [ ! -e "$driver" ]; then
    echo "gpu-smoke: no CUDA driver found: libcuda.so.1 is neither in \`ldconfig -p\` nor in /usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/lib, /usr/local/nvidia/lib64, /usr/lib/wsl/lib (set CUDA_DRIVER_LIB=/path/libcuda.so.1)" >&2
    exit 2
fi
echo "driver: $driver"
ls /dev/nvidia* >/dev/null 2>&1 && echo "devices: $(ls /dev/nvidia* | tr '\n' ' ')" || echo "devices: no /dev/nvidia*"

# --- 4. run ----------------------------------------------------------------------------
# The check, run by the image's python. argv[1]: the rootfs prefix ("" in a chroot).
code='import ctypes, sys
root = sys.argv[1]
lib = root + sys.argv[2]
cudart = ctypes.CDLL(lib)
cudart.cudaGetErrorString.restype = ctypes.c_char_p
rt, drv, n = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
cudart.cudaRuntimeGetVersion(ctypes.byref(rt))
cudart.cudaDriverGetVersion(ctypes.byref(drv))
err = cudart.cudaGetDeviceCount(ctypes.byref(n))
print("python", sys.version.split()[0], "from", sys.executable)
print("libcudart", lib, "runtime", rt.value, "driver", drv.value)
print("cudaGetDeviceCount:", err, cudart.cudaGetErrorString(err).decode(), "count", n.value)
sys.exit(0 if err == 0 and n.value >= 1 else 1)'

# The image config's Env, one VAR=value per line.
image_env=$(printf '%s' "$config" | sed -n 's/.*"Env":\[\([^]]*\)\].*/\1/p' | sed 's/^"//; s/"$//; s/","/\
/g')

mode=${GPU_SMOKE_MODE:-auto}
if [ "$mode" = auto ]; then
    if [ "$(id -u)" = 0 ]; then mode=chroot; else mode=loader; fi
fi
dest=$ROOT/usr/local/nvidia/lib64
mkdir -p "$dest"

if [ "$mode" = chroot ]; then
    : >"$dest/libcuda.so.1"
    if mount --bind "$driver" "$dest/libcuda.so.1" 2>/dev/null; then
        mounted="$dest/libcuda.so.1"
        mount -o remount,bind,ro "$dest/libcuda.so.1" 2>/dev/null || true
        for d in dev proc sys; do
            mkdir -p "$ROOT/$d"
            mount --bind "/$d" "$ROOT/$d" || die 1 "cannot bind-mount /$d"
            mounted="$ROOT/$d $mounted"
        done
        ns=; [ -n "${GPU_SMOKE_NS:-}" ] && ns=" in a private mount namespace"
        echo "mode: chroot$ns (libcuda.so.1 bind-mounted at /usr/local/nvidia/lib64; /dev, /proc, /sys bound)"
        chroot_bin=$(command -v chroot) || die 1 "no chroot on this host"
        set -f
        set --
        old_ifs=$IFS; IFS='
'
        for kv in $image_env; do set -- "$@" "$kv"; done
        IFS=$old_ifs
        status=0
        env -i "$@" "$chroot_bin" "$ROOT" /usr/bin/python3 -c "$code" "" "$cudart" || status=$?
        exit "$status"
    fi
    rm -f "$dest/libcuda.so.1"
    echo "gpu-smoke: mount not permitted; falling back to the image's loader" >&2
    mode=loader
fi

[ "$mode" = loader ] || die 3 "GPU_SMOKE_MODE=$mode: expected chroot or loader"
cp "$driver" "$dest/libcuda.so.1"
ld=$ROOT/lib64/ld-linux-x86-64.so.2
[ -e "$ld" ] || die 3 "the image has no /lib64/ld-linux-x86-64.so.2"
libpath=$ROOT/usr/local/nvidia/lib64:$ROOT/usr/local/nvidia/lib:$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib
echo "mode: loader (libcuda.so.1 copied to /usr/local/nvidia/lib64; $ld --library-path $libpath)"
status=0
env -i LANG=C.UTF-8 PYTHONHOME="$ROOT/usr" PYTHONNOUSERSITE=1 \
    "$ld" --library-path "$libpath" "$ROOT/usr/bin/$py" -c "$code" "$ROOT" "$cudart" || status=$?
exit "$status"
