#!/usr/bin/env bash
# GPU checks. The GPU machine has no .NET and no network, so they run in two halves (docs/gpu.md, "Running the
# GPU checks on a GPU machine without .NET"):
#
#   scripts/gpu-check.sh build          here, with the .NET SDK: Release build, then .gpu/ holds the test
#                                       binaries and the .NET runtime as gzip archives (under 64 MiB together).
#   scripts/gpu-check.sh run [OUT] [--deadline SECONDS] [--only PHASE,...]
#                                       on the GPU machine, from the repository root with .gpu/ beside it: the
#                                       phases below, most valuable first, within an overall deadline (default
#                                       480 s; DICC_GPU_CHECK_DEADLINE), each under its own time limit. OUT
#                                       (default $OUT, else out/gpu-check) ends up holding summary.json,
#                                       console.log and logs.tar.gz, never more than 8 files; summary.json is
#                                       rewritten after every phase and the logs are written as the phases run,
#                                       so a run killed from outside still leaves what finished.
#   scripts/gpu-check.sh local [OUT] [...]
#                                       a workstation with its own GPU and .NET: build, then run as above with
#                                       the installed dotnet.
#   scripts/gpu-check.sh hash FILE.cu   the source hash of a kernel module, as the engine computes it.
#
# Phases: machine, dicc-info, probe-default, cpu-side, runtime, kernels, cublas, cudnn, backend, training,
# parity-export-cuda, parity-export-cpu, parity-torch, parity-compare, gpu-step, pytorch-step, nvcc (started in
# the background at the beginning, collected here), prebuilt. Each ends "passed", "failed", "timeout", "no GPU"
# (a GPU phase on a machine without one: not run), "skipped" (no nvcc, no python, not in --only, or a step it
# needs failed), "not run" (the deadline came first) or "killed" (the script got TERM/INT/HUP while it ran).
#
# Exit code: 0 every phase passed (or was skipped); 1 a phase failed, timed out or was cut by the deadline;
# 2 the check itself could not run (usage, .gpu/ missing or unpacking failed); 3 no GPU: the GPU phases were not
# run and every other phase passed (a dry run on a machine without a GPU).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self="$root/scripts/gpu-check.sh"
gpu_dir="$root/.gpu"
tests_rel="tests/Dicc.Engine.Tests/bin/Release/net10.0"
bench_rel="benchmarks/Dicc.Benchmarks/bin/Release/net10.0"
cli_rel="src/Dicc.Cli/bin/Release/net10.0"
max_carry_bytes=$((64 * 1024 * 1024))  # what the device tool carries (all of .gpu/)
max_out_files=8                         # what the device tool brings back from OUT
log_cap_bytes=$((3 * 1024 * 1024))      # per log inside logs.tar.gz (head and tail kept), so the archive stays small
reserve_s=15                            # kept back from the deadline for the summary and the archive
min_phase_s=20                          # a phase is not started with less time left than this

die() { echo "gpu-check: $*" >&2; exit 2; }

# SHA-256 of common.cuh + "\n" + module, carriage returns removed (KernelSources.SourceHash).
source_hash() {
  { tr -d '\r' < "$root/kernels/common.cuh"; printf '\n'; tr -d '\r' < "$1"; } | sha256sum | cut -d' ' -f1
}

# ------------------------------------------------------------------------------------------------ build ---

cmd_build() {
  command -v dotnet >/dev/null || die "build needs the .NET SDK (dotnet on PATH)."
  command -v gzip >/dev/null || die "build needs gzip."
  echo "== Release build"
  (cd "$root" && dotnet build tests/Dicc.Engine.Tests -c Release -nologo -v quiet) || die "the Release build failed."
  (cd "$root" && dotnet build benchmarks/Dicc.Benchmarks -c Release -nologo -v quiet) || die "the benchmarks' Release build failed."
  (cd "$root" && dotnet build src/Dicc.Cli -c Release -nologo -v quiet) || die "the dicc command's Release build failed."

  mkdir -p "$gpu_dir"
  rm -f "$gpu_dir"/*.tar.xz  # the former xz archives: the GPU machine may have no xz
  local stage
  stage=$(mktemp -d)
  echo "== packing the test binaries (linux-x64 native assets only) and the GPU benchmark modes"
  cp -r "$root/$tests_rel" "$stage/tests"
  cp -r "$root/$cli_rel" "$stage/cli"
  local d
  for d in "$stage/tests/runtimes" "$stage/cli/runtimes"; do
    [ ! -d "$d" ] || find "$d" -mindepth 1 -maxdepth 1 -type d ! -name linux-x64 -exec rm -rf {} +
  done
  # OpenCV's native library (113 MB, face detection only) would not fit what the device tool carries; the GPU
  # checks never detect faces, and dicc says what is missing if asked to there.
  find "$stage" -name 'libOpenCvSharpExtern.so' -delete
  # gpu-step and parity-* need only these; without the deps.json the host loads what lies in the folder.
  mkdir -p "$stage/bench"
  local f
  for f in Dicc.Benchmarks.dll Dicc.Benchmarks.runtimeconfig.json Dicc.Engine.dll SixLabors.ImageSharp.dll \
           BenchmarkDotNet.dll BenchmarkDotNet.Annotations.dll; do
    cp "$root/$bench_rel/$f" "$stage/bench/" || die "the benchmark build lacks $f."
  done
  tar -C "$stage" -czf "$gpu_dir/dicc-tests.tar.gz" tests bench cli || die "packing the tests failed."
  rm -rf "$stage"

  local dotnet_root runtime_version
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  runtime_version=$(dotnet --list-runtimes | awk '/^Microsoft.NETCore.App 10\./ {v=$2} END {print v}')
  [ -n "$runtime_version" ] || die "no Microsoft.NETCore.App 10.x runtime in $dotnet_root."
  if [ ! -f "$gpu_dir/dotnet-rt.tar.gz" ] || [ "$(cat "$gpu_dir/dotnet-rt.version" 2>/dev/null || true)" != "$runtime_version" ]; then
    echo "== packing the .NET runtime $runtime_version from $dotnet_root"
    tar -C "$dotnet_root" -czf "$gpu_dir/dotnet-rt.tar.gz" dotnet host "shared/Microsoft.NETCore.App/$runtime_version" \
      || die "packing the runtime failed."
    echo "$runtime_version" > "$gpu_dir/dotnet-rt.version"
  fi

  # The device tool carries the whole folder: count everything in it, not just the archives.
  local total
  total=$(du -sb "$gpu_dir" | cut -f1)
  ls -l "$gpu_dir"
  [ "$total" -lt "$max_carry_bytes" ] \
    || die ".gpu/ holds $total bytes; the GPU machine accepts at most $max_carry_bytes (remove what is not ours)."
  echo "== ready: $total bytes in .gpu/. On the GPU machine, from the repository root (carry .gpu):"
  echo "   bash scripts/gpu-check.sh run"
}

# nvcc fatbins as build-kernels.ps1 builds them, one nvcc per module, all at once; started in the background by
# `run` (internal: _nvcc NVCC KDIR LOG). Exit 0 when every module built.
cmd_nvcc() {
  local nvcc=$1 kdir=$2 log=$3 f name pids=() ok=0
  mkdir -p "$kdir"
  for f in "$root"/kernels/*.cu; do
    name=$(basename "$f" .cu)
    echo "$(source_hash "$f")  $(basename "$f")" > "$kdir/$name.fatbin.sha256"
    (
      rc=0
      "$nvcc" -fatbin -std=c++17 -I "$root/kernels" \
        -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 \
        -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 \
        -gencode=arch=compute_90,code=compute_90 -o "$kdir/$name.fatbin" "$f" > "$kdir/$name.log" 2>&1 || rc=$?
      { echo "== $name.cu: nvcc exit $rc"; cat "$kdir/$name.log"; } >> "$log"
      exit "$rc"
    ) &
    pids+=($!)
  done
  for f in "${pids[@]}"; do wait "$f" || ok=1; done
  return "$ok"
}

# -------------------------------------------------------------------------------------------------- run ---

# Progress, with the seconds since the start (what each part took on the one run we get).
say() { printf '[%4ds] %s\n' "$(( $(now) - started ))" "$*" | tee -a "$out/console.log"; }
now() { printf '%(%s)T\n' -1; }

# A JSON string: backslashes and quotes escaped, control characters dropped, line ends as spaces.
json_string() {
  local s=${1//[$'\n\t']/ }
  [[ "$s" != *[$'\001'-$'\037']* ]] || s=$(printf '%s' "$s" | tr -d '\001-\037')  # tr only when needed (a fork each)
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Phase records (JSON objects, in order) and what the summary says about the machine.
phases=()
gpu_present=0 gpu_name="" driver="" library_dirs="" overall="running" started_iso="" started=0 deadline_s=480
only="" error_note=""

in_only() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# begin_phase NAME KIND LIMIT [SKIP_REASON]: decides whether the phase runs. KIND gpu needs the GPU. Returns 1
# (after recording why) when it does not run; otherwise sets phase_limit (the limit, cut to the deadline) and
# phase_start.
begin_phase() {
  local name=$1 kind=$2 limit=$3 skip=${4:-} left
  if ! in_only "$name"; then record "$name" "$kind" skipped null 0 0 '"note":"not in --only"'; return 1; fi
  if [ "$kind" = gpu ] && [ "$gpu_present" = 0 ]; then record "$name" "$kind" "no GPU" null 0 0; return 1; fi
  if [ -n "$skip" ]; then
    say "   $name: skipped ($skip)"
    record "$name" "$kind" skipped null 0 0 "\"note\":$(json_string "$skip")"
    return 1
  fi
  left=$((deadline_at - reserve_s - $(now)))
  if [ "$left" -lt "$min_phase_s" ]; then
    say "   $name: not run (the deadline leaves ${left} s)"
    record "$name" "$kind" "not run" null 0 0 '"note":"deadline"'
    return 1
  fi
  phase_limit=$(( limit < left ? limit : left ))
  phase_start=$(now)
  phase_kind=$kind
  return 0
}

# record NAME KIND STATUS EXIT_CODE SECONDS LIMIT [EXTRA_JSON_FIELDS]; then rewrites summary.json.
record() {
  local extra=${7:-}
  phases+=("$(printf '{"phase":"%s","needs_gpu":%s,"status":"%s","exit_code":%s,"seconds":%d,"limit_seconds":%d%s}' \
    "$1" "$([ "$2" = gpu ] && echo true || echo false)" "$3" "$4" "$5" "$6" "${extra:+,$extra}")")
  write_summary
}

# Runs a command under the phase's time limit, appending its output to LOG (in OUT, so it is there as it runs).
# Sets phase_rc, phase_seconds, phase_status (passed, failed or timeout) and phase_output (this phase's part of
# LOG). Runs in the background and waits, so that a TERM sent to this script is handled at once.
run_limited() {
  local name=$1 log=$2 offset
  shift 2
  offset=$(stat -c %s "$log")
  printf '==================== %s (limit %d s): %s\n' "$name" "$phase_limit" "$*" >> "$log"
  phase_rc=0
  timeout -k 10 "$phase_limit" "$@" < /dev/null >> "$log" 2>&1 &
  phase_pid=$! phase_name=$name phase_log=$log phase_offset=$offset
  wait "$phase_pid" || phase_rc=$?
  phase_pid=""
  printf '==================== %s: exit %d\n\n' "$name" "$phase_rc" >> "$log"
  phase_seconds=$(( $(now) - phase_start ))
  phase_output="$work/phase-$name.log"
  tail -c +$((offset + 1)) "$log" > "$phase_output"
  if [ "$phase_rc" -eq 124 ] || { [ "$phase_rc" -eq 137 ] && [ "$phase_seconds" -ge "$phase_limit" ]; }; then
    phase_status=timeout
  elif [ "$phase_rc" -eq 0 ]; then
    phase_status=passed
  else
    phase_status=failed
  fi
}

# run_tests NAME KIND LIMIT FILTER [VAR=VALUE...]: one test process per phase (a crash in one library cannot hide
# the others' results); output streamed into tests.log.
run_tests() {
  local name=$1 kind=$2 limit=$3 filter=$4
  shift 4
  begin_phase "$name" "$kind" "$limit" || return 0
  run_limited "$name" "$out/tests.log" env "$@" DOTNET_ROOT="$DOTNET_ROOT" "$DOTNET" "$tests_dir/Dicc.Engine.Tests.dll" \
    --filter "$filter" --output Detailed --no-ansi --progress off --results-directory "$work/test-results"
  local total failed passed skipped names
  total=$(awk '/^ *total:/ {print $2; exit}' "$phase_output"); total=${total:-0}
  failed=$(awk '/^ *failed:/ {print $2; exit}' "$phase_output"); failed=${failed:-0}
  passed=$(awk '/^ *succeeded:/ {print $2; exit}' "$phase_output"); passed=${passed:-0}
  skipped=$(awk '/^ *skipped:/ {print $2; exit}' "$phase_output"); skipped=${skipped:-0}
  if [ "$phase_status" = timeout ] && [ "$total" -eq 0 ]; then
    # Cut off before its summary: count the tests it finished.
    passed=$(grep -c '^passed ' "$phase_output" || true)
    failed=$(grep -c '^failed ' "$phase_output" || true)
    skipped=$(grep -c '^skipped ' "$phase_output" || true)
    total=$((passed + failed + skipped))
  fi
  # A test process that exits 0 having run nothing (a filter that no longer matches) has not passed.
  if [ "$phase_status" = passed ] && { [ "$failed" -ne 0 ] || [ "$total" -eq 0 ]; }; then phase_status=failed; fi
  say "   $name: $phase_status, exit $phase_rc, $passed passed, $failed failed, $skipped skipped ($phase_seconds s)"
  # (sed, not head, ends these pipelines: head would stop reading and pipefail count that as a failure)
  names=$( { grep -E '^ *failed [A-Za-z_]' "$phase_output" || true; } | sed -n 's/^ *failed //; s/ ([0-9.]* *[a-z]*)$//; 1,20p')
  [ -z "$names" ] || printf '%s\n' "$names" | sed 's/^/     failed /' | tee -a "$out/console.log"
  local list="" n
  while IFS= read -r n; do [ -z "$n" ] || list="${list:+$list,}$(json_string "$n")"; done <<< "$names"
  record "$name" "$kind" "$phase_status" "$phase_rc" "$phase_seconds" "$phase_limit" \
    "$(printf '"total":%d,"passed":%d,"failed":%d,"skipped":%d,"failed_tests":[%s]' "$total" "$passed" "$failed" "$skipped" "$list")"
}

# run_step NAME KIND LIMIT [SKIP_REASON] -- COMMAND...: a non-test phase, output streamed into bench.log.
# Returns 0 only when the step ran and passed (the parity steps depend on one another).
run_step() {
  local name=$1 kind=$2 limit=$3 skip=""
  shift 3
  if [ "$1" != "--" ]; then skip=$1; shift; fi
  shift
  begin_phase "$name" "$kind" "$limit" "$skip" || return 1
  run_limited "$name" "$out/bench.log" "$@"
  say "   $name: $phase_status, exit $phase_rc ($phase_seconds s)"
  record "$name" "$kind" "$phase_status" "$phase_rc" "$phase_seconds" "$phase_limit"
  [ "$phase_status" = passed ]
}

# Ours against PyTorch from the result files so far (python; null without it).
compare_benchmarks() {
  [ -n "$python" ] && [ -f "$results/gpu-step.json" ] || return 0
  "$python" - "$results/gpu-step.json" "$results/pytorch-step.json" "$results/parity.json" > "$work/benchmark.json" \
    2>> "$out/bench.log" <<'PY' || rm -f "$work/benchmark.json"
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
}

# A result file of a finished step: copied into bench.log too, so a killed run keeps it.
keep_result() { [ -f "$1" ] && { echo "---- $(basename "$1")"; cat "$1"; echo; } >> "$out/bench.log" || true; }

write_summary() {
  local exit_code=${1:-null} files=${2:-} benchmark=null
  [ -s "$work/benchmark.json" ] && benchmark=$(cat "$work/benchmark.json")
  local IFS=,
  printf '{"status":"%s","exit_code":%s,"incomplete":%s,"error":%s,"gpu":%s,"driver":%s,"started":"%s","seconds":%d,"deadline_seconds":%d,"library_dirs":%s,"driver_library":%s,"benchmark":%s,"phases":[%s],"files":[%s]}\n' \
    "$overall" "$exit_code" "$([ "$exit_code" = null ] && echo true || echo false)" \
    "$([ -n "$error_note" ] && json_string "$error_note" || echo null)" \
    "$(json_string "$gpu_name")" "$(json_string "$driver")" "$started_iso" "$(( $(now) - started ))" "$deadline_s" \
    "$(json_string "$library_dirs")" "$(json_string "${DICC_CUDA_PATH:-the system loader}")" "$benchmark" \
    "${phases[*]}" "$files" > "$out/.summary.json.tmp"
  mv -f "$out/.summary.json.tmp" "$out/summary.json"
}

# Copies a log, keeping its first third and last two thirds of log_cap_bytes when it is larger.
capped_copy() {
  local size
  size=$(stat -c %s "$1")
  # (return 0, not a bare return: called from the signal trap, a bare return gives the interrupted wait's 143)
  if [ "$size" -le "$log_cap_bytes" ]; then cp "$1" "$2"; return 0; fi
  { head -c $((log_cap_bytes / 3)) "$1"; printf '\n\n[... %d bytes cut by gpu-check.sh ...]\n\n' "$((size - log_cap_bytes))"
    tail -c $((log_cap_bytes * 2 / 3)) "$1"; } > "$2"
}

# DIR into ARCHIVE.tar.gz, read back once to be sure of it: tar and gzip where they are, else Python's tarfile.
make_targz() {
  if command -v tar >/dev/null && command -v gzip >/dev/null; then
    tar -C "$1" -czf "$2" . && tar -tzf "$2" > /dev/null
  elif [ -n "$python" ]; then
    "$python" -c 'import sys, tarfile
with tarfile.open(sys.argv[2], "w:gz") as t: t.add(sys.argv[1], arcname=".")
with tarfile.open(sys.argv[2], "r:gz") as t: t.getmembers()' "$1" "$2"
  else
    return 1
  fi
}

extract_targz() {
  if command -v tar >/dev/null && command -v gzip >/dev/null; then
    tar -C "$2" -xzf "$1"
  elif [ -n "$python" ]; then
    "$python" - "$1" "$2" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:gz") as t:
    # "tar" keeps the executable bits and the runtime's relative links; the archives are our own.
    t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
PY
  else
    return 1
  fi
}

# The end of a run, normal or not: the verdict, the logs packed into logs.tar.gz, the files counted, the
# summary written a last time. The streamed logs are removed once the archive is known good.
finish() {
  local verdict=$1 code p
  trap 'echo "gpu-check: another signal while finishing: ignored" >&2' TERM INT HUP
  if [ -n "${phase_pid:-}" ]; then
    # Stopped in the middle of a phase: stop it too, and say how far it got.
    kill -TERM "$phase_pid" 2>/dev/null || true
    local part="$work/phase-$phase_name.log" passed failed
    tail -c +$((phase_offset + 1)) "$phase_log" > "$part" || true
    passed=$(grep -c '^passed ' "$part" || true)
    failed=$(grep -c '^failed ' "$part" || true)
    record "$phase_name" "$phase_kind" killed null $(( $(now) - phase_start )) "$phase_limit" \
      "$(printf '"passed":%d,"failed":%d,"note":"stopped by a signal while running"' "$passed" "$failed")"
    phase_pid=""
  fi
  if [ -n "${nvcc_pid:-}" ] && kill -0 "$nvcc_pid" 2>/dev/null; then kill -TERM "$nvcc_pid" 2>/dev/null || true; fi
  if [ -z "$verdict" ]; then
    verdict=passed
    for p in "${phases[@]}"; do
      case "$p" in *'"status":"no GPU"'*) verdict="no GPU" ;; esac
    done
    for p in "${phases[@]}"; do
      case "$p" in *'"status":"failed"'* | *'"status":"timeout"'* | *'"status":"not run"'* | *'"status":"killed"'*) verdict=failed ;; esac
    done
  fi
  case "$verdict" in passed) code=0 ;; "no GPU") code=3 ;; error) code=2 ;; *) code=1 ;; esac
  overall=$verdict

  local pack="$work/pack" f
  mkdir -p "$pack"
  for f in machine.log tests.log bench.log nvcc.log console.log; do
    if [ -f "$out/$f" ]; then capped_copy "$out/$f" "$pack/$f"; fi
  done
  cp "$results"/*.json "$pack/" 2>/dev/null || true
  if make_targz "$pack" "$out/logs.tar.gz.tmp" && mv -f "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"; then
    rm -f "$out/machine.log" "$out/tests.log" "$out/bench.log" "$out/nvcc.log"
  else
    rm -f "$out/logs.tar.gz.tmp"
    say "   could not pack the logs: they stay as they are in $out"
  fi

  local files="" count=0
  write_summary "$code"  # so that summary.json is among the files counted
  for f in "$out"/* "$out"/.[!.]*; do
    [ -e "$f" ] || continue
    files="${files:+$files,}$(json_string "$(basename "$f")")"
    count=$((count + 1))
  done
  [ "$count" -le "$max_out_files" ] || say "   WARNING: $count files in $out; the GPU machine brings back at most $max_out_files."
  say "== $verdict (exit $code) after $(( $(now) - started )) s; $count files in $out:"
  (cd "$out" && ls -l | tail -n +2) | sed 's/^/   /' | tee -a "$out/console.log"
  write_summary "$code" "$files"
  rm -rf "$work"
  exit "$code"
}

on_signal() { say "== stopped by a signal: finishing with what is done"; finish killed; }

# The check itself cannot go on (exit 2); the summary says why.
fail_run() { error_note=$1; say "gpu-check: $1"; finish error; }

cmd_run() {
  local mode=$1 arg
  shift
  out=""
  deadline_s=${DICC_GPU_CHECK_DEADLINE:-480}
  only=${DICC_GPU_CHECK_ONLY:-}
  while [ $# -gt 0 ]; do
    arg=$1; shift
    case "$arg" in
      --deadline) [ $# -gt 0 ] || die "--deadline needs a number of seconds."; deadline_s=$1; shift ;;
      --only) [ $# -gt 0 ] || die "--only needs a comma-separated list of phases."; only=$1; shift ;;
      -*) die "unknown option $arg (see scripts/gpu-check.sh with no arguments)." ;;
      *) [ -z "$out" ] || die "one output folder only."; out=$arg ;;
    esac
  done
  [[ "$deadline_s" =~ ^[0-9]+$ ]] || die "the deadline must be a whole number of seconds, not '$deadline_s'."
  out=${out:-${OUT:-$root/out/gpu-check}}
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  # This run's files only: what an earlier run left would be counted against the 8 files brought back.
  rm -f "$out"/{summary.json,.summary.json.tmp,console.log,logs.tar.gz,logs.tar.gz.tmp,machine.log,tests.log,bench.log,nvcc.log}
  work=$(mktemp -d /tmp/dicc-gpu.XXXXXX)
  results="$work/results"
  mkdir -p "$results"
  started=$(now)
  started_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  deadline_at=$((started + deadline_s))
  phase_pid="" nvcc_pid=""
  : > "$out/console.log"; : > "$out/machine.log"; : > "$out/tests.log"; : > "$out/bench.log"
  python=$(ls /opt/torch/.venv/bin/python3 2>/dev/null || command -v python3 || true)
  trap on_signal TERM INT HUP
  write_summary
  say "== GPU check: deadline ${deadline_s} s, output in $out${only:+, only $only}"

  if [ "$mode" = packed ]; then
    local rt="$gpu_dir/dotnet-rt.tar.gz" tt="$gpu_dir/dicc-tests.tar.gz"
    [ -f "$rt" ] && [ -f "$tt" ] \
      || fail_run "$rt and $tt are missing: run 'scripts/gpu-check.sh build' where .NET is, and carry .gpu."
    mkdir -p "$work/dotnet"
    extract_targz "$rt" "$work/dotnet" || fail_run "unpacking $rt failed (tar with gzip, or python3, is needed)."
    extract_targz "$tt" "$work" || fail_run "unpacking $tt failed."
    export DOTNET_ROOT="$work/dotnet"
    DOTNET="$work/dotnet/dotnet"
    tests_dir="$work/tests"
    bench_dir="$work/bench"
    cli_dir="$work/cli"
  else
    DOTNET=$(command -v dotnet) || die "local mode needs dotnet on PATH."
    export DOTNET_ROOT=${DOTNET_ROOT:-$(dirname "$(readlink -f "$DOTNET")")}
    tests_dir="$root/$tests_rel"
    bench_dir="$root/$bench_rel"
    cli_dir="$root/$cli_rel"
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
  say "   ready in $(( $(now) - started )) s"

  # ---- 1. the machine: GPU, driver, the CUDA libraries there are -----------------------------------------
  say "== machine"
  phase_start=$(now)
  local smi_rc=0
  { timeout 30 nvidia-smi 2>&1 || smi_rc=$?; } >> "$out/machine.log"
  local listing
  listing=$(timeout 30 nvidia-smi -L 2>/dev/null || true)
  if [[ "$listing" == *"GPU "* ]]; then gpu_present=1; fi
  if compgen -G '/dev/nvidia[0-9]*' >/dev/null; then gpu_present=1; fi
  gpu_name=$( { timeout 30 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || true; } | sed -n 1p)
  driver=$( { timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null || true; } | sed -n 1p)
  {
    echo; uname -a
    echo; echo "libcuda as the system loader sees it:"; { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true; } | grep 'libcuda\.so' || echo "   (none)"
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  } >> "$out/machine.log"
  { find /opt/torch/.venv /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /usr/local/nvidia /usr/lib64 \
      \( -name 'libcuda.so*' -o -name 'libnvrtc*.so*' -o -name 'libcublas*.so*' -o -name 'libcudnn*.so*' \) 2>/dev/null || true; } \
    | sort -u > "$work/libraries.txt"
  { echo; echo "CUDA libraries found:"; cat "$work/libraries.txt"; } >> "$out/machine.log"
  # Folders of NVRTC, cuBLAS and cuDNN, handed to the engine after the default-probing phases. Never the
  # driver's: that stays with the system loader, so a compat/ or stubs/ libcuda cannot be picked (docs/gpu.md).
  if [ -n "${DICC_CUDA_LIBRARY_DIR:-}" ]; then
    library_dirs=$DICC_CUDA_LIBRARY_DIR
    say "   DICC_CUDA_LIBRARY_DIR was set by the caller: kept"
  else
    library_dirs=$( { grep -E '/lib(nvrtc\.so\.[0-9]+(\.[0-9]+)?|cublas\.so\.[0-9]+|cudnn\.so\.9)$' "$work/libraries.txt" || true; } \
      | { grep -Ev '/(compat|stubs)/' || true; } | xargs -r -n1 dirname | awk '!seen[$0]++' | paste -sd: -)
  fi
  if [ "$gpu_present" = 1 ]; then
    say "   ${gpu_name:-a GPU nvidia-smi does not name}, driver ${driver:-?}"
    record machine info "$([ "$smi_rc" -eq 0 ] && echo passed || echo failed)" "$smi_rc" $(( $(now) - phase_start )) 30
  else
    say "   no GPU: no nvidia-smi listing and no /dev/nvidia* (the GPU phases will say \"no GPU\")"
    record machine info "no GPU" "$smi_rc" $(( $(now) - phase_start )) 30
  fi
  say "   library folders for the engine: ${library_dirs:-none found}"

  # The fatbins build while the tests run (nvcc needs no GPU); collected at the end.
  local nvcc
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  if [ -n "$nvcc" ] && in_only nvcc; then
    { "$nvcc" --version 2>&1 || true; } > "$out/nvcc.log"
    local nvcc_limit=$((deadline_at - reserve_s - $(now)))
    [ "$nvcc_limit" -gt 0 ] || nvcc_limit=1
    timeout -k 5 "$nvcc_limit" nice -n 10 bash "$self" _nvcc "$nvcc" "$work/prebuilt" "$out/nvcc.log" \
      < /dev/null > /dev/null 2>&1 &
    nvcc_pid=$!
    nvcc_start=$(now)
    say "== nvcc fatbins: building in the background ($nvcc)"
  fi

  say "== dicc info (default library probing)"
  if begin_phase dicc-info info 60; then
    run_limited dicc-info "$out/machine.log" "$DOTNET" "$cli_dir/dicc.dll" info
    sed -n '2,31p' "$phase_output" | sed 's/^/   /' | tee -a "$out/console.log"
    say "   dicc-info: $phase_status, exit $phase_rc ($phase_seconds s)"
    record dicc-info info "$phase_status" "$phase_rc" "$phase_seconds" "$phase_limit"
  fi

  # ---- 2. our kernels and backend against the CPU ---------------------------------------------------------
  say "== tests (output in tests.log)"
  local cache="$work/kernel-cache" libs="DICC_CUDA_LIBRARY_DIR=$library_dirs"
  # The engine's own probing, nothing set: the report must show the device and every library.
  run_tests probe-default gpu 90 "FullyQualifiedName~Probe_ReportsTheDeviceAndEveryLibrary" \
    -u DICC_CUDA_LIBRARY_DIR -u DICC_CUDA_PATH -u DICC_NVRTC_PATH -u DICC_CUBLAS_PATH -u DICC_CUDNN_PATH DICC_REQUIRE_GPU=1
  # What needs no GPU but must hold there too: the ABI and register/shared-memory budget with this NVRTC, probing.
  # The GPU is required only where there is one (a dry run has none; NVRTC is then required only under CI).
  run_tests cpu-side info 180 "(FullyQualifiedName~Dicc.Engine.Tests.Cuda|FullyQualifiedName~Dicc.Engine.Tests.Backends)&Category!=Gpu" DICC_REQUIRE_GPU="$gpu_present" "$libs"
  # The rest with the libraries found above and a fresh kernel cache (so NVRTC compiles for this device).
  run_tests runtime gpu 120 "FullyQualifiedName~GpuDeviceTests|FullyQualifiedName~GpuMemoryTests|FullyQualifiedName~GpuStreamTests|FullyQualifiedName~GpuGraphTests" \
    DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests kernels gpu 180 "FullyQualifiedName~GpuKernelTests" DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests cublas gpu 120 "FullyQualifiedName~GpuBlasTests" DICC_REQUIRE_GPU=1 "$libs"
  run_tests cudnn gpu 150 "FullyQualifiedName~GpuDnnTests" DICC_REQUIRE_GPU=1 "$libs"
  # The CUDA backend: every op against the CPU, the contract tests, the clustering against the reference, then
  # whole training steps (20 VGG19 steps against the CPU, repeatability, no allocation after step 1).
  run_tests backend gpu 240 "FullyQualifiedName~CudaBackendOpTests|FullyQualifiedName~BackendContractTests|FullyQualifiedName~CudaClusteringTests" \
    DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"
  run_tests training gpu 300 "FullyQualifiedName~CudaTrainingTests" DICC_REQUIRE_GPU=1 DICC_KERNEL_CACHE="$cache" "$libs"

  # ---- 3. one step compared with PyTorch's, tensor by tensor ---------------------------------------------
  say "== parity with PyTorch and speed (output in bench.log)"
  local benv=(env DOTNET_ROOT="$DOTNET_ROOT" DICC_KERNEL_CACHE="$cache" "$libs") pdir="$work/parity" need=""
  local nopy=""
  [ -n "$python" ] || nopy="no python3"
  run_step parity-export-cuda gpu 120 -- "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-export --device cuda --method dicc --dir "$pdir" \
    || need="parity-export-cuda did not pass"
  run_step parity-export-cpu gpu 180 ${need:+"$need"} -- "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-export --device cpu --method dicc --dir "$pdir" \
    || need=${need:-"parity-export-cpu did not pass"}
  need=${need:-$nopy}
  run_step parity-torch gpu 120 ${need:+"$need"} -- "$python" "$root/benchmarks/pytorch/vgg_parity.py" --dir "$pdir" \
    || need=${need:-"parity-torch did not pass"}
  run_step parity-compare gpu 60 ${need:+"$need"} -- "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" parity-compare \
    --reference "$pdir/torch.safetensors" "$pdir/ours-cuda.safetensors" "$pdir/ours-cpu.safetensors" --out "$results/parity.json" || true
  keep_result "$results/parity.json"

  # ---- 4. speed against PyTorch in the same run ----------------------------------------------------------
  run_step gpu-step gpu 240 -- "${benv[@]}" "$DOTNET" "$bench_dir/Dicc.Benchmarks.dll" gpu-step --out "$results/gpu-step.json" || true
  keep_result "$results/gpu-step.json"
  run_step pytorch-step gpu 240 ${nopy:+"$nopy"} -- "$python" "$root/benchmarks/pytorch/vgg_step.py" --out "$results/pytorch-step.json" || true
  keep_result "$results/pytorch-step.json"
  compare_benchmarks
  if [ -s "$work/benchmark.json" ]; then say "   ours vs PyTorch: $(cat "$work/benchmark.json")"; write_summary; fi

  # ---- 5. the nvcc fatbins, then the kernel tests on them ------------------------------------------------
  say "== prebuilt fatbins"
  local built=""
  if [ -n "$nvcc_pid" ]; then
    local nvcc_rc=0 status
    wait "$nvcc_pid" || nvcc_rc=$?
    nvcc_pid=""
    case "$nvcc_rc" in 0) status=passed ;; 124 | 137) status=timeout ;; *) status=failed ;; esac
    # How long the build took: until the last module wrote its log.
    local took=$(( $(stat -c %Y "$out/nvcc.log") - nvcc_start ))
    say "   nvcc: $status, exit $nvcc_rc (built in $took s, in the background)"
    record nvcc info "$status" "$nvcc_rc" "$took" "$nvcc_limit"
    [ "$status" != passed ] || built=1
  elif ! in_only nvcc; then
    record nvcc info skipped null 0 0 '"note":"not in --only"'
  else
    say "   nvcc: skipped (no nvcc)"
    record nvcc info skipped null 0 0 '"note":"no nvcc"'
  fi
  if [ -n "$built" ]; then
    run_tests prebuilt gpu 180 "FullyQualifiedName~GpuKernelTests" \
      DICC_REQUIRE_GPU=1 DICC_EXPECT_PREBUILT=1 DICC_KERNELS_DIR="$work/prebuilt" DICC_KERNEL_CACHE=off "$libs"
  elif begin_phase prebuilt gpu 180 "no fatbins: nvcc absent or failed (nvcc.log)"; then :; fi

  finish ""
}

case "${1:-}" in
  build) cmd_build ;;
  run) shift; cmd_run packed "$@" ;;
  local)
    shift
    (cd "$root" && dotnet build tests/Dicc.Engine.Tests -c Release -nologo -v quiet) || die "the Release build failed."
    (cd "$root" && dotnet build benchmarks/Dicc.Benchmarks -c Release -nologo -v quiet) || die "the benchmarks' Release build failed."
  (cd "$root" && dotnet build src/Dicc.Cli -c Release -nologo -v quiet) || die "the dicc command's Release build failed."
    cmd_run local "$@" ;;
  hash)
    [ -f "${2:-}" ] || die "usage: gpu-check.sh hash kernels/<module>.cu"
    source_hash "$2" ;;
  _nvcc) shift; cmd_nvcc "$@" ;;
  *) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
