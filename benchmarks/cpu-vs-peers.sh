#!/usr/bin/env bash
# The CPU backend against its peers, in one run: the VGG19 training step against PyTorch (batch 32 and 128,
# alternating rounds) and the GEMM against OpenBLAS at its best core type and oneDNN, every figure with the load
# average. Run it on a quiet machine (the one-minute load average well below the core count); it takes about
# ten minutes on 2 cores. Prerequisites: scripts/install-prerequisites.sh --benchmarks (as root).
#
#   benchmarks/cpu-vs-peers.sh [output file]     (default: cpu-vs-peers-<host>-<date>.txt in the current folder)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-cpu-vs-peers-$(hostname)-$(date +%Y%m%d-%H%M).txt}
dotnet build -c Release benchmarks/Dicc.Benchmarks -v q -nologo >/dev/null
bench="dotnet benchmarks/Dicc.Benchmarks/bin/Release/net10.0/Dicc.Benchmarks.dll"
{
  echo "# cpu-vs-peers on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  load=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    echo "# WARNING: load average $load on $(nproc) cores: the machine is not quiet; the ratios of alternating rounds are the figures to compare."
  fi
  echo
  $bench step-vs-pytorch --batch 32,128 --rounds 7 --steps 2
  echo
  # The sides of gemm-quick share one process: the peers' idle threads must block at once after their round, or
  # they spin on a core through the next side's round (docs/benchmarks.md). With blocking the peers
  # measured as fast or faster on these shapes, except oneDNN on the 256 square (317 against 364 GFLOP/s).
  echo "# gemm-quick with OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 (the peers' idle threads block at once)"
  OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 $bench gemm-quick --seconds 2
  echo
  $bench gemm-quick --ours-only --filter square --threads 1 --seconds 2
  $bench gemm-quick --ours-only --filter square --seconds 2
  echo
  echo "# done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
