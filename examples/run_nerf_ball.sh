#!/usr/bin/env bash
# The README's three NeRF editing commands on the example scene: a red ball turned blue.
#
#   examples/run_nerf_ball.sh            # CUDA, the README defaults shortened to a few minutes
#   examples/run_nerf_ball.sh cpu        # CPU: small nerfacto, tens of steps (a smoke run, not a good edit)
#
# Environment: OUT (default outputs), PRIOR (default: the embedded prior pds-tiny), STEPS="N0 N1 N2"
# (steps of nerfacto, pds, pds_refinement). Results: $OUT/red_ball/{nerfacto,pds,pds_refinement}/example/,
# with the edited views in .../pds/example/eval_outputs and .../pds_refinement/example/eval_outputs.
#
# Stage 1 is `ns-train nerfacto` run through `python -m pds.nerf.ns_train`, which is the same command
# except that nerfacto's LPIPS metric is built lazily, so it also runs without network access
# (plain `ns-train nerfacto` downloads AlexNet weights when it builds the model).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${1:-cuda}
OUT=${OUT:-outputs}
PRIOR=${PRIOR:-pds-tiny}
DATA=examples/nerf_ball/red_ball
RUNS="$OUT/red_ball"

if [ "$DEVICE" = cpu ]; then
  read -r N0 N1 N2 <<< "${STEPS:-60 20 20}"
  EXTRA=(--machine.device-type cpu --pipeline.model.implementation torch
         --pipeline.model.num-levels 4 --pipeline.model.log2-hashmap-size 12 --pipeline.model.max-res 64
         --pipeline.model.hidden-dim 16 --pipeline.model.hidden-dim-color 16
         --pipeline.model.num-proposal-samples-per-ray 16 8 --pipeline.model.num-nerf-samples-per-ray 8)
  RAYS=(--pipeline.datamanager.train-num-rays-per-batch 1024)
else
  read -r N0 N1 N2 <<< "${STEPS:-3000 2000 500}"
  EXTRA=()
  RAYS=()
fi
COMMON=(--vis tensorboard --output-dir "$OUT" --timestamp example "${EXTRA[@]}")

[ -f "$DATA/transforms.json" ] || python examples/nerf_ball/make_scene.py -o "$DATA"
rm -rf "$RUNS/nerfacto/example" "$RUNS/pds/example" "$RUNS/pds_refinement/example"

# 1. Initialize NeRF
python -m pds.nerf.ns_train nerfacto --data "$DATA" --pipeline.model.use_appearance_embedding False \
  --max-num-iterations "$N0" "${RAYS[@]}" "${COMMON[@]}"

# 2. Edit NeRF by PDS
ns-train pds --data "$DATA" --load-dir "$RUNS/nerfacto/example/nerfstudio_models" \
  --pipeline.pds.src_prompt "a red ball" \
  --pipeline.pds.tgt_prompt "a blue ball" \
  --pipeline.pds.sd_pretrained_model_or_path "$PRIOR" \
  --max-num-iterations "$N1" "${COMMON[@]}"

# 3. Refine NeRF by SDEdit
ns-train pds_refinement --data "$RUNS/pds/example/eval_outputs" \
  --load-dir "$RUNS/pds/example/nerfstudio_models" \
  --pipeline.pds.tgt_prompt "a blue ball" \
  --pipeline.pds.sd_pretrained_model_or_path "$PRIOR" \
  --max-num-iterations "$N2" "${RAYS[@]}" "${COMMON[@]}"

echo "edited views: $RUNS/pds/example/eval_outputs (stage 1), $RUNS/pds_refinement/example/eval_outputs (stage 2)"
