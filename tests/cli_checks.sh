# Shared by the shell tests of the `ssfpn` command (sourced, not run):
# pass/fail counting and checks of exit status and error output. The caller
# sets $work to a scratch folder before sourcing.

passed=0
failed=0

pass () { passed=$((passed + 1)); }
fail () { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect STATUS DESCRIPTION -- COMMAND...: runs COMMAND with stdout in
# $work/out and stderr in $work/err and checks the exit status.
expect () {
  want=$1; what=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"
  got=$?
  if [ "$got" -eq "$want" ]; then
    pass
    return 0
  fi
  fail "$what: exit $got, expected $want ($(head -c 300 "$work/err"))"
  return 1
}

# stderr_has TEXT DESCRIPTION: the error output holds TEXT on one line.
stderr_has () {
  if grep -F -q -- "$1" "$work/err" && [ "$(wc -l <"$work/err")" -eq 1 ]; then
    pass
  else
    fail "$2: stderr is not one line holding '$1': $(cat "$work/err")"
  fi
}

# stdout_has TEXT DESCRIPTION: the standard output holds TEXT.
stdout_has () {
  if grep -F -q -- "$1" "$work/out"; then
    pass
  else
    fail "$2: stdout lacks '$1': $(head -c 300 "$work/out")"
  fi
}
