# Sourced by lab.sh and ci-smoke.sh: find the Go toolchain that builds the lab.
# The programs need Go >= 1.26 (go.mod); Debian 12's golang-go is 1.19, so the
# machine's /usr/local/go/bin/go is preferred even when PATH lacks it.
# Order: $WTLAB_GO, /usr/local/go/bin/go, `go` on PATH. Prints the path, or
# nothing (and the versions it rejected on stderr) when none is new enough.
WTLAB_GO_MIN=1.26
wtlab_find_go() {
	local c v rejected=""
	for c in "${WTLAB_GO:-}" /usr/local/go/bin/go "$(command -v go 2>/dev/null)"; do
		[ -n "$c" ] && [ -x "$c" ] || continue
		v=$(GOTOOLCHAIN=local "$c" env GOVERSION 2>/dev/null) || continue # go1.26.8
		v=${v#go}
		if [ "$(printf '%s\n%s\n' "$WTLAB_GO_MIN" "$v" | sort -V | head -1)" = "$WTLAB_GO_MIN" ]; then
			echo "$c"
			return 0
		fi
		rejected+=" $c (go$v)"
	done
	echo "no Go >= $WTLAB_GO_MIN found (tried \$WTLAB_GO, /usr/local/go/bin/go, PATH)${rejected:+; too old:$rejected}" >&2
	return 1
}
