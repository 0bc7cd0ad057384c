#!/usr/bin/env bash
# Installs what building and testing Dicc needs on Debian 12 (run as root; a no-op where present):
#  - NVRTC 11.8 from Debian's non-free component: every CUDA kernel is compiled by the tests, GPU or not.
#  - OpenBLAS: the CPU GEMM benchmark's peer.
#  - NumPy (Debian's python3-numpy): tests cross-check .npy files and the clustering against NumPy.
#  - DejaVu fonts: the text of the run pictures (ScottPlot draws with the system's fonts).
# With --benchmarks also the CPU benchmarks' peers (not needed to build or test, so plain CI leaves them out):
#  - PyTorch (Debian's python3-torch, with oneDNN): the training-step peer of `step-vs-pytorch`.
#  - oneDNN (libdnnl2): dnnl_sgemm, the second GEMM peer of `gemm-quick`.
# The .NET 10 SDK must already be on PATH (https://dot.net); it is on our development and CI machines.
set -euo pipefail

benchmarks=0
for arg in "$@"; do
  case "$arg" in
    --benchmarks) benchmarks=1 ;;
    *) echo "usage: $0 [--benchmarks]" >&2; exit 2 ;;
  esac
done

need=()
[ -e /usr/lib/x86_64-linux-gnu/libnvrtc.so.11.2 ] || need+=(libnvrtc11.2 libnvrtc-builtins11.8)
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ] || need+=(libopenblas0-pthread)
/usr/bin/python3 -c "import numpy" 2>/dev/null || need+=(python3-numpy)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ "$benchmarks" -eq 1 ]; then
  /usr/bin/python3 -c "import torch" 2>/dev/null || need+=(python3-torch)
  [ -e /usr/lib/x86_64-linux-gnu/libdnnl.so.2 ] || need+=(libdnnl2)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing packages: ${need[*]}. Run this script as root (or install them with apt-get)." >&2
  exit 1
fi

src=/etc/apt/sources.list.d/debian-nonfree.sources
if [ ! -e "$src" ]; then
  cat > "$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
