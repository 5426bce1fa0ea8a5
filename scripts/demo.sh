#!/bin/sh
# `make demo` (the main job on the built-in default): `ilora eval` runs every method -
# zero-shot, in-context learning, LoraHub (random adapters, 3 seeds), BatchComp, full
# fine-tuning and iLoraComp - on the 15 held-out tasks of ilora's own world (world/: a small
# T5 trained multitask on 50 synthetic upstream task families, one LoRA per family, the base
# model's encoder as the sentence embedder; see world/README.md and docs/world.md). The world
# is committed, so the demo trains nothing but the fft baseline.
#
# `make demo-bbh` (scripts/demo.sh bbh): the same pipeline on all 27 BIG-Bench-Hard tasks in
# data/bbh with the golden tiny models (random weights: accuracies ~0 by construction; it
# shows the pipeline on real BBH inputs). For the paper's setting point --model / --library /
# --embedder at Flan-T5-Large, LoraHub's modules and MiniLM.
#
# Both start fresh (results in build/demo or build/demo-bbh). One thread: these models are
# too small to gain from two, and it makes the result files identical on every machine
# (OpenBLAS rounds differently with the thread count).
set -e
ILORA=${1:-build/ilora}
MODE=${2:-world}
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_NUM_THREADS
mkdir -p build
if [ "$MODE" = bbh ]; then
  OUT=build/demo-bbh
  rm -rf "$OUT"
  "$ILORA" eval --model tests/golden/t5-tiny --library examples/library \
    --embedder tests/golden/bert-tiny --tasks data/bbh \
    --methods zeroshot,icl,lorahub,batchcomp,ilora --topn 3 --max-questions 5 \
    --max-new-tokens 16 --index build/demo-bbh-index.json --out "$OUT"
else
  OUT=build/demo
  rm -rf "$OUT"
  "$ILORA" eval --model world/base --library world/library --embedder world/base \
    --tasks world/tasks/heldout --methods zeroshot,icl,lorahub,batchcomp,fft,ilora \
    --max-new-tokens 16 --index build/demo-world-index.json --out "$OUT"
fi
echo
echo "Per-question predictions: $OUT/predictions/TASK/METHOD.jsonl; learned weights per shot:"
echo "$OUT/adapters/TASK/ilora.json; scores: $OUT/scores.json, $OUT/scores.csv, $OUT/table.md."
