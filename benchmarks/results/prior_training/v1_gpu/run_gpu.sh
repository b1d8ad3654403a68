#!/usr/bin/env bash
# The one GPU training run of pds-tiny (see benchmarks/results/prior_training/README.md).
# Usage (repo root): OUT=dir [DEVICE=cuda] [TRAIN_SECONDS=440] [PROBE_SECONDS=40] [EVAL_N=10] bash benchmarks/results/prior_training/run_gpu.sh
# Runs the package's own modules from a stub package so that nothing else in pds/ is imported.
set -u
T0=$(date +%s)
DEVICE=${DEVICE:-cuda}
TRAIN_SECONDS=${TRAIN_SECONDS:-440}
PROBE_SECONDS=${PROBE_SECONDS:-90}
EVAL_N=${EVAL_N:-10}
EVAL_STEPS=${EVAL_STEPS:-50}
EXTRA=${EXTRA:-}
BASELINE=${BASELINE:-}   # a model folder to score beside the new one (e.g. the one a continuation starts from)
PY=${PY:-python3}
R=${RUN_DIR:-/tmp/pds_tiny_run}
rm -rf "$R" /tmp/pds_stub && mkdir -p "$R" /tmp/pds_stub/pds
cp -r pds/embedded /tmp/pds_stub/pds/ && touch /tmp/pds_stub/pds/__init__.py
export PYTHONPATH=/tmp/pds_stub${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
(command -v nvidia-smi >/dev/null && nvidia-smi -L) > "$R/env.log" 2>&1
$PY -c "import torch, diffusers, transformers; print(torch.__version__, diffusers.__version__, transformers.__version__)" >> "$R/env.log" 2>&1
# the probe trains beside the prior (tiny; the GPU has room), unless PROBE_FILE gives one
if [ -n "${PROBE_FILE:-}" ]; then cp "$PROBE_FILE" "$R/probe.safetensors"; true & else
timeout $((PROBE_SECONDS + 60)) $PY -m pds.embedded.probe train --out "$R/probe.safetensors" --device "$DEVICE" \
  --steps 3000 --batch-size 256 --max-seconds "$PROBE_SECONDS" > "$R/probe.log" 2>&1 &
fi
PROBE_PID=$!
DEADLINE=$((T0 + TRAIN_SECONDS + 15))
$PY -m pds.embedded.train --out "$R" --device "$DEVICE" --deadline-unix "$DEADLINE" $EXTRA > "$R/stdout.log" 2>&1
echo "train exit $?" >> "$R/env.log"
wait $PROBE_PID; echo "probe exit $?" >> "$R/env.log"
timeout ${EVAL_TIMEOUT:-75} $PY -m pds.embedded.probe evaluate --folder "$R/model" --probe "$R/probe.safetensors" --device "$DEVICE" \
  --n "$EVAL_N" --steps "$EVAL_STEPS" --json "$R/eval.json" > "$R/eval.log" 2>&1
echo "eval exit $? total $(( $(date +%s) - T0 )) s" >> "$R/env.log"
if [ -n "$BASELINE" ]; then
  timeout ${EVAL_TIMEOUT:-75} $PY -m pds.embedded.probe evaluate --folder "$BASELINE" --probe "$R/probe.safetensors" --device "$DEVICE" \
    --n "$EVAL_N" --steps "$EVAL_STEPS" --json "$R/eval_baseline.json" > "$R/eval_baseline.log" 2>&1
  echo "baseline eval exit $? total $(( $(date +%s) - T0 )) s" >> "$R/env.log"
fi
cd "$R" && tar cf "$OUT/model.tar" model && split -b 15M "$OUT/model.tar" "$OUT/model.tar.part-" && rm "$OUT/model.tar"
tar cf "$OUT/results.tar" $(ls probe.safetensors probe.log train.log loss.csv loss.png samples.png eval.json eval.log eval_baseline.json eval_baseline.log env.log 2>/dev/null)
cp stdout.log "$OUT/stdout.log" 2>/dev/null
cat env.log; tail -5 stdout.log; tail -30 eval.log
