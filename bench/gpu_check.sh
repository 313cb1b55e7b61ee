#!/bin/bash
# Everything the CUDA path needs checked, in one call (issue 36): the `cuda` tests (fused
# rounds among them), rounds of candidates fused and one at a time (issue 45), the
# learners-per-candidate table on the GPU (fp32 and bf16), and bf16's effect on E, D and
# decisions. Run from the repository root on a machine with a CUDA GPU, the package
# importable (pip install -e ".[test]", or wheels on PYTHONPATH: docs/benchmarks/
# performance.md says how) and, for the last part, a finished float32 run folder of the
# default search (made here if absent: about a minute on a GPU).
#
#   OUT=gpu-results bash bench/gpu_check.sh
#
# Each part writes its log to $OUT; a failing part does not stop the next ones, and the
# script exits non-zero if any failed.
set -o pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
failed=0
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || failed=1
python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'" || exit 2
python -m pytest -m cuda -v -p no:cacheprovider tests/evaluators/tabular/test_devices.py \
    tests/evaluators/tabular/test_fused.py 2>&1 | tee "$OUT/cuda-tests.txt" || failed=1
python bench/round_speed.py --device cuda --rounds 1 4 8 16 \
    2>&1 | tee "$OUT/round-speed.txt" || failed=1
python bench/trainer_speed.py --device cuda --learners-table 1000000 \
    2>&1 | tee "$OUT/trainer-speed.txt" || failed=1
RUN=${RUN:-}
if [ -z "$RUN" ]; then
    python -m edas_agent run --budget 20 --seed 0 --set evaluator.device=cuda \
        --set runs_dir="$OUT/runs" > "$OUT/run.txt" 2>&1 || failed=1
    RUN=$(ls -d "$OUT"/runs/*/ | head -1)
fi
python bench/precision_effect.py "$RUN" --proposals 20 --device cuda \
    2>&1 | tee "$OUT/precision-effect.txt" || failed=1
exit $failed
