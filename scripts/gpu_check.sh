#!/usr/bin/env bash
# Device check for a CUDA machine whose python3 already holds torch, PyYAML,
# regex, safetensors, tqdm and numpy: the package tests with CUDA visible, then
# scripts/gpu_smoke.py and scripts/gpu_dist_check.py (NCCL DDP/FSDP, bf16, sharded
# checkpoints, compiled generation; one process per GPU). Usage: bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
src=""
for p in packages/*/src; do src="$src:$PWD/$p"; done
export PYTHONPATH="${src#:}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
status=0
python3 scripts/gpu_smoke.py || status=1
gpus=$(nvidia-smi -L | wc -l)
python3 -m torch.distributed.run --standalone --nproc_per_node="$gpus" \
  scripts/gpu_dist_check.py || status=1
python3 -m pytest -q -p no:cacheprovider --timeout 300 \
  -k "not version_matches_distribution_metadata" \
  packages/hyso-models/tests packages/hyso-storage/tests packages/hyso-train/tests || status=1
exit $status
