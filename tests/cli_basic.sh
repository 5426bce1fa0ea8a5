#!/bin/sh
# CLI contract tests: exit codes, --help, errors on stderr, and real outputs checked
# against the t5-tiny goldens. Usage: sh tests/cli_basic.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
MODEL=$REPO/tests/golden/t5-tiny
DATA=$REPO/tests/data/cli
. "$REPO/tests/harness.sh"

# --- usage and help ---
expect 2 "$ILORA"
expect 2 "$ILORA" frobnicate
expect 0 "$ILORA" --help
for c in tokenize generate loss inspect bench; do
  expect 0 "$ILORA" $c --help
  grep -q "usage: ilora $c" "$TMP/out" || fail "$c --help prints no usage"
done
expect 2 "$ILORA" generate --model "$MODEL"
expect 2 "$ILORA" generate --model "$MODEL" --max-new-tokens 0 hi
expect 2 "$ILORA" generate --model "$MODEL" --max-new-tokens abc hi
expect 2 "$ILORA" generate --model "$MODEL" --bogus hi
expect 2 "$ILORA" tokenize hello
expect 2 "$ILORA" loss --model "$MODEL"

# --- inspect ---
expect 0 "$ILORA" inspect "$MODEL/model.safetensors"
[ "$(grep -vc '^#' "$TMP/out")" = 52 ] || fail "inspect: expected 52 tensors"
grep -q "^lm_head.weight	F32	\[2104, 64\]$" "$TMP/out" || fail "inspect: lm_head line"
grep -q "^# format	pt$" "$TMP/out" || fail "inspect: metadata line"
expect 0 "$ILORA" inspect "$MODEL/pytorch_model.bin"
[ "$(wc -l <"$TMP/out")" = 54 ] || fail "inspect .bin: expected 54 tensors"
head -c 1000000 "$MODEL/model.safetensors" >"$TMP/cut.safetensors"
expect 1 "$ILORA" inspect "$TMP/cut.safetensors"
stderr_has "ilora: error: "
stderr_has "cut.safetensors"
expect 1 "$ILORA" inspect "$TMP/missing.safetensors"
stderr_has "missing.safetensors"

# --- tokenize (ids from tests/golden/t5-tiny/tokenize.json) ---
expect 0 "$ILORA" tokenize --model "$MODEL" "False and ( not False ) or False is" "" "hello</s>world"
printf '227 15 5 77 227 8 4 35 227 12 1\n1\n196 52 658 1 264 118 792 1\n' >"$TMP/want"
cmp -s "$TMP/out" "$TMP/want" || fail "tokenize ids differ: $(cat "$TMP/out")"

# --- generate: the 8 golden greedy generations (max_new_tokens 24) ---
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 24 --input "$DATA/generate_inputs.jsonl"
cmp -s "$TMP/out" "$DATA/generate_expected.jsonl" || fail "generate --input differs from the goldens"
stderr_has "2 of 8 answer(s) reached --max-new-tokens 24"
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 24 --batch 3 --input "$DATA/generate_inputs.jsonl"
cmp -s "$TMP/out" "$DATA/generate_expected.jsonl" || fail "generate --batch 3 differs from the goldens"
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 24 "Is the following sentence plausible? \"Luke Voit was out at first.\""
[ "$(cat "$TMP/out")" = "Tower error onionischeceptoff either fruits leash" ] || fail "generate TEXT: $(cat "$TMP/out")"

# --- generate on a BBH task file ---
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 4 --task "$REPO/data/bbh/boolean_expressions.json" --max-questions 2
[ "$(wc -l <"$TMP/out")" = 2 ] || fail "generate --task: expected 2 lines"
grep -q '^{"index":1,"input":"' "$TMP/out" || fail "generate --task: index field"
grep -q '"target":"' "$TMP/out" || fail "generate --task: target field"

# --- loss (goldens: forward.json batch) ---
expect 0 "$ILORA" loss --model "$MODEL" --examples "$DATA/examples.jsonl"
awk -v want="11.407636642456055 12.446647644042969 10.488606452941895" '
  { s = $0; sub(/.*"per_example":\[/, "", s); sub(/\].*/, "", s); n = split(s, got, ",");
    m = split(want, w, " "); ok = (n == m);
    for (i = 1; i <= m; i++) { d = got[i] - w[i]; if (d < 0) d = -d; if (d > 1e-4) ok = 0 }
    t = $0; sub(/.*"mean_token_loss":/, "", t); sub(/[,}].*/, "", t); d = t - 11.62079906463623;
    if (d < 0) d = -d; if (d > 1e-4) ok = 0; exit !ok }' "$TMP/out" || fail "loss values: $(cat "$TMP/out")"

# --- bad inputs: clear errors, exit 1 ---
printf '{"input": "a", "output": "b"}\n{"input": 3}\n' >"$TMP/bad.jsonl"
expect 1 "$ILORA" loss --model "$MODEL" --examples "$TMP/bad.jsonl"
stderr_has "bad.jsonl:2"
printf '{"input": "a", "output": "b"\n' >"$TMP/malformed.jsonl"
expect 1 "$ILORA" loss --model "$MODEL" --examples "$TMP/malformed.jsonl"
stderr_has "malformed.jsonl:1"
printf '{"input": "caf\351"}\n' >"$TMP/latin1.jsonl"
expect 1 "$ILORA" generate --model "$MODEL" --input "$TMP/latin1.jsonl"
stderr_has "invalid UTF-8"
printf '{"input": "a\\u0000b"}\n' >"$TMP/nul.jsonl"
expect 1 "$ILORA" generate --model "$MODEL" --input "$TMP/nul.jsonl"
stderr_has "nul.jsonl:1: a string holds a NUL character"
printf '{"input": "a\\\\u0000b"}\n' >"$TMP/backslash.jsonl"  # an escaped backslash, then text
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 2 --input "$TMP/backslash.jsonl"
grep -q '"input":"a\\\\u0000b"' "$TMP/out" || fail "escaped backslash input: $(cat "$TMP/out")"
printf '{"input": "\\ud800", "output": "b"}\n' >"$TMP/surrogate.jsonl"
expect 1 "$ILORA" loss --model "$MODEL" --examples "$TMP/surrogate.jsonl"
stderr_has "surrogate.jsonl:1: malformed JSON"
: >"$TMP/empty.jsonl"
expect 1 "$ILORA" generate --model "$MODEL" --input "$TMP/empty.jsonl"
stderr_has "no examples"
printf '{"canary": "x", "examples": []}' >"$TMP/empty_task.json"
expect 1 "$ILORA" generate --model "$MODEL" --task "$TMP/empty_task.json"
stderr_has "empty task"
expect 1 "$ILORA" generate --model "$TMP/nowhere" hi
stderr_has "nowhere"
mkdir "$TMP/broken" && cp "$MODEL/config.json" "$MODEL/spiece.model" "$TMP/broken/" && cp "$TMP/cut.safetensors" "$TMP/broken/model.safetensors"
expect 1 "$ILORA" generate --model "$TMP/broken" hi
stderr_has "model.safetensors"

[ "$fails" = 0 ] || { echo "$fails CLI check(s) failed" >&2; exit 1; }
echo "CLI checks passed"
