#!/usr/bin/env bash
# The GPU check in one device call: at most GPU_CHECK_SECONDS (570) of wall time on one H100/H200,
# every result written under OUT_DIR as it comes, so that whatever finished is kept if time runs out.
#   1. the `cuda` tests                       -> pytest-cuda.log
#   2. the benchmark of cnn, vgg16, resnet50  -> bench-<model>.json (few steps)
#   3. 1, 4 and 8 CNN jobs on the one GPU     -> jobs.json (epochs per hour of each, 50 s each)
#   4. paper_table2_fashion_mnist, as far as the time left allows, with the best of those job
#      counts                                 -> table2.tar.gz (result.json, history.csv, report.md)
#   and gpu_check.log, what ran, how long and how it ended: 7 files, the device tool's limit is 8.
#
# On the device machine, from the project root, with .gpu carried (docs/gpu.md):
#   source .gpu/env.sh && scripts/gpu_check.sh "$OUT"
# Short mode, on a CPU in about two minutes (tests/test_gpu_check.py runs it, so that the first GPU
# call cannot fail on a typo; the benchmark takes the small ffnn there): GPU_CHECK_SHORT=1
# scripts/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
work=${GPU_CHECK_WORK:-$(mktemp -d -t latentexp-gpu-check.XXXXXX)}
mkdir -p "$work"
budget=${GPU_CHECK_SECONDS:-570}
started=$SECONDS
log=$out/gpu_check.log
py=${PYTHON:-python3}

if [ "${GPU_CHECK_SHORT:-0}" = 1 ]; then  # the same commands, tiny, on the CPU
    device=cpu bench_device=cpu tests=(tests/test_accelerator_paths.py)
    bench_models=(ffnn) bench=(--quick --batch-size 32 --test-samples 64 --losses ce,magnet --vs-fp32)
    small=(dataset.limit_train=300 dataset.limit_test=100 trainer.max_epochs=1 seed=0 lambda=0,0.5)
    job_counts=(1 2) job_seconds=2 test_cap=60 bench_cap=60 fallback_jobs=1 poll=1
else
    device=auto bench_device=cuda tests=(tests)
    bench_models=(cnn vgg16 resnet50) bench=(--steps 30 --repeats 3 --losses ce,magnet,latent_boost,triplet --vs-fp32)
    small=()
    job_counts=(1 4 8) job_seconds=50 test_cap=100 bench_cap=60 fallback_jobs=4 poll=15
fi

exec 3>&1  # say() prints here, whatever a step's own output is redirected to
say() { local line="[$(date -u +%H:%M:%S) +$((SECONDS - started))s] $*"; echo "$line" >> "$log"; echo "$line" >&3; }
left() { echo $((budget - (SECONDS - started))); }
# cap SECONDS COMMAND...: run it for at most SECONDS (and never past the budget), logging how it ended
cap() {
    local limit=$1; shift
    local most=$(($(left) - 15))
    [ "$limit" -gt "$most" ] && limit=$most
    if [ "$limit" -le 0 ]; then say "skipped (no time left): $*"; return 1; fi
    local t0=$SECONDS
    timeout "$limit" "$@"
    local code=$?
    say "exit $code after $((SECONDS - t0))s (limit ${limit}s): $*"
    return $code
}

say "gpu_check: budget ${budget}s, work in $work, results in $out"
{ nvidia-smi -L 2>&1 || true; $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } >> "$log" 2>&1

say "1. the cuda tests"
cap "$test_cap" $py -m pytest -q -m cuda -n 0 -p no:cacheprovider "${tests[@]}" > "$out/pytest-cuda.log" 2>&1

say "2. the benchmark"
for model in "${bench_models[@]}"; do
    cap "$bench_cap" $py -m latentexp bench --device "$bench_device" --models "$model" "${bench[@]}" --json \
        > "$out/bench-$model.json" 2>> "$log"
done

say "3. CNN jobs side by side on one GPU: ${job_counts[*]}"
for k in "${job_counts[@]}"; do
    cap "$job_seconds" $py -m latentexp train -m experiment=paper_table2_fashion_mnist device=$device \
        hydra.launcher.n_jobs="$k" output_root="$work/jobs$k" "${small[@]}" > "$work/jobs$k.log" 2>&1
    $py - "$work" "$job_seconds" "${job_counts[@]}" > "$out/jobs.json.part" <<'PY' && mv "$out/jobs.json.part" "$out/jobs.json"
import csv, json, statistics, sys
from pathlib import Path
# epochs: finished in the window, start-up included; steady: k jobs over the median epoch of one
work, seconds, counts = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
jobs = {}
for k in counts:
    if not (work / f"jobs{k}.log").exists():
        continue
    rows = [row for p in sorted((work / f"jobs{k}").glob("runs/*/history.csv"))
            for row in csv.DictReader(p.open())]
    epoch = statistics.median(float(r["seconds"]) for r in rows) if rows else None
    jobs[k] = {"window_seconds": seconds, "epochs": len(rows),
               "epochs_per_hour": round(len(rows) * 3600 / seconds, 1),
               "median_epoch_seconds": epoch,
               "steady_epochs_per_hour": round(int(k) * 3600 / epoch, 1) if epoch else None}
print(json.dumps(jobs, indent=2))
PY
done
best=$($py -c 'import json, sys; j = json.load(open(sys.argv[1])); r = lambda k: j[k]["steady_epochs_per_hour"] or 0
print(max(j, key=lambda k: (r(k), -int(k))) if any(map(r, j)) else sys.argv[2])' "$out/jobs.json" "$fallback_jobs" \
    2>/dev/null || echo "$fallback_jobs")

say "4. paper_table2_fashion_mnist with $best jobs, for what is left of the budget"
pack() {
    (cd "$work" && { find table2 -name result.json -o -name history.csv; ls table2/report.md table2/status.txt 2>/dev/null; } \
        | tar czf "$out/table2.tar.gz.part" -T - 2>/dev/null) && mv "$out/table2.tar.gz.part" "$out/table2.tar.gz"
}
mkdir -p "$work/table2"
cap $(($(left) - 25)) $py -m latentexp train -m experiment=paper_table2_fashion_mnist device=$device \
    hydra.launcher.n_jobs="$best" output_root="$work/table2" "${small[@]}" > "$work/table2.log" 2>&1 &
sweep=$!
while kill -0 "$sweep" 2>/dev/null; do sleep "$poll"; pack; done  # pack what finished, as it goes
wait "$sweep"
$py -m latentexp status "$work/table2" > "$work/table2/status.txt" 2>&1
$py -m latentexp report "$work/table2" --no-figures --format md --out "$work/report" > /dev/null 2>> "$log" \
    && cp "$work/report/report.md" "$work/table2/report.md"
pack
say "finished: $(grep -c . "$work/table2/status.txt" 2>/dev/null || echo 0) status lines; $(tail -n 1 "$work/table2/status.txt" 2>/dev/null)"
