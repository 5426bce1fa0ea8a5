#!/bin/sh
# CLI tests of the sentence embedder and the library index: `ilora embed`, `ilora tokenize
# --embedder`, `ilora index` (exit codes, outputs, cache reuse, bad inputs).
# Usage: sh tests/cli_index.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
EMB=$REPO/tests/golden/bert-tiny
LIB=$REPO/examples/library
. "$REPO/tests/harness.sh"
repo_cache_before=$(cksum "$LIB/.ilora-index.json" 2>/dev/null)

# --- usage and help ---
for c in index embed; do
  expect 0 "$ILORA" $c --help
  grep -q "usage: ilora $c" "$TMP/out" || fail "$c --help prints no usage"
done
expect 0 "$ILORA" tokenize --help
stdout_has "--embedder DIR"
expect 0 "$ILORA" --help
stdout_has "index"
expect 2 "$ILORA" index --embedder "$EMB"
expect 2 "$ILORA" index --library "$LIB"
expect 2 "$ILORA" index --library "$LIB" --embedder "$EMB" --max-examples -1
expect 2 "$ILORA" index --library "$LIB" --embedder "$EMB" --bogus
expect 2 "$ILORA" index --library "$LIB" --embedder "$EMB" extra
expect 2 "$ILORA" index --library "$LIB" --embedder "$EMB" --centroids x.json --rebuild
expect 2 "$ILORA" embed hello
expect 2 "$ILORA" embed --embedder "$EMB"
expect 2 "$ILORA" embed --embedder "$EMB" --input x.jsonl hello
expect 2 "$ILORA" tokenize --model "$REPO/tests/golden/t5-tiny" --embedder "$EMB" hi
expect 2 "$ILORA" tokenize --embedder "$EMB"
stderr_has "ilora: error: "

# --- tokenize --embedder: WordPiece ids with [CLS]=2 / [SEP]=3 ---
# "hello [SEP] world" is a case of tests/golden/bert-tiny/tokenize.json; "Hello world" uses
# the golden ids of "hello" and "world" from its case "Hello, world! How's it going? ...".
expect 0 "$ILORA" tokenize --embedder "$EMB" "Hello world" "hello [SEP] world"
printf '2 232 1162 86 23 1160 1209 3\n2 232 1162 86 3 23 1160 1209 3\n' >"$TMP/want"
cmp -s "$TMP/out" "$TMP/want" || fail "tokenize --embedder ids differ: $(cat "$TMP/out")"
# Truncated as the embedder truncates: max_seq_length 128, [SEP] kept last.
long=$(awk 'BEGIN { for (i = 0; i < 300; i++) printf "true "; }')
expect 0 "$ILORA" tokenize --embedder "$EMB" "$long"
awk '{ if (NF != 128 || $1 != 2 || $NF != 3) exit 1 }' "$TMP/out" || fail "tokenize --embedder: truncation to 128 ids"
# The T5 form is unchanged.
expect 0 "$ILORA" tokenize --model "$REPO/tests/golden/t5-tiny" "hello</s>world"
[ "$(cat "$TMP/out")" = "196 52 658 1 264 118 792 1" ] || fail "tokenize --model changed: $(cat "$TMP/out")"

# --- embed: one JSON array of arrays, 32 floats each ---
expect 0 "$ILORA" embed --embedder "$EMB" "Which statement is sarcastic?" "second text" "Which statement is sarcastic?"
[ "$(head -n 1 "$TMP/out")" = "[" ] && [ "$(tail -n 1 "$TMP/out")" = "]" ] || fail "embed: not one JSON array"
[ "$(tr -cd '[' <"$TMP/out" | wc -c)" = 4 ] || fail "embed: expected 3 vectors (4 '[')"
[ "$(tr -cd ']' <"$TMP/out" | wc -c)" = 4 ] || fail "embed: expected 4 ']'"
awk -F, 'NR > 1 && /^\[/ { n++; line = $0; sub(/^\[/, "", line); sub(/\],?$/, "", line);
    k = split(line, v, ","); if (k != 32) exit 1;
    for (i = 1; i <= k; i++) if (v[i] !~ /^-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?$/) exit 1 }
  END { exit n != 3 }' "$TMP/out" || fail "embed: vectors are not 3 x 32 numbers: $(head -c 300 "$TMP/out")"
# The same text twice: the same vector (to float rounding: BLAS blocking may differ by row).
awk -F, 'NR == 2 || NR == 4 { sub(/^\[/, "", $0); sub(/\],?$/, "", $0); n = split($0, v, ",");
    for (i = 1; i <= n; i++) { if (NR == 2) a[i] = v[i]; else { d = a[i] - v[i]; if (d < 0) d = -d;
    if (d > 1e-6) exit 1 } } }' "$TMP/out" || fail "embed: same text, different vectors"
# Golden (tests/golden/bert-tiny/embeddings.json, sentence_embedding_normalized[0][0..2]).
sed -n 2p "$TMP/out" | awk -F, '{ sub(/^\[/, "", $1);
    w[1] = -0.25231996178627014; w[2] = -0.04071567952632904; w[3] = 0.08277653157711029;
    for (i = 1; i <= 3; i++) { d = $i - w[i]; if (d < 0) d = -d; if (d > 1e-5) exit 1 } }' ||
  fail "embed: first vector differs from the golden"
printf '{"input": "Which statement is sarcastic?"}\n{"input": "second text", "output": "x"}\n' >"$TMP/in.jsonl"
expect 0 "$ILORA" embed --embedder "$EMB" --input "$TMP/in.jsonl"
[ "$(tr -cd '[' <"$TMP/out" | wc -c)" = 3 ] || fail "embed --input: expected 2 vectors"
printf '{"input": "a"}\n{"input": 3}\n' >"$TMP/badin.jsonl"
expect 1 "$ILORA" embed --embedder "$EMB" --input "$TMP/badin.jsonl"
stderr_has "badin.jsonl:2"
expect 1 "$ILORA" embed --embedder "$TMP/nowhere" hi
stderr_has "nowhere"

# --- index: build, reuse, refresh (on a copy: the repository is never written) ---
cp -R "$LIB" "$TMP/lib"
rm -f "$TMP/lib/.ilora-index.json"
expect 0 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stdout_has "^adapters	6$"
stdout_has "^reused	0$"
stdout_has "^recomputed	6$"
stdout_has "^dim	32$"
stdout_has "^max_examples	100$"
stdout_has "^index	$TMP/lib/.ilora-index.json$"
[ -f "$TMP/lib/.ilora-index.json" ] || fail "index: no cache file"
grep -q '"version": 1' "$TMP/lib/.ilora-index.json" || fail "index file: version"
[ "$(grep -c '"name": "lora_' "$TMP/lib/.ilora-index.json")" = 6 ] || fail "index file: 6 adapters"
expect 0 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stdout_has "^reused	6$"
stdout_has "^recomputed	0$"
stdout_has "^written	no"
printf '{"input": "Sort the following words alphabetically: List: b a", "output": "a b"}\n' >>"$TMP/lib/lora_3/train.jsonl"
expect 0 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stdout_has "^reused	5$"
stdout_has "^recomputed	1$"
expect 0 "$ILORA" index --library "$TMP/lib" --embedder "$EMB" --rebuild
stdout_has "^recomputed	6$"
expect 0 "$ILORA" index --library "$TMP/lib" --embedder "$EMB" --max-examples 3
stdout_has "^recomputed	6$"
stdout_has "^max_examples	3$"
stderr_has "max_examples changed"
# The repository's own library, indexed elsewhere.
expect 0 "$ILORA" index --library "$LIB" --embedder "$EMB" --index "$TMP/repo-index.json"
stdout_has "^index	$TMP/repo-index.json$"
[ -f "$TMP/repo-index.json" ] || fail "index --index: no file"
# Precomputed centroids: checked against the library (names, dimension), nothing written.
expect 0 "$ILORA" index --library "$LIB" --embedder "$EMB" --centroids "$TMP/repo-index.json"
stdout_has "^supplied	6$"
stderr_has "fingerprints not checked"
sed 's/"name": "lora_5"/"name": "lora_9"/' "$TMP/repo-index.json" >"$TMP/wrong.json"
expect 1 "$ILORA" index --library "$LIB" --embedder "$EMB" --centroids "$TMP/wrong.json"
stderr_has "wrong.json"
stderr_has "lora_9"
# A manifest library: paths relative to the manifest, index next to it.
printf '{"adapters": [{"name": "sorting", "adapter": "lib/lora_3", "data": "lib/lora_3/train.jsonl"}, {"adapter": "lib/lora_0", "data": "lib/lora_0/train.jsonl"}]}\n' >"$TMP/library.json"
expect 0 "$ILORA" index --library "$TMP/library.json" --embedder "$EMB"
stdout_has "^adapters	2$"
stdout_has "^index	$TMP/.library.ilora-index.json$"

# --- bad inputs: exit 1, the file named ---
mv "$TMP/lib/lora_1/train.jsonl" "$TMP/keep.jsonl"
expect 1 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stderr_has "lora_1/train.jsonl"
stderr_has "adapter 'lora_1'"
: >"$TMP/lib/lora_1/train.jsonl"
expect 1 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stderr_has "lora_1/train.jsonl: no examples"
printf '{"input": "a", "output": "b"}\n{"input": "a", "output"\n' >"$TMP/lib/lora_1/train.jsonl"
expect 1 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stderr_has "lora_1/train.jsonl:2"
mv "$TMP/keep.jsonl" "$TMP/lib/lora_1/train.jsonl"
rm "$TMP/lib/lora_2/adapter_config.json"
expect 1 "$ILORA" index --library "$TMP/lib" --embedder "$EMB"
stderr_has "lora_2/adapter_config.json"
printf '{"adapters": [{"name": "x", "adapter": "lib/lora_0", "data": "lib/lora_0/train.jsonl"}, {"name": "x", "adapter": "lib/lora_3", "data": "lib/lora_3/train.jsonl"}]}\n' >"$TMP/dup.json"
expect 1 "$ILORA" index --library "$TMP/dup.json" --embedder "$EMB"
stderr_has "dup.json: duplicate adapter name 'x'"
printf '{"adapters": [{"name": "x", "adapter": "lib/missing", "data": "lib/lora_0/train.jsonl"}]}\n' >"$TMP/miss.json"
expect 1 "$ILORA" index --library "$TMP/miss.json" --embedder "$EMB"
stderr_has "lib/missing"
expect 1 "$ILORA" index --library "$TMP/nowhere" --embedder "$EMB"
stderr_has "nowhere"
expect 1 "$ILORA" index --library "$LIB" --embedder "$TMP/noembedder" --index "$TMP/x.json"
stderr_has "noembedder"
expect 1 "$ILORA" index --library "$LIB" --embedder "$EMB" --index "$TMP/no/such/dir/index.json"
stderr_has "no/such/dir/index.json"
[ "$(cksum "$LIB/.ilora-index.json" 2>/dev/null)" = "$repo_cache_before" ] || fail "the tests wrote into examples/library"

[ "$fails" = 0 ] || { echo "$fails CLI check(s) failed" >&2; exit 1; }
echo "CLI index/embed checks passed"
