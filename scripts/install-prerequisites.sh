#!/usr/bin/env bash
# Installs what building and testing Dicc needs on Debian 12 (run as root; a no-op where present):
#  - NVRTC 11.8 from Debian's non-free component: every CUDA kernel is compiled by the tests, GPU or not.
#  - OpenBLAS: the CPU GEMM benchmark's peer.
#  - NumPy (Debian's python3-numpy): tests cross-check .npy files and the clustering against NumPy.
#  - DejaVu fonts: the text of the run pictures (ScottPlot draws with the system's fonts).
#  - unzip: scripts/samples.sh reads the NuGet package it packs.
#  - g++ (with binutils): builds the emulated CUDA device that runs our kernels on the CPU in the tests.
#  - Slurm 22.05 (slurmctld, slurmd, slurm-client, slurmdbd), MUNGE and MariaDB's server and client cores: the
#    sweep test brings up a single-node Slurm cluster, with the accounting sacct reads, from a temporary folder
#    (docs/cli.md, "dicc sweep"). Their packages would start daemons with the machine's own configuration; a
#    policy-rc.d that answers 101 keeps them from doing so (the test starts its own), as Debian's invoke-rc.d
#    documents.
#  - GTK 3 and opencv-data: face detection (--detect-faces) uses OpenCV through OpenCvSharp, whose native library
#    (from NuGet) needs libgtk-3.so.0, and the Haar cascade haarcascade_frontalface_default.xml that opencv-data
#    puts in /usr/share/opencv4/haarcascades/. Without them everything else works (docs/data-formats.md).
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
command -v unzip > /dev/null || need+=(unzip)
{ command -v g++ && command -v readelf && command -v objcopy; } >/dev/null 2>&1 || need+=(g++ binutils)
for tool in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client slurmdbd:slurmdbd munged:munge mariadbd:mariadb-server-core \
            my_print_defaults:mariadb-client-core; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
[ -e /usr/lib/x86_64-linux-gnu/libgtk-3.so.0 ] || need+=(libgtk-3-0)
[ -e /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ] || need+=(opencv-data)
if [ "$benchmarks" -eq 1 ]; then
  /usr/bin/python3 -c "import torch" 2>/dev/null || need+=(python3-torch)
  [ -e /usr/lib/x86_64-linux-gnu/libdnnl.so.2 ] || need+=(libdnnl2)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing packages: ${need[*]}. Run this script as root (or install them with apt-get)." >&2
  exit 1
fi

# NVRTC is in Debian's non-free component: enable it in the machine's own Debian source entry (the project
# names no package host of its own).
src=/etc/apt/sources.list.d/debian.sources
if [ ! -e "$src" ]; then
  echo "No $src: enable Debian's non-free component in your APT sources, then run this again." >&2
  exit 1
fi
sed -i -E '/^Components:/{/(^|[[:space:]])non-free([[:space:]]|$)/!s/$/ non-free/}' "$src"
export DEBIAN_FRONTEND=noninteractive
# No package may start a service while installing (munge and Slurm would): where the machine has no
# policy-rc.d of its own, one that says 101 ("action forbidden") stands in for the install and is removed after.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
