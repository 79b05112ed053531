# Sourced by the host-side test scripts (tests/packaging/*.sh, tests/page/chromium.sh).
# check WHAT CONDITION...: runs the condition and prints "ok - WHAT" or "not ok - WHAT", counting
# both; eq and matches are conditions that say on stderr what they got; finish NAME prints the
# "NAME: N passed, M failed" line tests/run.sh collects and fails when anything did.
passed=0 failed=0
check() {
	local what=$1; shift
	if "$@"; then
		echo "ok - $what"; passed=$((passed + 1))
	else
		echo "not ok - $what"; failed=$((failed + 1))
	fi
}
eq() { [ "$1" = "$2" ] || { echo "#   got:      $1" >&2; echo "#   expected: $2" >&2; return 1; }; }
matches() { [[ $1 =~ $2 ]] || { echo "#   \"$1\" does not match /$2/" >&2; return 1; }; }
finish() {
	echo "$1: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
