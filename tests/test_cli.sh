# Runs the cases of tests/cli.test against ./halo, one TAP line per case.
. "$HALO_SRCDIR/tests/tap.sh"

out=$HALO_TEST_TMP/stdout
err=$HALO_TEST_TMP/stderr

check_case() {
	# $1: arguments; the expectations are in the arrays below.
	eval "set -- $args"
	"$HALO" "$@" >"$out" 2>"$err" </dev/null
	status=$?
	why=""
	[ -n "$want_exit" ] && [ "$status" != "$want_exit" ] && why="$why exit $status, want $want_exit;"
	while IFS= read -r re; do
		[ -n "$re" ] && ! grep -Eq -- "$re" "$out" && why="$why no stdout line matches /$re/;"
	done <<EOT
$want_stdout
EOT
	while IFS= read -r re; do
		[ -n "$re" ] && ! grep -Eq -- "$re" "$err" && why="$why no stderr line matches /$re/;"
	done <<EOT
$want_stderr
EOT
	if [ -n "$want_lines" ]; then
		n=$(wc -l <"$err")
		[ "$n" != "$want_lines" ] && why="$why $n stderr lines, want $want_lines;"
	fi
	if [ -z "$why" ]; then
		ok "halo $args"
	else
		not_ok "halo $args:$why"
		diag "stdout:" "$(head -20 "$out")" "stderr:" "$(head -20 "$err")"
	fi
}

reset() { args=; in_case=; want_exit=; want_stdout=; want_stderr=; want_lines=; }
nl='
'
reset
while IFS= read -r line || [ -n "$line" ]; do
	case $line in
	'#'*) continue ;;
	'') [ -n "$in_case" ] && check_case; reset; continue ;;
	run:*) args=${line#run:}; args=${args# }; in_case=1 ;;
	exit:*) want_exit=${line#exit: } ;;
	stdout:*) want_stdout="$want_stdout${line#stdout: }$nl" ;;
	stderr:*) want_stderr="$want_stderr${line#stderr: }$nl" ;;
	stderr-lines:*) want_lines=${line#stderr-lines: } ;;
	*) not_ok "tests/cli.test: cannot read line: $line" ;;
	esac
done <"$HALO_SRCDIR/tests/cli.test"
[ -n "$in_case" ] && check_case
tap_done
