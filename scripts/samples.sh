#!/usr/bin/env bash
# Packs Dicc.Engine into a local folder feed and builds and runs the samples against it, as a program outside this
# repository would use the package (docs/embedding.md, "The samples"). One step per call; .ci/run counts each as a check:
#   scripts/samples.sh pack        dotnet pack into artifacts/feed, then check the package: README, XML docs, licence,
#                                  symbols package, kernel sources embedded in the dll, fatbins as content
#   scripts/samples.sh clustering  build and run samples/ClusteringSample from the feed (host arrays; device buffers too
#                                  where a GPU is usable), then again on the emulated CUDA device (tests/EmulatedDevice,
#                                  which dotnet test builds); check that the fatbins landed in kernels/ beside the engine
#   scripts/samples.sh classify    train a tiny run with dicc (synthetic faces, two epochs, seconds: its answers are
#                                  near chance, it is there for the mechanics), then build and run
#                                  samples/ClassifySample from the feed on it: by run directory and by checkpoint file
#   scripts/samples.sh all         the three in order (the default)
# Exit 0 when the step passed, 1 when not. Each step's output goes to artifacts/samples/<step>.log and its tail is shown
# on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
feed=$root/artifacts/feed
work=$root/artifacts/samples
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
nupkg=$feed/Dicc.Engine.$version.nupkg
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
mkdir -p "$work"

fail() {
  echo "samples $step: FAILED: $*"
  [ -f "$work/$step.log" ] && tail -40 "$work/$step.log"
  exit 1
}

pack() {
  rm -rf "$feed" "$work/stub-kernels"
  mkdir -p "$feed"
  local kernels=$root/artifacts/kernels
  if ! compgen -G "$kernels/*.fatbin" > /dev/null; then
    # No fatbins from build-kernels.ps1 here (it needs the CUDA toolkit): pack two stand-ins to check that fatbins
    # travel as package content and land beside the engine. The kernel loader would ignore them: their recorded
    # source hash matches no kernel source, so NVRTC compiles the embedded sources instead.
    kernels=$work/stub-kernels
    mkdir -p "$kernels"
    echo "stand-in for a fatbin, made by scripts/samples.sh to check the package layout" > "$kernels/clustering.fatbin"
    echo "0000000000000000000000000000000000000000000000000000000000000000" > "$kernels/clustering.fatbin.sha256"
  fi
  dotnet pack src/Dicc.Engine -c Release -o "$feed" -p:DiccPrebuiltKernelsDir="$kernels" > "$work/pack.log" 2>&1 || fail "dotnet pack"
  [ -f "$nupkg" ] || fail "$nupkg was not written"
  [ -f "${nupkg%.nupkg}.snupkg" ] || fail "no symbols package beside $nupkg"
  local list
  list=$(unzip -Z1 "$nupkg")
  for entry in README.md lib/net10.0/Dicc.Engine.dll lib/net10.0/Dicc.Engine.xml; do
    grep -qx "$entry" <<< "$list" || fail "$entry is not in the package"
  done
  for fatbin in "$kernels"/*.fatbin; do
    grep -qx "contentFiles/any/any/kernels/$(basename "$fatbin")" <<< "$list" || fail "$(basename "$fatbin") is not package content"
  done
  local nuspec
  nuspec=$(unzip -p "$nupkg" Dicc.Engine.nuspec)
  grep -q "<version>$version</version>" <<< "$nuspec" || fail "the package version is not $version (Directory.Build.props)"
  grep -q '<license type="expression">' <<< "$nuspec" || fail "no licence expression"
  grep -q '<readme>README.md</readme>' <<< "$nuspec" || fail "no README"
  grep -q '<description>' <<< "$nuspec" || fail "no description"
  unzip -p "$nupkg" lib/net10.0/Dicc.Engine.dll > "$work/Dicc.Engine.dll"
  for source in "$root"/kernels/*.cu "$root"/kernels/*.cuh; do
    grep -qa "Dicc.Kernels.$(basename "$source")" "$work/Dicc.Engine.dll" || fail "kernel source $(basename "$source") is not embedded in the packaged dll"
  done
  grep -q "<DiccEngineVersion Condition=\"'\$(DiccEngineVersion)' == ''\">$version</DiccEngineVersion>" samples/Directory.Build.props \
    || fail "samples/Directory.Build.props does not use version $version"
  # A restore reuses an extracted package of the same version: drop ours so that the samples get the one just packed.
  rm -rf "$packages/dicc.engine/$version"
  echo "samples pack: ok ($(basename "$nupkg"), $(grep -c . <<< "$list") entries, symbols package beside it)"
}

need_feed() {
  [ -f "$nupkg" ] || fail "no package in $feed: run 'scripts/samples.sh pack' first"
}

clustering() {
  need_feed
  rm -rf samples/ClusteringSample/bin samples/ClusteringSample/obj
  dotnet run --project samples/ClusteringSample -c Release > "$work/clustering.log" 2>&1 || fail "the clustering sample"
  grep -q "^ok: a restored state gives the same pseudo-labels" "$work/clustering.log" || fail "the clustering sample did not check its state"
  grep -q "dicc-local" "$root/samples/NuGet.config" || fail "the samples do not restore from the local feed"
  grep -rq "ProjectReference" samples --include='*.csproj' && fail "a sample references the repository's projects"
  grep -q "\"Dicc.Engine/$version\"" samples/ClusteringSample/obj/project.assets.json || fail "the sample did not restore Dicc.Engine $version from the package"
  [ -f samples/ClusteringSample/bin/Release/net10.0/kernels/clustering.fatbin ] || fail "the package's fatbins are not in kernels/ beside the engine"
  cat "$work/clustering.log"
  # The device part once more on the emulated CUDA device (tests/EmulatedDevice, built by dotnet test): the sample's
  # own driver calls, DeviceClustering's kernels compiled by NVRTC, against the host reference.
  local emulator=$root/tests/Dicc.Emulated.Tests/bin/Release/net10.0/emulator/libdicc-emulated-cuda.so
  if [ -f "$emulator" ]; then
    DICC_CUDA_PATH=$emulator DICC_KERNEL_CACHE=off dotnet run --no-build --project samples/ClusteringSample -c Release \
      > "$work/clustering.log" 2>&1 || fail "the clustering sample on the emulated CUDA device"
    grep -q "^ok: the device's centres equal the host reference's" "$work/clustering.log" || fail "the device part did not run on the emulated CUDA device"
    grep "the device's" "$work/clustering.log" | tail -2 | sed 's/^/emulated device: /'
  elif [ -n "${CI:-}" ]; then
    fail "no emulated CUDA device at $emulator (dotnet test builds it; see its build.log)"
  else
    echo "(the emulated CUDA device is not built: run dotnet test first to run the device part on it)"
  fi
  echo "samples clustering: ok"
}

classify() {
  need_feed
  local dicc=$root/src/Dicc.Cli/bin/Release/net10.0/dicc.dll
  [ -f "$dicc" ] || dotnet build src/Dicc.Cli -c Release > "$work/classify.log" 2>&1 || fail "building the dicc command"
  rm -rf "$work/faces" "$work/run" samples/ClassifySample/bin samples/ClassifySample/obj
  {
    dotnet "$dicc" synth --out "$work/faces" --per-class 16 --val-per-class 2 --test-per-class 2 --seed 3 &&
    dotnet "$dicc" train --data "$work/faces" --arch vgg11 --width 0.125 --epochs 2 --batch 16 --lr 0.01 --device cpu \
      --out "$work/run" --quiet
  } > "$work/classify.log" 2>&1 || fail "training the run for the classify sample with dicc"
  dotnet run --project samples/ClassifySample -c Release -- "$work/run" "$work/faces/test/happy" "$work/faces/test/sad" --device cpu \
    > "$work/classify.log" 2>&1 || fail "the classify sample on the run directory"
  cat "$work/classify.log"
  dotnet run --no-build --project samples/ClassifySample -c Release -- "$work/run/checkpoints/last.safetensors" "$work/faces/test/surprise" \
    --device cpu > "$work/classify.log" 2>&1 || fail "the classify sample on a checkpoint file"
  cat "$work/classify.log"
  grep -q "^ok: the tensor path" "$work/classify.log" || fail "the classify sample did not compare its tensor path"
  echo "samples classify: ok"
}

step=${1:-all}
case "$step" in
  pack) pack ;;
  clustering) clustering ;;
  classify) classify ;;
  all) step=pack; pack; step=clustering; clustering; step=classify; classify ;;
  *) echo "usage: scripts/samples.sh [pack|clustering|classify|all]" >&2; exit 2 ;;
esac
