#!/usr/bin/env bash
# The CPU training chain of pds-tiny v2, exactly as it ran (2 cores, no GPU), from the repository root.
# Every link appends to its run folder's train.log / vae.log; `--resume` continues a link.
# Usage: RUNS=/work/runs bash benchmarks/results/prior_training/run_cpu_chain.sh [vae|ablations|main|main3|vae4|unet4|export]
set -euo pipefail
RUNS=${RUNS:-runs}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
stage=${1:-all}

if [[ $stage == vae || $stage == all ]]; then
  # autoencoder (f = 4, 4 channels): two links of 13 + 12 minutes on one thread
  $PY -m tools.prior.autoencoder --out "$RUNS/vae" --max-minutes 13 --num-threads 1
  $PY -m tools.prior.autoencoder --out "$RUNS/vae" --resume --steps 40000 --max-minutes 12 --num-threads 1
  cp -r "$RUNS/vae/vae" "$RUNS/vae_final"
fi

if [[ $stage == ablations || $stage == all ]]; then
  # equal budget: 8 minutes of CPU time each (process time, fair while runs share the machine), 1 thread, batch 32
  COMMON="--num-threads 1 --max-cpu-minutes 8 --eval-n 3 --sample-steps 25"
  $PY -m tools.prior.train --out "$RUNS/abl_A_pixel_eps" $COMMON &
  $PY -m tools.prior.train --out "$RUNS/abl_B_pixel_v_pool_snr" $COMMON --prediction-type v_prediction --text-pool --min-snr-gamma 5 &
  wait
  L="$COMMON --vae $RUNS/vae_final --arch latent"
  $PY -m tools.prior.train --out "$RUNS/abl_C_latent_v_pool_snr" $L --prediction-type v_prediction --text-pool --min-snr-gamma 5 &
  $PY -m tools.prior.train --out "$RUNS/abl_D_latent_v_snr" $L --prediction-type v_prediction --min-snr-gamma 5 &
  $PY -m tools.prior.train --out "$RUNS/abl_E_latent_eps_pool" $L --text-pool &
  wait
fi

if [[ $stage == main || $stage == all ]]; then
  # the chosen design (D) continues from the ablation's checkpoint: link 1 = the ablation, link 2 below
  mkdir -p "$RUNS/main"
  [[ -f "$RUNS/main/checkpoint.pt" ]] || cp "$RUNS/abl_D_latent_v_snr/checkpoint.pt" "$RUNS/abl_D_latent_v_snr/train.log" "$RUNS/main/"
  $PY -m tools.prior.train --out "$RUNS/main" --resume --vae "$RUNS/vae_final" --arch latent \
    --prediction-type v_prediction --min-snr-gamma 5 --num-threads 2 --max-minutes 80 --steps 100000 \
    --checkpoint-every 200 --log-every 50 --eval-n 4
fi

if [[ $stage == main3 || $stage == all ]]; then
  # link 3 (pds-tiny v3): a warm restart of the cosine schedule from link 2's checkpoint, peak lr 3e-4
  # for 75 wall minutes on 2 threads; held-out shape 0.73 -> 1.00 at n = 48
  $PY -m tools.prior.train --out "$RUNS/main" --resume --vae "$RUNS/vae_final" --arch latent \
    --prediction-type v_prediction --min-snr-gamma 5 --num-threads 2 --max-minutes 75 --steps 100000 --lr 3e-4 \
    --checkpoint-every 200 --log-every 50 --eval-n 4
fi

if [[ $stage == vae4 || $stage == all ]]; then
  # v4's autoencoder: v3's, fine-tuned so that it represents every colour, not only the palette's.
  # Half of each batch in any colour (data._free_colours); the latents of exact-palette pictures
  # are held at the starting encoder's (--anchor-weight), so the denoiser trained on them stays valid.
  # Two links, the second with pale tints and palette neighbourhoods added to the free colours.
  $PY -m tools.prior.autoencoder --out "$RUNS/vae_free" --init-from "$RUNS/vae_final" --free-colour-fraction 0.5 \
    --anchor-weight 1 --steps 100000 --max-minutes 30 --num-threads 2 --lr 5e-4
  $PY -m tools.prior.autoencoder --out "$RUNS/vae_free2" --init-from "$RUNS/vae_free/vae" --free-colour-fraction 0.5 \
    --anchor-weight 1 --steps 100000 --max-minutes 28 --num-threads 1 --lr 3e-4
fi

if [[ $stage == unet4 || $stage == all ]]; then
  # v4's denoiser: v3's UNet and text encoder fine-tuned on the first v4 autoencoder link's latents
  # (45 wall minutes, 1 thread, peak lr 1e-4); it ran beside the second autoencoder link
  $PY -m tools.prior.train --out "$RUNS/unet_ft" --init-from "$RUNS/main/model" --vae "$RUNS/vae_free/vae" --arch latent \
    --prediction-type v_prediction --min-snr-gamma 5 --num-threads 1 --max-minutes 45 --steps 100000 --lr 1e-4 \
    --warmup-steps 50 --checkpoint-every 100 --log-every 25 --eval-n 4
fi

if [[ $stage == export ]]; then
  # a model folder from the latest checkpoint (for a link stopped before it wrote model/)
  $PY -m tools.prior.train --out "$RUNS/main" --export-to "$RUNS/main/model_export"
fi
