#!/bin/sh
# CLI tests of LoRA adapters and LoraHub learning: `--lora DIR[=WEIGHT]` / `--compose` on
# loss and generate against the t5-tiny-lora goldens, `ilora lorahub` (objective goes down,
# byte-identical weights.json for a seed, the written adapter loads and reproduces
# best_loss), and bad inputs. Usage: sh tests/cli_lorahub.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
MODEL=$REPO/tests/golden/t5-tiny
LORA=$REPO/tests/golden/t5-tiny-lora
DATA=$REPO/tests/data/cli
EX=$DATA/examples.jsonl
. "$REPO/tests/harness.sh"

# json_num KEY FILE: the number after "KEY": (first occurrence, whole file as one line)
json_num() { tr -d '\n' <"$2" | sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }
# near A B TOL
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; }
# less A B: A < B
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }

# --- help ---
expect 0 "$ILORA" lorahub --help
grep -q "usage: ilora lorahub" "$TMP/out" || fail "lorahub --help prints no usage"
grep -q "previous lorahub result" "$TMP/out" || fail "lorahub --help does not state the --out rule"
for c in generate loss; do
  expect 0 "$ILORA" $c --help
  grep -q -- "--lora DIR\[=WEIGHT\]" "$TMP/out" || fail "$c --help lacks --lora"
  grep -q -- "--compose" "$TMP/out" || fail "$c --help lacks --compose"
done
expect 0 "$ILORA" bench lorahub --help
grep -q "usage: ilora bench lorahub" "$TMP/out" || fail "bench lorahub --help prints no usage"

# --- loss with adapters (goldens: lora_goldens.json) ---
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0"
near "$(json_num mean_token_loss "$TMP/out")" 9.58547 1e-4 || fail "loss lora_0: $(cat "$TMP/out")"
near "$(json_num lorahub_loss "$TMP/out")" 3.19516 1e-4 || fail "lorahub_loss lora_0: $(cat "$TMP/out")"
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0=0.7" --lora "$LORA/lora_1=-0.3" --lora "$LORA/lora_2=0.5"
near "$(json_num mean_token_loss "$TMP/out")" 10.30873 1e-4 || fail "loss composed: $(cat "$TMP/out")"
near "$(json_num lorahub_loss "$TMP/out")" 3.43624 1e-4 || fail "lorahub_loss composed: $(cat "$TMP/out")"
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0=0.7" --lora "$LORA/lora_1=-0.3" --lora "$LORA/lora_2=0.5" --compose delta
near "$(json_num mean_token_loss "$TMP/out")" 9.91421 1e-4 || fail "loss delta: $(cat "$TMP/out")"
# the golden composed directory loads like any adapter
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lorahub_0.7_-0.3_0.5"
near "$(json_num mean_token_loss "$TMP/out")" 10.30873 1e-4 || fail "loss lorahub_0.7_-0.3_0.5: $(cat "$TMP/out")"
# .bin adapter (lora_1, golden single_1)
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_1"
near "$(json_num mean_token_loss "$TMP/out")" 12.57283 1e-4 || fail "loss lora_1: $(cat "$TMP/out")"

# --- generate with an adapter: the golden single_0 greedy texts, merged and unmerged ---
for how in auto merged unmerged; do
  expect 0 "$ILORA" generate --model "$MODEL" --lora "$LORA/lora_0" --lora-apply $how --max-new-tokens 24 --input "$DATA/generate_inputs.jsonl"
  cmp -s "$TMP/out" "$DATA/generate_lora0_expected.jsonl" || fail "generate --lora lora_0 ($how) differs from the goldens"
done
expect 0 "$ILORA" generate --model "$MODEL" --lora "$LORA/lora_0" --max-new-tokens 24 --batch 3 --input "$DATA/generate_inputs.jsonl"
cmp -s "$TMP/out" "$DATA/generate_lora0_expected.jsonl" || fail "generate --lora lora_0 --batch 3 differs from the goldens"

# --- lorahub: 6 adapters (safetensors and .bin), the 3 examples ---
ALL="$LORA/lora_0 $LORA/lora_1 $LORA/lora_2 $LORA/lora_3 $LORA/lora_4 $LORA/lora_5"
lorahub() { out=$1; shift; expect 0 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora $ALL --out "$TMP/$out" "$@"; }
lorahub s42 --seed 42
W=$TMP/s42/weights.json
[ -f "$W" ] && [ -f "$TMP/s42/adapter_config.json" ] && [ -f "$TMP/s42/adapter_model.safetensors" ] || fail "lorahub: missing output files"
best=$(json_num best_objective "$W")
first=$(tr -d '\n' <"$W" | sed -n 's/.*"objective_per_step": *\[\([-0-9.eE+]*\).*/\1/p')
less "$best" "$first" || fail "lorahub: best_objective $best is not below the first step's $first"
near "$first" 3.87360 1e-4 || fail "lorahub: the first step (w = 0) is not the base model's LoraHub loss: $first"
[ "$(tr -d '\n' <"$W" | sed 's/.*"objective_per_step": *\[\([^]]*\)\].*/\1/' | awk -F, '{ print NF }')" = 40 ] || fail "lorahub: objective_per_step does not hold 40 values"
grep -q '"optimizer": "cobyla"' "$W" || fail "lorahub: optimizer field"
grep -q '"modules": \["'"$LORA"'/lora_0", ' "$W" || fail "lorahub: modules field"
grep -q '"examples": 3' "$W" || fail "lorahub: examples field"
echo "lorahub (cobyla): objective $first -> $best"
# the written adapter loads and reproduces best_loss
bl=$(json_num best_loss "$W")
expect 0 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$TMP/s42"
near "$(json_num lorahub_loss "$TMP/out")" "$bl" 1e-4 || fail "reloaded adapter: lorahub_loss $(json_num lorahub_loss "$TMP/out") vs best_loss $bl"
# B27: seed 42 twice -> identical; a previous result in --out is replaced
lorahub s42 --seed 42
cmp -s "$W" "$TMP/s42/weights.json" || fail "lorahub --seed 42 (second run, replacing) differs"
lorahub s42b --seed 42
cmp -s "$W" "$TMP/s42b/weights.json" || fail "lorahub --seed 42 twice: weights.json differ"
cmp -s "$TMP/s42/adapter_model.safetensors" "$TMP/s42b/adapter_model.safetensors" || fail "lorahub --seed 42 twice: adapters differ"
lorahub c42 --seed 42 --optimizer cmaes
lorahub c42b --seed 42 --optimizer cmaes
lorahub c43 --seed 43 --optimizer cmaes
cmp -s "$TMP/c42/weights.json" "$TMP/c42b/weights.json" || fail "lorahub cmaes --seed 42 twice: weights.json differ"
cmp -s "$TMP/c42/weights.json" "$TMP/c43/weights.json" && fail "lorahub cmaes --seed 43 gives the same weights.json as --seed 42"
grep -q '"optimizer": "cmaes"' "$TMP/c43/weights.json" || fail "lorahub cmaes: optimizer field"
# an empty --out directory is fine; --steps, the delta rule, adapters listed after one --lora
mkdir "$TMP/empty"
expect 0 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" "$LORA/lora_1" --compose delta --steps 3 --out "$TMP/empty"
grep -q '"evaluations": 3' "$TMP/empty/weights.json" && grep -q '"compose": "delta"' "$TMP/empty/weights.json" || fail "lorahub --steps 3 --compose delta: $(cat "$TMP/empty/weights.json")"

# "--out DIR/" is DIR
expect 0 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_3" --steps 2 --out "$TMP/slash/"
[ -f "$TMP/slash/weights.json" ] && [ "$(ls -d "$TMP"/slash* | wc -l)" = 1 ] || fail "lorahub --out DIR/: $(ls -d "$TMP"/slash*)"

# --- bad inputs ---
expect 2 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora x=abc
stderr_has "x=abc"
expect 2 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --compose sum
stderr_has "linear or delta"
expect 2 "$ILORA" generate --model "$MODEL" --lora "$LORA/lora_0" --lora-apply sometimes hi
expect 1 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$TMP/no_such_adapter"
stderr_has "no_such_adapter"
expect 1 "$ILORA" generate --model "$MODEL" --lora "$TMP/no_such_adapter" hi
stderr_has "no_such_adapter"
# an adapter for another model shape: t5-tiny with one decoder layer
mkdir "$TMP/onelayer"
sed 's/"num_decoder_layers": 2/"num_decoder_layers": 1/' "$MODEL/config.json" >"$TMP/onelayer/config.json"
ln -s "$MODEL/model.safetensors" "$TMP/onelayer/model.safetensors"
ln -s "$MODEL/spiece.model" "$TMP/onelayer/spiece.model"
expect 1 "$ILORA" loss --model "$TMP/onelayer" --examples "$EX" --lora "$LORA/lora_0"
stderr_has "lora_0"
stderr_has "decoder.block.1"
# rank 8 (the delta composition written above) next to rank 4 with the linear rule
expect 1 "$ILORA" loss --model "$MODEL" --examples "$EX" --lora "$LORA/lora_2" --lora "$TMP/empty" --compose linear
stderr_has "lora_2"
stderr_has "$TMP/empty"
stderr_has "rank"
expect 1 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_2" --lora "$TMP/empty" --out "$TMP/mixed"
stderr_has "rank"
[ -e "$TMP/mixed" ] && fail "lorahub: a failed run left --out behind"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --steps 0 --out "$TMP/z"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --optimizer nelder-mead --out "$TMP/z"
stderr_has "cobyla, cmaes, 1+1-es, random"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0=0.5" --out "$TMP/z"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --out "$TMP/z"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0"
expect 2 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --l1 -1 --out "$TMP/z"
[ -e "$TMP/z" ] && fail "lorahub: a usage error created --out"
# --out unwritable (its parent is a file): exit 1, nothing written
: >"$TMP/file"
expect 1 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --out "$TMP/file/out"
stderr_has "file/out"
[ "$(ls "$TMP" | grep -c '^file')" = 1 ] || fail "lorahub: unwritable --out left something behind: $(ls "$TMP")"
# --out holding something else: refused, untouched
mkdir "$TMP/other" && echo keep >"$TMP/other/notes.txt"
expect 1 "$ILORA" lorahub --model "$MODEL" --examples "$EX" --lora "$LORA/lora_0" --out "$TMP/other"
stderr_has "notes.txt"
[ "$(ls "$TMP/other")" = notes.txt ] || fail "lorahub: a refused --out was modified"
# a failing run (bad examples) leaves no temporary directory and no --out
printf '{"input": "a"}\n' >"$TMP/nooutput.jsonl"
expect 1 "$ILORA" lorahub --model "$MODEL" --examples "$TMP/nooutput.jsonl" --lora "$LORA/lora_0" --out "$TMP/r"
stderr_has "nooutput.jsonl:1"
[ -n "$(ls -d "$TMP"/r* 2>/dev/null)" ] && fail "lorahub: a failed run left $(ls -d "$TMP"/r*)"

[ "$fails" = 0 ] || { echo "$fails CLI check(s) failed" >&2; exit 1; }
echo "CLI LoRA / LoraHub checks passed"
