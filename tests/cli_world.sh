#!/bin/sh
# CLI tests of `ilora world tasks`: usage and exit codes, the files it writes (counts, JSONL
# lines, BBH-format held-out tasks that `ilora generate --task` accepts), byte-identical
# reruns, and refusals (stale task files, an output path that is a file).
# Usage: sh tests/cli_world.sh path/to/ilora REPO_DIR
ILORA=$1
REPO=$2
MODEL=$REPO/tests/golden/t5-tiny
. "$REPO/tests/harness.sh"

# --- usage and help ---
expect 0 "$ILORA" --help
stdout_has "world"
expect 2 "$ILORA" world
stderr_has "ilora: error: "
expect 0 "$ILORA" world --help
stdout_has "usage: ilora world"
expect 2 "$ILORA" world frobnicate
stderr_has "unknown world command 'frobnicate'"
expect 0 "$ILORA" world tasks --help
stdout_has "usage: ilora world tasks"
expect 2 "$ILORA" world tasks
stderr_has "needs --out"
expect 2 "$ILORA" world tasks --out "$TMP/x" --train-per-family 0
expect 2 "$ILORA" world tasks --out "$TMP/x" --train-per-family abc
expect 2 "$ILORA" world tasks --out "$TMP/x" --heldout-examples 251
expect 2 "$ILORA" world tasks --out "$TMP/x" --seed -1
expect 2 "$ILORA" world tasks --out "$TMP/x" --bogus
expect 2 "$ILORA" world tasks --out "$TMP/x" extra
expect 2 "$ILORA" world tasks --list --out "$TMP/x"
[ -e "$TMP/x" ] && fail "a usage error created the output directory"

# --- --list: the tables ---
expect 0 "$ILORA" world tasks --list
n_fam=$(awk '/^# held-out/ { exit } !/^#/ { n++ } END { print n + 0 }' "$TMP/out")
n_held=$(awk 'f && !/^#/ { n++ } /^# held-out/ { f = 1 } END { print n + 0 }' "$TMP/out")
[ "$n_fam" -ge 48 ] || fail "--list: $n_fam families (want >= 48)"
[ "$n_held" -ge 12 ] || fail "--list: $n_held held-out tasks (want >= 12)"
grep -q '^heldout_mix_' "$TMP/out" || fail "--list: no mixture task"

# --- writing the tasks ---
W=$TMP/world/tasks
expect 0 "$ILORA" world tasks --out "$W" --seed 3 --train-per-family 5 --heldout-examples 20
stdout_has "wrote $n_fam upstream families"
[ "$(ls "$W/upstream" | grep -c '\.jsonl$')" = "$n_fam" ] || fail "upstream: $(ls "$W/upstream" | wc -l) files, want $n_fam"
[ "$(ls "$W/heldout" | grep -c '\.json$')" = "$n_held" ] || fail "heldout: $(ls "$W/heldout" | wc -l) files, want $n_held"
[ -s "$W/tasks.json" ] || fail "no tasks.json manifest"
for f in "$W"/upstream/*.jsonl; do
  [ "$(wc -l <"$f")" = 5 ] || { fail "$f: $(wc -l <"$f") lines, want 5"; break; }
done
grep -q '^{"input": ".*", "output": ".*"}$' "$W/upstream/sort_words.jsonl" || fail "sort_words.jsonl: line layout"
grep -q '"/' "$W/tasks.json" && fail "tasks.json holds an absolute path"
head -c 12 "$W/heldout/heldout_mix_compare_sort.json" | grep -q '^{"canary": "' || fail "held-out file layout"

# a held-out file is a BBH task for `ilora generate --task`
expect 0 "$ILORA" generate --model "$MODEL" --max-new-tokens 4 --task "$W/heldout/heldout_mix_compare_sort.json" --max-questions 1
[ "$(wc -l <"$TMP/out")" = 1 ] || fail "generate --task on a held-out file: expected 1 line"
stdout_has '"target":"'
# and an upstream file is an --examples file for `ilora loss`
expect 0 "$ILORA" loss --model "$MODEL" --examples "$W/upstream/add_number.jsonl"

# same arguments, same bytes (fresh directory, and rewriting in place)
expect 0 "$ILORA" world tasks --out "$TMP/again" --seed 3 --train-per-family 5 --heldout-examples 20
diff -r "$W" "$TMP/again" >/dev/null || fail "two runs with the same seed differ"
expect 0 "$ILORA" world tasks --out "$W" --seed 3 --train-per-family 5 --heldout-examples 20
diff -r "$W" "$TMP/again" >/dev/null || fail "rewriting in place changed the files"
expect 0 "$ILORA" world tasks --out "$TMP/other" --seed 4 --train-per-family 5 --heldout-examples 20
cmp -s "$W/upstream/add_number.jsonl" "$TMP/other/upstream/add_number.jsonl" && fail "--seed has no effect"

# --- refusals: runtime errors, exit 1 ---
echo '{}' >"$W/upstream/zz_old_family.jsonl"
expect 1 "$ILORA" world tasks --out "$W" --seed 3 --train-per-family 5 --heldout-examples 20
stderr_has "zz_old_family.jsonl"
stderr_has "ilora: error: "
rm "$W/upstream/zz_old_family.jsonl"
: >"$TMP/afile"
expect 1 "$ILORA" world tasks --out "$TMP/afile" --train-per-family 5 --heldout-examples 20
stderr_has "afile"

[ "$fails" = 0 ] || { echo "$fails CLI check(s) failed" >&2; exit 1; }
echo "CLI checks passed"
