#!/bin/sh
# CLI tests of `ilora train-lora` and `ilora finetune` on the tiny model: exit codes, option
# and input validation, the written directories (loadable adapter with train.jsonl, loadable
# Hugging Face checkpoint), loss falls, same seed -> same files, atomic --out / --force.
# Usage: sh tests/cli_train.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
MODEL=$REPO/tests/golden/t5-tiny
DATA=$REPO/tests/data/train/boolean10.jsonl
. "$REPO/tests/harness.sh"

# JSON number after "key": in $TMP/out
num() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$TMP/out"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

LORA="--model $MODEL --data $DATA --r 4 --alpha 8 --lr 1e-2 --epochs 4 --batch 4"

# --- help and usage errors (exit 2) ---
for c in train-lora finetune; do
  expect 0 "$ILORA" $c --help
  grep -q "usage: ilora $c" "$TMP/out" || fail "$c --help prints no usage"
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA"
  stderr_has "ilora: error: "
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --epochs 0
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --batch abc
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --lr -1
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --lr nan
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --schedule cosine
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --max-grad-norm -2
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" --bogus
  expect 2 "$ILORA" $c --model "$MODEL" --data "$DATA" --out "$TMP/x" extra
done
expect 2 "$ILORA" train-lora $LORA --out "$TMP/x" --r 0
expect 2 "$ILORA" train-lora $LORA --out "$TMP/x" --alpha 0
expect 2 "$ILORA" train-lora $LORA --out "$TMP/x" --targets q,,v
expect 2 "$ILORA" train-lora $LORA --out "$TMP/x" --targets q,lm_head
stderr_has "lm_head"
expect 2 "$ILORA" finetune --model "$MODEL" --data "$DATA" --out "$TMP/x" --r 4
[ -e "$TMP/x" ] && fail "a usage error created --out"

# --- bad inputs (exit 1, naming the file and line) ---
printf '{"input": "a", "output": "b"}\n{"input": "c", "output": "d"\n' >"$TMP/bad.jsonl"
expect 1 "$ILORA" train-lora $LORA --data "$TMP/bad.jsonl" --out "$TMP/x"
stderr_has "bad.jsonl:2"
printf '{"input": "a", "output": "b"}\n{"input": "c"}\n' >"$TMP/noout.jsonl"
expect 1 "$ILORA" finetune --model "$MODEL" --data "$TMP/noout.jsonl" --out "$TMP/x"
stderr_has "noout.jsonl:2: missing field 'output'"
expect 1 "$ILORA" train-lora $LORA --data "$TMP/missing.jsonl" --out "$TMP/x"
stderr_has "missing.jsonl"
expect 1 "$ILORA" train-lora --model "$TMP/nomodel" --data "$DATA" --out "$TMP/x"
stderr_has "nomodel"
expect 1 "$ILORA" train-lora $LORA --targets wi --out "$TMP/x"
stderr_has "'wi' matches no projection"
expect 1 "$ILORA" train-lora $LORA --out "$TMP/nodir/x"
stderr_has "nodir"
[ -e "$TMP/x" ] && fail "a failed run left --out behind"
ls "$TMP" | grep -q '\.tmp\.' && fail "a failed run left a temporary directory"

# --- train-lora: a loadable PEFT adapter with train.jsonl ---
expect 0 "$ILORA" train-lora $LORA --seed 7 --out "$TMP/a1"
for f in adapter_config.json adapter_model.safetensors train.jsonl; do
  [ -f "$TMP/a1/$f" ] || fail "train-lora: $f missing"
done
cmp -s "$DATA" "$TMP/a1/train.jsonl" || fail "train-lora: train.jsonl is not a copy of --data"
[ "$(grep -c '^epoch [1-4]/4: loss [0-9.]*$' "$TMP/err")" = 4 ] || fail "train-lora: epoch lines: $(cat "$TMP/err")"
first=$(sed -n 's/^epoch 1\/4: loss //p' "$TMP/err")
last=$(sed -n 's/^epoch 4\/4: loss //p' "$TMP/err")
lt "$last" "$first" || fail "train-lora: loss did not fall ($first -> $last)"
grep -q '"r":[[:space:]]*4' "$TMP/a1/adapter_config.json" || fail "train-lora: r in adapter_config.json"
grep -q '"lora_alpha":[[:space:]]*8' "$TMP/a1/adapter_config.json" || fail "train-lora: lora_alpha"
expect 0 "$ILORA" inspect "$TMP/a1/adapter_model.safetensors"
[ "$(grep -c '\.lora_A\.weight	F32	\[4, 64\]' "$TMP/out")" = 12 ] || fail "train-lora: 12 lora_A tensors"
[ "$(grep -c '\.lora_B\.weight	F32	\[64, 4\]' "$TMP/out")" = 12 ] || fail "train-lora: 12 lora_B tensors"
if "$ILORA" loss --help | grep -q -- "--lora"; then
  expect 0 "$ILORA" loss --model "$MODEL" --examples "$DATA"
  base=$(num mean_token_loss)
  expect 0 "$ILORA" loss --model "$MODEL" --examples "$DATA" --lora "$TMP/a1"
  tuned=$(num mean_token_loss)
  lt "$tuned" "$base" || fail "train-lora: loss with the adapter $tuned not below the base $base"
fi
# same seed -> identical files; another seed -> different weights
expect 0 "$ILORA" train-lora $LORA --seed 7 --out "$TMP/a2"
for f in adapter_config.json adapter_model.safetensors; do
  cmp -s "$TMP/a1/$f" "$TMP/a2/$f" || fail "train-lora: same seed, different $f"
done
expect 0 "$ILORA" train-lora $LORA --seed 8 --out "$TMP/a3"
cmp -s "$TMP/a1/adapter_model.safetensors" "$TMP/a3/adapter_model.safetensors" &&
  fail "train-lora: seeds 7 and 8 gave the same adapter"
# an existing non-empty --out is refused unless --force; an empty one is fine
expect 1 "$ILORA" train-lora $LORA --seed 8 --out "$TMP/a1"
stderr_has "not empty"
cmp -s "$TMP/a1/adapter_model.safetensors" "$TMP/a2/adapter_model.safetensors" || fail "refused run changed --out"
expect 0 "$ILORA" train-lora $LORA --seed 8 --out "$TMP/a1" --force
cmp -s "$TMP/a1/adapter_model.safetensors" "$TMP/a3/adapter_model.safetensors" || fail "--force did not replace --out"
mkdir "$TMP/empty"
expect 0 "$ILORA" train-lora $LORA --epochs 1 --targets q,k,v,o,wi_0,wi_1,wo --out "$TMP/empty"
expect 0 "$ILORA" inspect "$TMP/empty/adapter_model.safetensors"
[ "$(grep -c 'lora_A' "$TMP/out")" = 36 ] || fail "train-lora: all projections: $(grep -c lora_A "$TMP/out") lora_A"

# --- finetune: a Hugging Face checkpoint ilora loss accepts, with a lower loss ---
expect 0 "$ILORA" finetune --model "$MODEL" --data "$DATA" --lr 1e-3 --epochs 3 --seed 1 --out "$TMP/ft"
[ "$(grep -c '^epoch [1-3]/3: loss ' "$TMP/err")" = 3 ] || fail "finetune: epoch lines: $(cat "$TMP/err")"
for f in config.json model.safetensors spiece.model tokenizer_config.json special_tokens_map.json; do
  [ -f "$TMP/ft/$f" ] || fail "finetune: $f missing"
done
cmp -s "$MODEL/config.json" "$TMP/ft/config.json" || fail "finetune: config.json not copied"
expect 0 "$ILORA" inspect "$TMP/ft/model.safetensors"
[ "$(grep -vc '^#' "$TMP/out")" = 52 ] || fail "finetune: expected 52 tensors"
grep -q '^shared.weight	F32	\[2104, 64\]$' "$TMP/out" || fail "finetune: shared.weight"
grep -q '^lm_head.weight	F32	\[2104, 64\]$' "$TMP/out" || fail "finetune: lm_head.weight"
grep -q 'embed_tokens' "$TMP/out" && fail "finetune: embed_tokens aliases written"
expect 0 "$ILORA" loss --model "$MODEL" --examples "$DATA"
base=$(num mean_token_loss)
expect 0 "$ILORA" loss --model "$TMP/ft" --examples "$DATA"
tuned=$(num mean_token_loss)
lt "$tuned" "$base" || fail "finetune: loss $tuned not below the base model's $base"
expect 0 "$ILORA" finetune --model "$MODEL" --data "$DATA" --lr 1e-3 --epochs 3 --seed 1 --out "$TMP/ft2"
cmp -s "$TMP/ft/model.safetensors" "$TMP/ft2/model.safetensors" || fail "finetune: same seed, different weights"
expect 1 "$ILORA" finetune --model "$MODEL" --data "$DATA" --out "$TMP/ft"
stderr_has "not empty"

[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "cli_train: all checks passed"
