#!/bin/sh
# `make demo`: the main job on the built-in default. Until the instance-level pipeline
# lands, it runs the T5 engine (the golden tiny Flan-T5-shaped model, random weights, so
# its answers are gibberish by construction) over real BIG-Bench-Hard questions.
set -e
ILORA=${1:-build/ilora}
MODEL=tests/golden/t5-tiny
for task in boolean_expressions date_understanding sports_understanding word_sorting; do
  echo "== $task (first 3 questions; model: $MODEL)"
  "$ILORA" generate --model "$MODEL" --task "data/bbh/$task.json" --max-questions 3 \
    --max-new-tokens 16
done
