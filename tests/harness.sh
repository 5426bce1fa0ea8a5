# harness.sh - shared helpers of the CLI test scripts (tests/cli_*.sh), sourced after
# ILORA and REPO are set. Each check that fails is counted; a script ends with
#   [ "$fails" = 0 ] || { echo "..."; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE CMD...: run, keep stdout/stderr in $TMP/out, $TMP/err, check the exit code.
expect() {
  want=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  got=$?
  [ "$got" = "$want" ] || fail "exit $got (want $want): $* :: $(head -c 400 "$TMP/err")"
}
stderr_has() { grep -q -- "$1" "$TMP/err" || fail "stderr lacks '$1': $(head -c 400 "$TMP/err")"; }
stdout_has() { grep -q -- "$1" "$TMP/out" || fail "stdout lacks '$1': $(head -c 400 "$TMP/out")"; }
