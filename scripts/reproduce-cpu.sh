#!/usr/bin/env bash
# DICC against its baselines on the real FER2013 at CPU scale (docs/results.md): the paper's long-tailed training sets
# (beta 10 and beta 100), rules none / resample / reweight, the baseline, DICC with the paper's settings and DICC with
# the variant chosen on validation, the long-tail methods of docs/method.md (focal, class-balanced focal, LDAM-DRW,
# balanced softmax, logit adjustment as a loss and post hoc, cRT; rule none, since each is its own answer to the
# imbalance), 3 seeds each, plus the full FER2013 baseline as a sanity anchor; then the `dicc compare` tables.
#
# Scale: VGG11 at width 1/8 on 44x44 crops, 8 epochs, batch 32, SGD lr 0.01 with a cosine schedule, wd 5e-4,
# dropout 0.2, model selection on validation (PublicTest) balanced accuracy, test on PrivateTest.
# Estimate (measured on the shared 2-core development machine with a load average of 15-30 while other engineers
# built and tested; docs/results.md): 3-8 min per long-tailed run, 12-20 min per full-FER2013 run; 54 long-tailed runs
# and 3 anchors: about 5-9 hours in one stream, less when the machine is quiet. With only occasional builds beside it a
# long-tailed run took 35-82 s (cRT 8-13 s): the 42 runs of the long-tail methods took 33 minutes.
#
# Resumable: a finished run (result.json) is skipped, an interrupted one continues with `dicc train --resume`, so
# running the script again after a stop continues where it stopped. Runs go one after another. Everything it writes
# is under OUT (default runs/reproduce-cpu, git-ignored), its log in OUT/reproduce.log.
#
# Usage: scripts/reproduce-cpu.sh [--out DIR] [--data FER2013_DIR] [--only METHOD,...] [--seeds "1 2 3"]
#   METHOD: baseline, dicc-paper, dicc-best, focal, focal-cb, ldam-drw, balanced-softmax, logit-adjusted, posthoc-la,
#   crt (needs the baseline of its seed, rule none), anchor; default all.
#   FER2013_DIR: the Kaggle image folders (train/<class>, test/<class>/{PublicTest_*,PrivateTest_*});
#   default ../shared/data/fer2013 beside the repository, or $DICC_FER2013.
#   --only runs a subset of the methods (two invocations with different --only may run side by side).
# Print the table at any time: dicc compare OUT/runs --metric balanced-accuracy
set -euo pipefail

# The whole script is one function, read before it runs: editing the file during a long run cannot change that run.
main() {
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO/runs/reproduce-cpu"
DATA="${DICC_FER2013:-$REPO/../shared/data/fer2013}"
ONLY="baseline,dicc-paper,dicc-best,focal,focal-cb,ldam-drw,balanced-softmax,logit-adjusted,posthoc-la,crt,anchor"
SEEDS="1 2 3"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --seeds) SEEDS="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ! -d "$DATA/train" ] || [ ! -d "$DATA/test" ]; then
    echo "error: $DATA: no FER2013 image folders (train/, test/) there; pass --data or set DICC_FER2013" >&2
    exit 2
fi
mkdir -p "$OUT/runs" "$OUT/data"
LOG="$OUT/reproduce.log"
log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') [load $(cut -d' ' -f1-3 /proc/loadavg)] $*" | tee -a "$LOG"; }

# The CLI, built once and copied, so that rebuilding the working tree does not change a running experiment.
DICC="$OUT/bin/dicc"
if [ ! -x "$DICC" ]; then
    log "building the CLI"
    dotnet build -c Release "$REPO/src/Dicc.Cli" >> "$LOG" 2>&1
    mkdir -p "$OUT/bin"
    cp -r "$REPO/src/Dicc.Cli/bin/Release/net10.0/." "$OUT/bin/"
fi

# The model, optimiser and selection every run shares.
COMMON=(--arch vgg11 --width 0.125 --crop 44 --epochs 8 --batch 32 --lr 0.01 --schedule cosine:8 --wd 5e-4 --dropout 0.2
        --select-on balanced-accuracy --device cpu)
# DICC as the paper specifies it: its Table 5 subclass plan for the beta, interval partition, EMA decay 0.99, MLP mapping.
paper_flags() { echo --method dicc --subclasses "fer2013-b$1" --partition interval --ema-decay 0.99 --mapping mlp; }
# The variant chosen on validation (PublicTest) in the pilots of docs/results.md: the sqrt plan, rank partition, the
# paper's MLP mapping, after a warm-up of 2 epochs of plain class cross-entropy.
BEST_FLAGS=(--method dicc --subclasses sqrt --partition rank --mapping mlp --warmup-epochs 2)
# The long-tail methods at their authors' defaults (docs/method.md, "Long-tail losses"), rule none. LDAM-DRW: the cosine
# head its scale s = 30 assumes, re-weighting for the last fifth of training as Cao et al. (160 of 200 epochs: here
# from epoch 7 of 8). cRT (Kang et al.): the seed's baseline backbone frozen, a fresh head trained for 4 epochs with
# class-balanced sampling.
CRT_COMMON=(--arch vgg11 --width 0.125 --crop 44 --epochs 4 --batch 32 --lr 0.01 --schedule cosine:4 --wd 5e-4 --dropout 0.2
            --select-on balanced-accuracy --device cpu)
declare -A LT_FLAGS=(
    [focal]="--loss focal --focal-gamma 2"
    [focal-cb]="--loss focal --focal-gamma 2 --cb-weights"
    [ldam-drw]="--loss ldam --head cosine --drw-epoch 7"
    [balanced-softmax]="--loss balanced-softmax"
    [logit-adjusted]="--loss logit-adjusted --tau 1"
    [posthoc-la]="--posthoc-tau 1"
)

for beta in 10 100; do
    manifest="$OUT/data/fer2013-b$beta.manifest"
    if [ ! -f "$manifest" ]; then
        log "long-tailed subset beta $beta"
        "$DICC" longtail --data "$DATA" --counts "fer2013-beta$beta" --seed 0 --out "$manifest" >> "$LOG" 2>&1
    fi
done

# One run: skipped when finished, resumed when interrupted, started otherwise.
run() {
    local dir="$1"; shift
    if [ -f "$dir/result.json" ]; then return 0; fi
    if [ -f "$dir/checkpoints/last.safetensors" ]; then
        log "resume $dir"
        "$DICC" train --resume "$dir" --device cpu >> "$LOG" 2>&1 || { log "FAILED $dir (exit $?)"; return 0; }
    else
        rm -rf "$dir" # a run stopped before its first checkpoint has nothing to keep
        log "start  $dir"
        "$DICC" train "$@" --out "$dir" >> "$LOG" 2>&1 || { log "FAILED $dir (exit $?)"; return 0; }
    fi
    log "done   $dir"
}
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

log "reproduce-cpu: out $OUT, data $DATA, only $ONLY, seeds $SEEDS"
for seed in $SEEDS; do
    for beta in 10 100; do
        for rule in none resample reweight; do
            base="$OUT/runs/b$beta/$rule"
            data=(--data "$OUT/data/fer2013-b$beta.manifest" --dataset-name FER2013-LT --rule "$rule" --seed "$seed" "${COMMON[@]}")
            if wanted baseline; then run "$base/baseline/seed-$seed" "${data[@]}" --method baseline; fi
            # shellcheck disable=SC2046 # the paper's flags are words without spaces
            if wanted dicc-paper; then run "$base/dicc-paper/seed-$seed" "${data[@]}" $(paper_flags "$beta"); fi
            if wanted dicc-best; then run "$base/dicc-best/seed-$seed" "${data[@]}" "${BEST_FLAGS[@]}"; fi
            if [ "$rule" != none ]; then continue; fi
            for method in focal focal-cb ldam-drw balanced-softmax logit-adjusted posthoc-la; do
                # shellcheck disable=SC2086 # the flags are words without spaces
                if wanted "$method"; then run "$base/$method/seed-$seed" "${data[@]}" --method baseline ${LT_FLAGS[$method]}; fi
            done
            if wanted crt && [ ! -f "$base/baseline/seed-$seed/result.json" ]; then
                log "skip   $base/crt/seed-$seed: cRT starts from the baseline of its seed, $base/baseline/seed-$seed, which has not finished"
            elif wanted crt; then
                run "$base/crt/seed-$seed" --init-from "$base/baseline/seed-$seed" --freeze backbone --reset-head \
                    --data "$OUT/data/fer2013-b$beta.manifest" --dataset-name FER2013-LT --rule resample --seed "$seed" \
                    "${CRT_COMMON[@]}" --method baseline
            fi
        done
    done
done
if wanted anchor; then
    for seed in $SEEDS; do
        run "$OUT/runs/full/none/baseline/seed-$seed" --data "$DATA" --dataset-name FER2013-full --rule none --seed "$seed" "${COMMON[@]}" --method baseline
    done
fi

for metric in accuracy balanced-accuracy few-shot-accuracy macro-f1 ece; do
    "$DICC" compare "$OUT/runs" --metric "$metric" --markdown "$OUT/table-$metric.md" --csv "$OUT/table-$metric.csv" >> "$LOG" 2>&1 || true
done
log "finished; tables in $OUT/table-*.md"
cat "$OUT/table-balanced-accuracy.md" 2>/dev/null || true
}
main "$@"
