#!/usr/bin/env bash
# The GPU check's dry run, on a machine without a GPU (docs/gpu.md, "Running the GPU checks on a GPU machine
# without .NET"): `scripts/gpu-check.sh build`, then `scripts/gpu-check.sh run` into a fresh folder, which must
#   - exit 3 ("no GPU": the GPU phases not run, every other phase passed),
#   - leave at most 8 files (what the GPU machine brings back), summary.json and a readable logs.tar.gz among them,
#   - write a valid summary.json whose every GPU phase says "no GPU" and whose cpu-side tests ran and passed,
#   - take under 90 s (the run part; the build is not timed).
# Exit 0 when all of that holds, 1 when not, 77 (skipped) on a machine with a GPU, where a dry run is not one.
# .ci/run counts it as one check.
set -euo pipefail
cd "$(dirname "$0")/.."

limit_s=90
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out="$tmp/out"

if compgen -G '/dev/nvidia[0-9]*' > /dev/null; then
  echo "gpu-check dry run: skipped (this machine has a GPU)"
  exit 77
fi

if ! bash scripts/gpu-check.sh build > "$tmp/build.log" 2>&1; then
  tail -30 "$tmp/build.log"
  echo "gpu-check dry run: failed (scripts/gpu-check.sh build, output above)"
  exit 1
fi

start=$(date +%s)
rc=0
bash scripts/gpu-check.sh run "$out" > "$tmp/run.log" 2>&1 || rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$tmp/run.log"

problems=()
[ "$rc" -eq 3 ] || problems+=("exit status $rc, expected 3 (no GPU)")
[ "$elapsed" -lt "$limit_s" ] || problems+=("the run took $elapsed s, the limit is $limit_s s")
count=$(find "$out" -mindepth 1 | wc -l)
[ "$count" -le 8 ] || problems+=("$count files in the output folder, at most 8 come back")
if [ -f "$out/logs.tar.gz" ]; then
  tar -tzf "$out/logs.tar.gz" > /dev/null || problems+=("logs.tar.gz is not a readable gzip archive")
else
  problems+=("no logs.tar.gz")
fi
summary_problems=$(python3 - "$out/summary.json" <<'PY' || echo "summary.json could not be checked"
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"summary.json is not valid JSON: {e}")
    sys.exit()
if s.get("status") != "no GPU" or s.get("exit_code") != 3 or s.get("incomplete") is not False:
    print(f"summary.json: status {s.get('status')!r}, exit_code {s.get('exit_code')!r}, incomplete {s.get('incomplete')!r}")
phases = {p["phase"]: p for p in s.get("phases", [])}
for p in phases.values():
    if p["needs_gpu"] and p["status"] != "no GPU":
        print(f"GPU phase {p['phase']}: {p['status']!r}, expected 'no GPU'")
    if not p["needs_gpu"] and p["status"] not in ("passed", "skipped", "no GPU"):
        print(f"phase {p['phase']}: {p['status']!r}")
for name in ("machine", "dicc-info", "cpu-side", "probe-default", "kernels", "backend", "training", "gpu-step", "prebuilt"):
    if name not in phases:
        print(f"summary.json has no phase {name}")
cpu = phases.get("cpu-side", {})
if cpu.get("status") != "passed" or not cpu.get("total"):
    print(f"cpu-side: {cpu.get('status')!r} with {cpu.get('total')!r} tests")
if sorted(s.get("files", [])) != sorted(["console.log", "logs.tar.gz", "summary.json"]):
    print(f"summary.json lists the files {s.get('files')!r}")
PY
)
while IFS= read -r line; do [ -z "$line" ] || problems+=("$line"); done <<< "$summary_problems"

if [ ${#problems[@]} -eq 0 ]; then
  echo "gpu-check dry run: passed (run $elapsed s, exit $rc, $count files: $(ls "$out" | paste -sd' ' -))"
  exit 0
fi
printf '   %s\n' "${problems[@]}"
echo "gpu-check dry run: failed (${#problems[@]} problems above)"
exit 1
