#!/usr/bin/env bash
# The Gaussian-splat workflow on the example ball scene: splatfacto, then pds_splat, then
# pds_splat_refinement ("a red ball" -> "a blue ball", embedded prior pds-tiny; nothing downloads).
#
#   examples/nerf_ball/run_splat.sh                  # GPU (gsplat), the methods' default step counts
#   DEVICE=cpu STEPS="300 200 100" examples/nerf_ball/run_splat.sh    # CPU (PyTorch rasterizer)
#
# Environment: DEVICE (cuda|cpu, default cuda), STEPS ("splatfacto pds_splat refinement" step
# counts, default "3000 3000 1500"), OUT (output folder, default outputs/splat_ball), DATA (scene,
# default examples/nerf_ball/red_ball; written by make_scene.py if missing).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DEVICE="${DEVICE:-cuda}"
read -r S0 S1 S2 <<< "${STEPS:-3000 3000 1500}"
OUT="${OUT:-outputs/splat_ball}"
DATA="${DATA:-$HERE/red_ball}"
PY="${PYTHON:-python}"
[ -f "$DATA/transforms.json" ] || "$PY" "$HERE/make_scene.py" -o "$DATA"
COMMON=(--machine.device-type "$DEVICE" --vis tensorboard --output-dir "$OUT" --experiment-name ball)

# 0. splatfacto from 2000 random Gaussians in the unit cube (the scene has no point cloud); the
#    wrapper makes splatfacto render with the PyTorch rasterizer when --machine.device-type is cpu.
"$PY" -m pds.nerf.ns_train splatfacto --data "$DATA" "${COMMON[@]}" --timestamp stage0 \
    --max-num-iterations "$S0" --pipeline.model.num-random 2000 --pipeline.model.random-scale 1.0 \
    --pipeline.model.background-color white

# 1. PDS on full renders of the Gaussians; every view ends up in eval_outputs/.
ns-train pds_splat --data "$DATA" --load-dir "$OUT/ball/splatfacto/stage0/nerfstudio_models" \
    --pipeline.pds.src_prompt "a red ball" --pipeline.pds.tgt_prompt "a blue ball" \
    --pipeline.pds.sd_pretrained_model_or_path pds-tiny "${COMMON[@]}" --timestamp stage1 \
    --max-num-iterations "$S1"

# 2. SDEdit refinement on stage 1's renders.
ns-train pds_splat_refinement --data "$OUT/ball/pds_splat/stage1/eval_outputs" \
    --load-dir "$OUT/ball/pds_splat/stage1/nerfstudio_models" --pipeline.pds.tgt_prompt "a blue ball" \
    --pipeline.pds.sd_pretrained_model_or_path pds-tiny "${COMMON[@]}" --timestamp stage2 \
    --max-num-iterations "$S2"

echo "edited views: $OUT/ball/pds_splat/stage1/eval_outputs/animation.gif"
echo "refined views: $OUT/ball/pds_splat_refinement/stage2/eval_outputs/animation.gif"
