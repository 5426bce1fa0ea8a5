#!/bin/sh
# `make demo`: the main job end to end - `ilora eval` runs every method (zero-shot, in-context
# learning, LoraHub with random adapters, BatchComp, iLoraComp) on all 27 BIG-Bench-Hard tasks
# shipped in data/bbh, with the models kept in the repository:
#   - tests/golden/t5-tiny    a tiny Flan-T5-shaped model with RANDOM weights,
#   - examples/library        6 random-weight golden adapters, each paired with a small
#                             training file (see examples/library/README.md),
#   - tests/golden/bert-tiny  a tiny sentence embedder with random weights.
# The weights are random, so the answers are gibberish and the accuracies are ~0 by
# construction: the demo shows the pipeline (retrieval, per-shot weight learning, routing,
# batched generation, scoring, the tables), not the paper's numbers. For those, point
# --model / --library / --embedder at Flan-T5-Large, LoraHub's modules and MiniLM.
# It starts fresh each time (results in build/demo) and takes about a minute on 2 cores.
set -e
ILORA=${1:-build/ilora}
OUT=build/demo
rm -rf "$OUT"
mkdir -p build
# The tiny model is too small to gain from threads; one thread also makes the demo's files
# identical on every machine (OpenBLAS rounds differently with the thread count).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_NUM_THREADS
"$ILORA" eval --model tests/golden/t5-tiny --library examples/library \
  --embedder tests/golden/bert-tiny --tasks data/bbh \
  --methods zeroshot,icl,lorahub,batchcomp,ilora --topn 3 --max-questions 5 \
  --max-new-tokens 16 --index build/demo-library-index.json --out "$OUT"
echo
echo "Per-question predictions: $OUT/predictions/TASK/METHOD.jsonl; learned weights per shot:"
echo "$OUT/adapters/TASK/ilora.json; scores: $OUT/scores.json, $OUT/scores.csv, $OUT/table.md."
echo "(Random-weight tiny models: accuracies near 0 are expected; see scripts/demo.sh.)"
