#!/usr/bin/env bash
# GPU checks. The GPU machine has no .NET and no network, so they run in two halves (docs/gpu.md):
#
#   scripts/gpu-check.sh build          here, with the .NET SDK: Release build, then .gpu/ holds the test
#                                       binaries and the .NET runtime as archives (under 64 MiB together).
#   scripts/gpu-check.sh run [OUT]      on the GPU machine, from the repository root with .gpu/ beside it:
#                                       unpacks the runtime, finds the CUDA libraries, runs `dicc info` and
#                                       the CUDA tests (one process per library or area), builds the kernels
#                                       with nvcc when it is there and runs the kernel tests on those fatbins,
#                                       times training steps against PyTorch (gpu-step, vgg_step.py), compares
#                                       one step with PyTorch's (parity-export, vgg_parity.py, parity-compare),
#                                       and writes machine.log, dicc-info.log, tests.log, nvcc.log, bench.log,
#                                       gpu-step.json, pytorch-step.json, parity.json and summary.json into
#                                       OUT (default: $OUT, else .gpu/out).
#   scripts/gpu-check.sh local [OUT]    a workstation with its own GPU and .NET: build, then run as above
#                                       with the installed dotnet.
#   scripts/gpu-check.sh hash FILE.cu   the source hash of a kernel module, as the engine computes it.
#
# Exit code: 0 when every phase passed, 1 otherwise (details in OUT/summary.json and the logs).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
gpu_dir="$root/.gpu"
tests_rel="tests/Dicc.Engine.Tests/bin/Release/net10.0"
bench_rel="benchmarks/Dicc.Benchmarks/bin/Release/net10.0"
max_bytes=$((64 * 1024 * 1024))

die() { echo "gpu-check: $*" >&2; exit 1; }

# SHA-256 of common.cuh + "\n" + module, carriage returns removed (KernelSources.SourceHash).
source_hash() {
  { tr -d '\r' < "$root/kernels/common.cuh"; printf '\n'; tr -d '\r' < "$1"; } | sha256sum | cut -d' ' -f1
}

cmd_build() {
  command -v dotnet >/dev/null || die "build needs the .NET SDK (dotnet on PATH)."
  command -v xz >/dev/null || die "build needs xz (apt-get install xz-utils)."
  echo "== Release build"
  (cd "$root" && dotnet build tests/Dicc.Engine.Tests -c Release -nologo -v quiet) || die "the Release build failed."
  (cd "$root" && dotnet build benchmarks/Dicc.Benchmarks -c Release -nologo -v quiet) || die "the benchmarks' Release build failed."

  mkdir -p "$gpu_dir"
  local stage
  stage=$(mktemp -d)
  echo "== packing the test binaries (linux-x64 native assets only) and the GPU benchmark modes"
  cp -r "$root/$tests_rel" "$stage/tests"
  find "$stage/tests/runtimes" -mindepth 1 -maxdepth 1 -type d ! -name linux-x64 -exec rm -rf {} + 2>/dev/null
  # gpu-step and parity-* need only these; without the deps.json the host loads what lies in the folder.
  mkdir -p "$stage/bench"
  local f
  for f in Dicc.Benchmarks.dll Dicc.Benchmarks.runtimeconfig.json Dicc.Engine.dll SixLabors.ImageSharp.dll \
           BenchmarkDotNet.dll BenchmarkDotNet.Annotations.dll; do
    cp "$root/$bench_rel/$f" "$stage/bench/" || die "the benchmark build lacks $f."
  done
  tar -C "$stage" -cJf "$gpu_dir/dicc-tests.tar.xz" tests bench || die "packing the tests failed."
  rm -rf "$stage"

  local dotnet_root runtime_version
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  runtime_version=$(dotnet --list-runtimes | awk '/^Microsoft.NETCore.App 10\./ {v=$2} END {print v}')
  [ -n "$runtime_version" ] || die "no Microsoft.NETCore.App 10.x runtime in $dotnet_root."
  if [ ! -f "$gpu_dir/dotnet-rt.tar.xz" ] || [ "$(cat "$gpu_dir/dotnet-rt.version" 2>/dev/null)" != "$runtime_version" ]; then
    echo "== packing the .NET runtime $runtime_version from $dotnet_root (about a minute)"
    tar -C "$dotnet_root" -cJf "$gpu_dir/dotnet-rt.tar.xz" dotnet host "shared/Microsoft.NETCore.App/$runtime_version" \
      || die "packing the runtime failed."
    echo "$runtime_version" > "$gpu_dir/dotnet-rt.version"
  fi

  local total
  total=$(du -cb "$gpu_dir/dicc-tests.tar.xz" "$gpu_dir/dotnet-rt.tar.xz" | tail -1 | cut -f1)
  ls -l "$gpu_dir"/*.tar.xz
  [ "$total" -lt "$max_bytes" ] || die "the archives take $total bytes; the GPU machine accepts at most $max_bytes."
  echo "== ready: $total bytes in .gpu/. On the GPU machine, from the repository root (carry .gpu):"
  echo "   bash scripts/gpu-check.sh run"
}

# Runs the test executable with a filter (one process per phase, so a crash in one library cannot hide the
# others' results); appends its output to $out/tests.log and its counts to $phases.
run_tests() {
  local name=$1 filter=$2
  shift 2
  local start end rc log="$work/$name.log"
  start=$(date +%s)
  env "$@" DOTNET_ROOT="$DOTNET_ROOT" "$DOTNET" "$tests_dir/Dicc.Engine.Tests.dll" --filter "$filter" \
    --output Detailed --no-ansi --progress off --results-directory "$work/results" > "$log" 2>&1
  rc=$?
  end=$(date +%s)
  { echo "==================== $name: --filter \"$filter\" $* (exit $rc)"; cat "$log"; echo; } >> "$out/tests.log"
  local total failed passed skipped
  total=$(awk '/^ *total:/ {print $2; exit}' "$log"); total=${total:-0}
  failed=$(awk '/^ *failed:/ {print $2; exit}' "$log"); failed=${failed:-0}
  passed=$(awk '/^ *succeeded:/ {print $2; exit}' "$log"); passed=${passed:-0}
  skipped=$(awk '/^ *skipped:/ {print $2; exit}' "$log"); skipped=${skipped:-0}
  echo "   $name: exit $rc, $passed passed, $failed failed, $skipped skipped ($((end - start)) s)"
  grep -E '^ *failed [A-Za-z_]' "$log" | sed 's/^ */     /' | head -20
  phases="${phases:+$phases,}$(printf '{"phase":"%s","exit_code":%d,"total":%d,"passed":%d,"failed":%d,"skipped":%d,"seconds":%d}' \
    "$name" "$rc" "$total" "$passed" "$failed" "$skipped" "$((end - start))")"
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$total" -gt 0 ] || status=1
}

# Runs one non-test phase with a time limit; its output goes to $out/bench.log, its exit code and time to $phases.
run_step() {
  local name=$1 limit=$2
  shift 2
  local start end rc
  start=$(date +%s)
  { echo "==================== $name: $*"; } >> "$out/bench.log"
  timeout "$limit" "$@" >> "$out/bench.log" 2>&1
  rc=$?
  end=$(date +%s)
  echo "   $name: exit $rc ($((end - start)) s)"
  phases="${phases:+$phases,}$(printf '{"phase":"%s","exit_code":%d,"seconds":%d}' "$name" "$rc" "$((end - start))")"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n' ' ')"; }

cmd_run() {
  local mode=$1
  out=${2:-${OUT:-$gpu_dir/out}}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  work=$(mktemp -d /tmp/dicc-gpu.XXXXXX)
  status=0
  phases=""
  local started
  started=$(date +%s)
  echo "== GPU check; logs in $out"

  if [ "$mode" = packed ]; then
    [ -f "$gpu_dir/dotnet-rt.tar.xz" ] && [ -f "$gpu_dir/dicc-tests.tar.xz" ] \
      || die "$gpu_dir/dotnet-rt.tar.xz and dicc-tests.tar.xz are missing: run 'scripts/gpu-check.sh build' where .NET is, and carry .gpu."
    command -v xz >/dev/null || die "unpacking needs xz (xz-utils)."
    mkdir -p "$work/dotnet"
    tar -C "$work/dotnet" -xJf "$gpu_dir/dotnet-rt.tar.xz" || die "unpacking the .NET runtime failed."
    tar -C "$work" -xJf "$gpu_dir/dicc-tests.tar.xz" || die "unpacking the tests failed."
    export DOTNET_ROOT="$work/dotnet"
    DOTNET="$work/dotnet/dotnet"
    tests_dir="$work/tests"
    bench_dir="$work/bench"
  else
    DOTNET=$(command -v dotnet) || die "local mode needs dotnet on PATH."
    export DOTNET_ROOT=${DOTNET_ROOT:-$(dirname "$(readlink -f "$DOTNET")")}
    tests_dir="$root/$tests_rel"
    bench_dir="$root/$bench_rel"
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

  echo "== machine"
  { nvidia-smi 2>&1 || echo "nvidia-smi failed"; echo; uname -a; } > "$out/machine.log"
  local gpu_name driver
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  echo "   ${gpu_name:-no GPU reported}, driver ${driver:-?}"

  echo "== CUDA libraries on this machine"
  find /opt/torch/.venv /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /usr/local/nvidia /usr/lib64 \
    \( -name 'libcuda.so*' -o -name 'libnvrtc*.so*' -o -name 'libcublas*.so*' -o -name 'libcudnn*.so*' \) \
    2>/dev/null | sort -u > "$work/libraries.txt"
  { echo; echo "CUDA libraries found:"; cat "$work/libraries.txt"; } >> "$out/machine.log"
  sed 's/^/   /' "$work/libraries.txt" | head -40
  # Folders holding a main library: handed to the engine only in the phases after the default-probing one.
  local dirs
  dirs=$(grep -E '/lib(cuda\.so\.1|nvrtc\.so\.[0-9]+(\.[0-9]+)?|cublas\.so\.[0-9]+|cudnn\.so\.9)$' "$work/libraries.txt" \
    | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd: -)

  echo "== dicc info (default library probing)"
  (cd "$tests_dir" && "$DOTNET" dicc.dll info) > "$out/dicc-info.log" 2>&1
  local info_rc=$?
  sed 's/^/   /' "$out/dicc-info.log" | head -30

  echo "== tests (output in tests.log)"
  : > "$out/tests.log"
  # 1. The engine's own probing, nothing set: the report must show the device and every library.
  run_tests probe-default "FullyQualifiedName~Probe_ReportsTheDeviceAndEveryLibrary" DICC_REQUIRE_GPU=1
  # 2. The CUDA tests with the libraries found above and a fresh kernel cache (so NVRTC compiles for this device).
  local cache="$work/kernel-cache" libs="DICC_CUDA_LIBRARY_DIR=$dirs"
  run_tests cpu-side "FullyQualifiedName~Dicc.Engine.Tests.Cuda&Category!=Gpu" DICC_REQUIRE_GPU=1 "$libs"
  run_tests runtime "FullyQualifiedName~GpuDeviceTests|FullyQualifiedName~GpuMemoryTests|FullyQualifiedName~GpuStreamTests|FullyQualifiedName~GpuGraphTests" \
    DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests kernels "FullyQualifiedName~GpuKernelTests" DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests cublas "FullyQualifiedName~GpuBlasTests" DICC_REQUIRE_GPU=1 "$libs"
  run_tests cudnn "FullyQualifiedName~GpuDnnTests" DICC_REQUIRE_GPU=1 "$libs"
  # 3. The CUDA backend: every op against the CPU, the contract tests, the clustering against the reference,
  #    then whole training steps (20 VGG19 steps against the CPU, repeatability, no allocation after step 1).
  run_tests backend "FullyQualifiedName~CudaBackendOpTests|FullyQualifiedName~BackendContractTests|FullyQualifiedName~CudaClusteringTests" \
    DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests training "FullyQualifiedName~CudaTrainingTests" DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"

  # 4. Speed against PyTorch in the same run, and one step compared with PyTorch's tensor by tensor.
  local python
  python=$(ls /opt/torch/.venv/bin/python3 2>/dev/null || command -v python3 || true)
  local benv=(env DOTNET_ROOT="$DOTNET_ROOT" DICC_KERNEL_CACHE="$cache" "$libs")
  : > "$out/bench.log"
  run_step gpu-step 240 "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" gpu-step --out "$out/gpu-step.json"
  if [ -n "$python" ]; then
    run_step pytorch-step 240 "$python" "$root/benchmarks/pytorch/vgg_step.py" --out "$out/pytorch-step.json"
  else
    echo "   no python3: the PyTorch comparison is skipped"
  fi
  local pdir="$work/parity"
  if run_step parity-export-cuda 120 "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-export --device cuda --method dicc --dir "$pdir" \
     && run_step parity-export-cpu 120 "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-export --device cpu --method dicc --dir "$pdir" \
     && [ -n "$python" ] && run_step parity-torch 120 "$python" "$root/benchmarks/pytorch/vgg_parity.py" --dir "$pdir"; then
    run_step parity-compare 60 "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-compare \
      --reference "$pdir/torch.safetensors" "$pdir/ours-cuda.safetensors" "$pdir/ours-cpu.safetensors" --out "$out/parity.json"
  fi

  # 5. nvcc fatbins built as build-kernels.ps1 builds them, then the kernel tests on those.
  local nvcc
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  if [ -n "$nvcc" ]; then
    local kdir="$work/prebuilt" ok=1
    mkdir -p "$kdir"
    "$nvcc" --version > "$out/nvcc.log" 2>&1
    # One nvcc per module, all at once (they are independent; the machine has many cores).
    local pids=() f
    for f in "$root"/kernels/*.cu; do
      local name
      name=$(basename "$f" .cu)
      "$nvcc" -fatbin -std=c++17 -I "$root/kernels" \
        -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 \
        -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 \
        -gencode=arch=compute_90,code=compute_90 -o "$kdir/$name.fatbin" "$f" > "$kdir/$name.log" 2>&1 &
      pids+=($!)
      echo "$(source_hash "$f")  $(basename "$f")" > "$kdir/$name.fatbin.sha256"
    done
    for pid in "${pids[@]}"; do wait "$pid" || ok=0; done
    cat "$kdir"/*.log >> "$out/nvcc.log" 2>/dev/null
    if [ "$ok" = 1 ]; then
      run_tests prebuilt "FullyQualifiedName~GpuKernelTests" \
        DICC_REQUIRE_GPU=1 DICC_EXPECT_PREBUILT=1 DICC_KERNELS_DIR="$kdir" DICC_KERNEL_CACHE=off "$libs"
    else
      echo "   nvcc failed: see nvcc.log"
      status=1
      phases="${phases:+$phases,}{\"phase\":\"prebuilt\",\"exit_code\":1,\"error\":\"nvcc failed, see nvcc.log\"}"
    fi
  else
    echo "   no nvcc: the prebuilt-fatbin phase is skipped"
  fi

  local ended comparison="null"
  ended=$(date +%s)
  if [ -n "$python" ] && [ -f "$out/gpu-step.json" ]; then
    comparison=$("$python" - "$out/gpu-step.json" "$out/pytorch-step.json" "$out/parity.json" <<'PY' 2>>"$out/bench.log" || echo null
import json, os, sys
ours = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {"results": []}
peer = {(r["method"], r["batch"]): r for r in torch["results"]}
rows = []
for r in ours["results"]:
    p = peer.get((r["method"], r["batch"]))
    row = {"method": r["method"], "batch": r["batch"], "ours_ms": r["ms_per_step"], "pytorch_ms": p["ms_per_step"] if p else None,
           "ours_over_pytorch": round(r["ms_per_step"] / p["ms_per_step"], 3) if p else None}
    if "cluster_ms" in r:
        row.update(ours_cluster_ms=r["cluster_ms"], ours_cluster_share=r["cluster_share_of_step"],
                   pytorch_cluster_ms=p.get("cluster_ms") if p else None)
    rows.append(row)
parity = json.load(open(sys.argv[3])) if os.path.exists(sys.argv[3]) else None
summary = {"device": ours.get("device"), "precision": ours.get("precision"), "steps": ours.get("steps"), "rows": rows}
if parity is not None:
    summary["parity_ok"] = parity.get("ok")
    summary["parity_worst"] = {k: {"worst_tensor": v.get("worst_tensor"), "worst_over_tolerance": v.get("worst_over_tolerance")}
                               for k, v in parity.items() if isinstance(v, dict)}
print(json.dumps(summary))
PY
)
    echo "== ours vs PyTorch: $comparison"
  fi
  {
    printf '{"status":"%s","gpu":%s,"driver":%s,"seconds":%d,' "$([ $status -eq 0 ] && echo passed || echo failed)" \
      "$(json_string "${gpu_name:-}")" "$(json_string "${driver:-}")" "$((ended - started))"
    printf '"dicc_info_exit_code":%d,"library_dirs":%s,"benchmark":%s,"phases":[%s]}\n' "$info_rc" "$(json_string "$dirs")" \
      "${comparison:-null}" "$phases"
  } > "$out/summary.json"
  cat "$out/summary.json"
  rm -rf "$work"
  exit "$status"
}

case "${1:-}" in
  build) cmd_build ;;
  run) cmd_run packed "${2:-}" ;;
  local)
    (cd "$root" && dotnet build tests/Dicc.Engine.Tests -c Release -nologo -v quiet) || die "the Release build failed."
    cmd_run local "${2:-}" ;;
  hash)
    [ -f "${2:-}" ] || die "usage: gpu-check.sh hash kernels/<module>.cu"
    source_hash "$2" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
