#!/bin/sh
# End-to-end tests of `ilora eval` with the golden tiny model, the example library and the
# golden tiny embedder: output structure, the shot/question split, scoring (including a task
# built so that known answers are right or wrong), reproducibility, resuming, settings
# mismatches, the BBH data quirks (BBH-QUIRKS.md, cases row B29) and bad inputs.
# Usage: sh tests/cli_eval.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
MODEL=$REPO/tests/golden/t5-tiny
EMB=$REPO/tests/golden/bert-tiny
LIB=$REPO/examples/library
TASKS=$REPO/data/bbh
. "$REPO/tests/harness.sh"
repo_cache_before=$(cksum "$LIB/.ilora-index.json" 2>/dev/null)

# The common arguments: two BBH tasks, 3 questions each, small budgets. The index goes to
# the temporary directory so nothing is written into the repository.
set -- --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TASKS" \
  --max-questions 3 --steps 5 --topn 3 --max-new-tokens 8 --max-input-tokens 256 \
  --index "$TMP/index.json"
T2="--task boolean_expressions --task causal_judgement"
METHODS="zeroshot icl lorahub batchcomp ilora"

# --- help and usage errors (exit 2) ---
expect 0 "$ILORA" eval --help
grep -q "usage: ilora eval" "$TMP/out" || fail "eval --help prints no usage"
grep -q -- "--retrieval" "$TMP/out" || fail "eval --help lacks --retrieval"
expect 0 "$ILORA" --help
grep -q "eval" "$TMP/out" || fail "ilora --help does not list eval"
expect 2 "$ILORA" eval "$@" $T2                               # no --out
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --methods zeroshot,finetune
stderr_has "unknown method 'finetune'"
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --methods ilora,ilora
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --methods ""
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --shots 0
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --topn 0
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --steps 0
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --retrieval dot
stderr_has "retrieval"
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --compose sum
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --optimizer sgd
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" --centroids "$TMP/c.json"   # with --index
expect 2 "$ILORA" eval "$@" $T2 --out "$TMP/u" extra
[ -e "$TMP/u" ] && fail "a usage error created --out"

# --- the main run ---
expect 0 "$ILORA" eval "$@" $T2 --out "$TMP/a"
cp "$TMP/out" "$TMP/a.stdout"
cp "$TMP/err" "$TMP/a.stderr"
OUT=$TMP/a
for f in scores.json scores.csv table.md settings.json; do
  [ -s "$OUT/$f" ] || fail "missing $f"
done
cmp -s "$OUT/table.md" "$TMP/a.stdout" || fail "stdout is not table.md"
grep -q '^| task | zeroshot | icl | lorahub | batchcomp | ilora |$' "$OUT/table.md" || fail "table header"
grep -q '^| ilora vs | wins | ties | losses |$' "$OUT/table.md" || fail "win/loss block (ilora last)"
[ "$(grep -c 'computed in' "$TMP/a.stderr")" = 10 ] || fail "expected 10 computed units: $(cat "$TMP/a.stderr")"
grep -q "$(printf '\r')" "$TMP/a.stderr" && fail "progress line written to a stderr that is not a terminal"
for t in boolean_expressions causal_judgement; do
  for m in $METHODS; do
    [ -s "$OUT/adapters/$t/$m.json" ] || fail "missing adapters/$t/$m.json"
    grep -q "\"$t\": {.*\"$m\": {\"correct\": [0-9]*, \"total\": [0-9]*, \"accuracy\": " "$OUT/scores.json" \
      || fail "scores.json lacks $t/$m"
    grep -q "^$t,$m,[0-9]*,[0-9]*,[0-9.]*$" "$OUT/scores.csv" || fail "scores.csv lacks $t/$m"
  done
  for f in zeroshot icl batchcomp ilora lorahub.seed1 lorahub.seed2 lorahub.seed3; do
    p=$OUT/predictions/$t/$f.jsonl
    [ "$(wc -l <"$p" 2>/dev/null)" = 3 ] || fail "$p: expected 3 lines"
    grep -v -q '^{"index": [0-9]*, "input": ".*", "target": ".*", "prediction": ".*", "correct": \(true\|false\),.* "truncated": \(true\|false\), "input_truncated": \(true\|false\)}$' "$p" \
      && fail "$p: a line is not a prediction record: $(head -1 "$p")"
  done
  grep -c '"shot": [0-9]*,' "$OUT/predictions/$t/ilora.jsonl" | grep -q '^3$' || fail "$t: ilora lines lack the routed shot"
  # one composition per shot with its adapters, weights and traces
  grep -c '"adapters": \[' "$OUT/adapters/$t/ilora.json" | grep -q '^5$' || fail "$t: ilora.json: expected 5 compositions"
  grep -q '"objective_per_step": \[[^]]*,[^]]*\]' "$OUT/adapters/$t/ilora.json" || fail "$t: ilora.json lacks traces"
  grep -c '"run": [123],' "$OUT/adapters/$t/lorahub.json" | grep -q '^6$' || fail "$t: lorahub.json: expected 3 runs + 3 compositions"
done
grep -q '"settings": {"model":' "$OUT/scores.json" || fail "scores.json lacks the settings"
grep -q '"steps": 5' "$OUT/settings.json" || fail "settings.json lacks steps"
grep -q '"average": {' "$OUT/scores.json" || fail "scores.json lacks the average"
grep -q '"average_without_tasks_all_below_10": {' "$OUT/scores.json" || fail "scores.json lacks the filtered average"
grep -q '{"method": "ilora", "versus": "lorahub", "wins": [0-9]*, "ties": [0-9]*, "losses": [0-9]*}' "$OUT/scores.json" \
  || fail "scores.json lacks win/loss"

# --- the split: distinct question indices, none of them a shot, the same for every method;
# the routed shot is one of the shots ---
for t in boolean_expressions causal_judgement; do
  shots=$(sed -n 's/^  "shots": \[\(.*\)\],$/\1/p' "$OUT/adapters/$t/ilora.json" | tr -d ' ')
  [ "$(echo "$shots" | tr ',' '\n' | sort -u | wc -l)" = 5 ] || fail "$t: expected 5 distinct shots: $shots"
  qs=$(sed 's/^{"index": \([0-9]*\),.*/\1/' "$OUT/predictions/$t/zeroshot.jsonl")
  [ "$(echo "$qs" | sort -u | wc -l)" = 3 ] || fail "$t: question indices repeat: $qs"
  for q in $qs; do
    echo ",$shots," | grep -q ",$q," && fail "$t: question $q is a shot"
  done
  for f in icl batchcomp ilora lorahub.seed1 lorahub.seed3; do
    [ "$(sed 's/^{"index": \([0-9]*\),.*/\1/' "$OUT/predictions/$t/$f.jsonl")" = "$qs" ] \
      || fail "$t: $f answers other questions than zeroshot"
  done
  for s in $(sed 's/.*"shot": \([0-9]*\),.*/\1/' "$OUT/predictions/$t/ilora.jsonl"); do
    echo ",$shots," | grep -q ",$s," || fail "$t: routed shot $s is not a shot"
  done
  for m in zeroshot ilora; do
    grep -q "\"shots\": \[$(echo "$shots" | sed 's/,/, /g')\]" "$OUT/adapters/$t/$m.json" || fail "$t: $m.json: other shots"
  done
done

# --- scoring: "correct" recomputed with the reference normalisation (strip, lower-case,
# delete "."), and each accuracy = 100 * correct / total over its prediction files ---
norm_check='
  function field(s, key,   r) {
    if (!match(s, "\"" key "\": \"([^\"\\\\]|\\\\.)*\"")) return "\001missing";
    r = substr(s, RSTART + length(key) + 5, RLENGTH - length(key) - 6)
    return r
  }
  function norm(s) { sub(/^[ ]+/, "", s); sub(/[ ]+$/, "", s); s = tolower(s); gsub(/\./, "", s); return s }
  { p = field($0, "prediction"); t = field($0, "target")
    want = (norm(p) == norm(t)) ? "true" : "false"
    if (index($0, "\"correct\": " want ",") == 0) { print FILENAME ": line " NR ": correct should be " want; bad = 1 } }
  END { exit bad }'
for p in "$OUT"/predictions/*/*.jsonl; do
  awk "$norm_check" "$p" >&2 || fail "$p: correct does not match the normalised comparison"
done
for t in boolean_expressions causal_judgement; do
  for m in $METHODS; do
    c=$(cat "$OUT/predictions/$t/$m"*.jsonl | grep -c '"correct": true')
    n=$(cat "$OUT/predictions/$t/$m"*.jsonl | wc -l)
    awk -F, -v t="$t" -v m="$m" -v c="$c" -v n="$n" '
      $1 == t && $2 == m { found = 1; d = $5 - 100 * c / n; if (d < 0) d = -d;
        if ($3 != c || $4 != n || d > 1e-3) { print "scores.csv " t "/" m ": " $0 " vs " c "/" n; exit 1 } }
      END { if (!found) exit 1 }' "$OUT/scores.csv" >&2 || fail "scores.csv $t/$m is not the mean of correct"
  done
done

# --- reproducibility: a second run gives byte-identical files ---
expect 0 "$ILORA" eval "$@" $T2 --out "$TMP/b"
for f in $(cd "$OUT" && find . -type f | sort); do
  cmp -s "$OUT/$f" "$TMP/b/$f" || fail "not reproducible: $f"
done
[ "$(cd "$OUT" && find . -type f | sort)" = "$(cd "$TMP/b" && find . -type f | sort)" ] || fail "the runs wrote different files"

# --- resuming: everything finished is reused; a deleted unit alone is recomputed ---
expect 0 "$ILORA" eval "$@" $T2 --out "$OUT"
[ "$(grep -c 'reused (finished earlier)' "$TMP/err")" = 10 ] || fail "resume: expected 10 reused units: $(cat "$TMP/err")"
grep -q 'computed in' "$TMP/err" && fail "resume recomputed a finished unit"
cmp -s "$TMP/out" "$TMP/a.stdout" || fail "resume: a different table"
rm "$OUT/predictions/causal_judgement/ilora.jsonl" "$OUT/predictions/boolean_expressions/lorahub.seed2.jsonl"
expect 0 "$ILORA" eval "$@" $T2 --out "$OUT"
[ "$(grep -c 'computed in' "$TMP/err")" = 2 ] || fail "resume: expected 2 recomputed units: $(cat "$TMP/err")"
grep -q 'causal_judgement: ilora: computed' "$TMP/err" || fail "resume: causal_judgement/ilora not recomputed"
grep -q 'boolean_expressions: lorahub: computed' "$TMP/err" || fail "resume: boolean_expressions/lorahub not recomputed"
for f in $(cd "$TMP/b" && find . -type f | sort); do
  cmp -s "$OUT/$f" "$TMP/b/$f" || fail "resumed run differs: $f"
done
# a truncated predictions file (an interrupted writer cannot leave one, but a user can)
head -n 1 "$TMP/b/predictions/boolean_expressions/icl.jsonl" >"$OUT/predictions/boolean_expressions/icl.jsonl"
expect 0 "$ILORA" eval "$@" $T2 --out "$OUT"
grep -q 'boolean_expressions: icl: recomputing (.*icl.jsonl: 1 answers, expected 3)' "$TMP/err" || fail "resume: truncated file not noticed: $(cat "$TMP/err")"
cmp -s "$OUT/predictions/boolean_expressions/icl.jsonl" "$TMP/b/predictions/boolean_expressions/icl.jsonl" || fail "icl not restored"
# another method set or task subset reuses the finished units
expect 0 "$ILORA" eval "$@" --out "$OUT" --methods ilora,zeroshot --task boolean_expressions
[ "$(grep -c 'reused (finished earlier)' "$TMP/err")" = 2 ] || fail "subset: expected 2 reused units: $(cat "$TMP/err")"
grep -q '^| task | ilora | zeroshot |$' "$TMP/out" || fail "subset: table columns follow --methods"

# --- settings mismatch: refused without --force; --force starts over ---
expect 1 "$ILORA" eval "$@" $T2 --out "$OUT" --seed 3
stderr_has "was made with different settings (seed: 42 -> 3); use a new --out or --force"
expect 1 "$ILORA" eval "$@" $T2 --out "$OUT" --steps 6 --retrieval l2
stderr_has "steps: 5 -> 6"
stderr_has 'retrieval: "cosine" -> "l2"'
expect 0 "$ILORA" eval "$@" $T2 --out "$OUT" --seed 3 --methods zeroshot --force
[ ! -e "$OUT/predictions/boolean_expressions/ilora.jsonl" ] || fail "--force kept old results"
grep -q '"seed": 3' "$OUT/settings.json" || fail "--force: settings.json not replaced"
mkdir "$TMP/other" && echo x >"$TMP/other/notes.txt"
expect 1 "$ILORA" eval "$@" $T2 --out "$TMP/other"
stderr_has "not empty and holds no settings.json"
[ -f "$TMP/other/notes.txt" ] || fail "eval removed a foreign file"

# --- top-N larger than the library: clamped with a warning ---
expect 0 "$ILORA" eval "$@" --out "$TMP/clamp" --methods batchcomp --task boolean_expressions --topn 50
stderr_has "warning: --topn 50 is larger than the library (6 adapters): using all 6"
grep -c '"lora_' "$TMP/clamp/adapters/boolean_expressions/batchcomp.json" >/dev/null || fail "clamp: no adapters"
[ "$(grep -o '"lora_[0-9]"' "$TMP/clamp/adapters/boolean_expressions/batchcomp.json" | wc -l)" = 6 ] || fail "clamp: expected 6 adapters"

# --- other retrievals and an optimiser run end to end ---
expect 0 "$ILORA" eval "$@" $T2 --out "$TMP/bm25" --methods ilora --retrieval bm25 --optimizer cmaes --compose delta
grep -q '"retrieval": "bm25"' "$TMP/bm25/settings.json" || fail "bm25 run: settings"
grep -q '"optimizer": "cmaes"' "$TMP/bm25/adapters/causal_judgement/ilora.json" || fail "cmaes run: optimizer not recorded"

# --- scoring on a task built from the model's own answers: known right and wrong ---
# Example i has the input "input i", except example 1 which repeats example 0's input
# (BBH-QUIRKS 7: examples are keyed by index, not by input). Even examples get the model's
# own answer as target (with case, spaces and "." changed where that is safe); odd ones get
# "in" + the answer, which contains it but is not it (like valid / invalid), or the answer
# without its inner spaces (like "]]" against "] ]").
mkdir "$TMP/known"
i=0; : >"$TMP/known_inputs.jsonl"
while [ $i -lt 8 ]; do n=$i; [ $i = 1 ] && n=0; echo "{\"input\": \"input $n\"}" >>"$TMP/known_inputs.jsonl"; i=$((i + 1)); done
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 6 --input "$TMP/known_inputs.jsonl"
sed 's/.*"output":"\(.*\)","truncated":.*/\1/' "$TMP/out" >"$TMP/answers"
awk '
  BEGIN { printf "{\"canary\": \"test\", \"examples\": [" }
  { i = NR - 1; a = $0
    if (i == 5 && a ~ / /) { t = a; gsub(/ /, "", t) }            # spaces are part of it
    else if (i % 2 == 1) t = "in" a
    else if (i == 2) t = "  " a "."
    else if (i == 4 && a !~ /\\/) t = toupper(a)
    else if (i == 6) t = a ".."
    else t = a
    n = (i == 1) ? 0 : i
    printf "%s{\"input\": \"input %d\", \"target\": \"%s\"}", (i ? ", " : ""), n, t }
  END { print "]}" }' "$TMP/answers" >"$TMP/known/known.json"
expect 0 "$ILORA" eval --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TMP/known" \
  --methods zeroshot --shots 1 --max-new-tokens 6 --out "$TMP/k" --index "$TMP/index.json"
P=$TMP/k/predictions/known/zeroshot.jsonl
[ "$(wc -l <"$P")" = 7 ] || fail "known task: expected 7 questions"
awk '{ i = $0; sub(/^{"index": /, "", i); sub(/,.*/, "", i)
       want = (i % 2 == 0) ? "true" : "false"
       if (index($0, "\"correct\": " want ",") == 0) { print "known task: example " i " should be " want ": " $0; bad = 1 } }
     END { exit bad }' "$P" >&2 || fail "known task: correct flags"
even=$(sed 's/^{"index": \([0-9]*\),.*/\1/' "$P" | awk '$1 % 2 == 0' | wc -l)
grep -q "^known,zeroshot,$even,7," "$TMP/k/scores.csv" || fail "known task: expected $even/7 correct: $(cat "$TMP/k/scores.csv")"

# --- BBH quirks on the real files (B29): every example kept, keyed by index; free-text
# targets scored like the others ---
expect 0 "$ILORA" eval --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TASKS" \
  --task causal_judgement --task movie_recommendation --task ruin_names --methods zeroshot \
  --shots 1 --max-new-tokens 1 --max-input-tokens 16 --out "$TMP/q" --index "$TMP/index.json"
for tn in causal_judgement:187 movie_recommendation:250 ruin_names:250; do
  t=${tn%:*}; n=${tn#*:}
  P=$TMP/q/predictions/$t/zeroshot.jsonl
  shot=$(sed -n 's/^  "shots": \[\([0-9]*\)\],$/\1/p' "$TMP/q/adapters/$t/zeroshot.json")
  all=$( (sed 's/^{"index": \([0-9]*\),.*/\1/' "$P"; echo "$shot") | sort -n | uniq | wc -l)
  [ "$all" = "$n" ] || fail "$t: shots + questions cover $all of $n examples"
  [ "$(wc -l <"$P")" = $((n - 1)) ] || fail "$t: expected $((n - 1)) questions"
done
P=$TMP/q/predictions/causal_judgement/zeroshot.jsonl
for i in 32 119 36 104; do
  grep -q "^{\"index\": $i," "$P" || grep -q "\"shots\": \[$i\]" "$TMP/q/adapters/causal_judgement/zeroshot.json" \
    || fail "causal_judgement: duplicate-input example $i is missing"
done
grep -q '"target": "Monsters, Inc", .*"correct": false' "$TMP/q/predictions/movie_recommendation/zeroshot.jsonl" \
  || fail "movie_recommendation: free-text target"
grep -q '"target": "dearth, wind, & fire", .*"correct": false' "$TMP/q/predictions/ruin_names/zeroshot.jsonl" \
  || fail "ruin_names: free-text target"
grep -q '"target": "rita, sue and bob poo", .*"correct": false' "$TMP/q/predictions/ruin_names/zeroshot.jsonl" \
  || fail "ruin_names: free-text target 2"
grep -q '"input_truncated": true}' "$TMP/q/predictions/ruin_names/zeroshot.jsonl" || fail "input_truncated never set"
grep -q '^causal_judgement,zeroshot,[0-9]*,186,' "$TMP/q/scores.csv" || fail "causal_judgement: total should be 186"

# --- bad inputs (exit 1, naming the file or task) ---
expect 1 "$ILORA" eval "$@" --out "$TMP/e" --shots 187 --task causal_judgement --methods zeroshot
stderr_has "task causal_judgement"
stderr_has "the task has 187 examples"
expect 1 "$ILORA" eval "$@" --out "$TMP/e" --task no_such_task
stderr_has "no_such_task"
expect 1 "$ILORA" eval "$@" $T2 --out "$TMP/e" --model "$TMP/nowhere"
stderr_has "nowhere"
mkdir "$TMP/notasks" && echo hi >"$TMP/notasks/README.md"
expect 1 "$ILORA" eval --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TMP/notasks" --out "$TMP/e"
stderr_has "no task files"
expect 1 "$ILORA" eval --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TMP/nowhere" --out "$TMP/e"
stderr_has "nowhere"
mkdir "$TMP/badtasks" && printf '{"canary": "x", "examples": [{"input": "a", "target": 3}]}' >"$TMP/badtasks/broken.json"
expect 1 "$ILORA" eval --model "$MODEL" --library "$LIB" --embedder "$EMB" --tasks "$TMP/badtasks" --out "$TMP/e"
stderr_has "broken.json: examples\[0\]: field 'target'"
expect 1 "$ILORA" eval "$@" $T2 --out "$TMP/e" --library "$TMP/nowhere"
stderr_has "nowhere"
echo x >"$TMP/afile"
expect 1 "$ILORA" eval "$@" $T2 --out "$TMP/afile"
stderr_has "not a directory"

# --- fft (full fine-tuning on the shots) joins the table as a method ---
expect 0 "$ILORA" eval "$@" --task boolean_expressions --out "$TMP/fft" --methods zeroshot,fft
[ "$(wc -l <"$TMP/fft/predictions/boolean_expressions/fft.jsonl")" = 3 ] || fail "fft: expected 3 predictions"
grep -q '| boolean_expressions |.*|.*|' "$TMP/out" || fail "fft: no table row"
head -1 "$TMP/out" | grep -q '| task | zeroshot | fft |' || fail "fft: table header"

[ "$(cksum "$LIB/.ilora-index.json" 2>/dev/null)" = "$repo_cache_before" ] || fail "the tests wrote into examples/library"
[ "$fails" = 0 ] || { echo "$fails eval check(s) failed" >&2; exit 1; }
echo "CLI eval checks passed"
