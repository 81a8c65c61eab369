#!/usr/bin/env bash
# t_install: `make install` / `make uninstall` with PREFIX and DESTDIR (issue 17): the tools,
# the default model, plot scripts, prompts, docs and man pages land under
# DESTDIR/PREFIX; the installed xl-decode runs from outside the checkout and finds the
# installed model (not the checkout's); `man -l` renders a page with EXAMPLES; uninstall
# removes it all. Runs make in the source tree, on the plain build only (the sanitizer and
# valgrind runs test other binaries).
source "$(dirname "$0")/lib.sh"
if [ "${XL_SANITIZED:-0}" = 1 ] || [ "${XL_VALGRIND:-0}" = 1 ]; then
  echo "ok - make install # SKIP tested with the plain build (make test)"; exit 0
fi
if ! command -v help2man > /dev/null || ! command -v man > /dev/null; then
  echo "ok - make install # SKIP help2man or man is missing (make deps installs them)"; exit 0
fi
unset MAKEFLAGS MFLAGS MAKELEVEL
D="$TMP/dest"
mk() { make -C "$ROOT" --no-print-directory "$@" > "$TMP/make.out" 2>&1; }
check "make install DESTDIR=... PREFIX=/usr/local" mk install DESTDIR="$D" PREFIX=/usr/local
[ "$nfail" = 0 ] || sed 's/^/# /' "$TMP/make.out" | tail -20
P="$D/usr/local"
for t in "$ROOT"/tools/xl-*.c; do
  n=$(basename "$t" .c)
  check "$n installed, executable" test -x "$P/bin/$n"
  check "$n.1 installed" test -s "$P/share/man/man1/$n.1"
  check "$n.1 has an EXAMPLES section" grep -q '^\.SH EXAMPLES' "$P/share/man/man1/$n.1"
done
check "the default model is in share/xltools/models" test -s "$P/share/xltools/models/xlstm-tiny-pydocs/config.json"
check "the plot scripts are in share/xltools/plots" test -s "$P/share/xltools/plots/max_by_param.gp"
check "the prompts are in share/xltools/prompts" test -s "$P/share/xltools/prompts/pydocs.txt"
check "the docs are in share/doc/xltools" test -s "$P/share/doc/xltools/cli.md"

# The installed tool, run from outside the checkout, uses the installed model.
set +e
(cd / && "$P/bin/xl-decode" "def main():" -n 8 --format ndjson) > "$TMP/rec.json" 2> "$TMP/err"
rc=$?
set -e
check "installed xl-decode runs from / (exit $rc)" test "$rc" = 0
check "it found the installed model, not the checkout's" \
  sh -c 'jq -e --arg p "$2" ".model | startswith(\$p)" "$1" > /dev/null' _ "$TMP/rec.json" "$(cd "$P" && pwd -P)/share/xltools/models/"
check "it generated text" sh -c 'jq -e ".new_tokens > 0" "$1" > /dev/null' _ "$TMP/rec.json"
expect_status "installed xl-decode --version" 0 "$P/bin/xl-decode" --version
check "--version names the tool and the version" grep -q '^xl-decode (xltools) ' "$TMP/out"

# man renders the page, with the sections help2man and man/*.h2m give it
MANPAGER=cat MANWIDTH=100 man -l "$P/share/man/man1/xl-decode.1" > "$TMP/man.txt" 2> "$TMP/man.err" || true
check "man -l renders xl-decode(1)" grep -q 'XL-DECODE(1)' "$TMP/man.txt"
check "the page has NAME, SYNOPSIS, DESCRIPTION, EXAMPLES" \
  sh -c 'for s in NAME SYNOPSIS DESCRIPTION EXAMPLES; do grep -q "^$s" "$1" || exit 1; done' _ "$TMP/man.txt"
check "the options come from --help" grep -q -- '--stats-log' "$TMP/man.txt"
check "an example from man/xl-decode.h2m" grep -q 'xl-decode "The Python interpreter" -n 48' "$TMP/man.txt"
check "every page has an EXAMPLES section" sh -c 'for f in "$1"/*.1; do grep -q "^\.SH EXAMPLES" "$f" || exit 1; done' _ "$P/share/man/man1"

# Another PREFIX, then uninstall both
check "make install PREFIX=/opt/xltools" mk install DESTDIR="$D" PREFIX=/opt/xltools
check "tools under /opt/xltools/bin" test -x "$D/opt/xltools/bin/xl-top"
check "make uninstall DESTDIR=... PREFIX=/usr/local" mk uninstall DESTDIR="$D" PREFIX=/usr/local
check "no tool, page or data left under /usr/local" \
  sh -c 'test -z "$(find "$1" -name "xl-*" 2>/dev/null)" && test ! -e "$1/share/xltools" && test ! -e "$1/share/doc/xltools"' _ "$P"
check "the other PREFIX is untouched" test -x "$D/opt/xltools/bin/xl-decode"
check "make uninstall PREFIX=/opt/xltools" mk uninstall DESTDIR="$D" PREFIX=/opt/xltools
check "nothing left in /opt/xltools but empty folders" test -z "$(find "$D/opt/xltools" -type f)"
finish
