#!/usr/bin/env bash
# t_pipeline_security: the pipeline tools take file contents and paths as data
# (docs/security.md): a run directory whose name holds shell syntax is plotted without
# running anything; the gnuplot scripts call no shell. (xl-sweep's --resume, which never
# runs the programs a run directory names, and --run, a name under runs/, are checked in
# t_sweep_runs; the workflow's make variables in t_workflow.)
source "$(dirname "$0")/lib.sh"
export XL_PLOTS_DIR="$ROOT/plots"
TOOLS=${XL_REAL_BIN:-$BIN}
FIX=$ROOT/tests/fixtures/run-small

# ---- xl-plot: a run directory named with a quote and $(...) ----
D="$TMP/q'\$(touch $TMP/pwned)'"
mkdir -p "$D"
cp "$FIX"/* "$D"/
expect_status "xl-plot on a run dir named q'\$(touch ...)'" 0 "$BIN/xl-plot" "$D" --format svg
check "... ran nothing (no file made by the name)" test ! -e "$TMP/pwned"
check "... and drew the step and memory figures" test -s "$D/plots/decode_steps.svg" -a -s "$D/plots/memory.svg"
check "... titled by a settings file of quoted set commands" grep -qx "set title 'Memory timeline' noenhanced" "$D/plots/data/memory.set.gp"
# gnuplot runs a data file named "<cmd" and writes to an output named "|cmd": every path
# xl-plot hands it is absolute
mkdir -p "$TMP/rel"
(cd "$TMP/rel" && mkdir -p "<touch $TMP/pwned2;echo" && cp "$FIX"/* "<touch $TMP/pwned2;echo"/ &&
  "$BIN/xl-plot" "<touch $TMP/pwned2;echo" --format svg) > "$TMP/out" 2> "$TMP/err" || true
check "a run dir named '<cmd' is plotted as a directory" test -s "$TMP/rel/<touch $TMP/pwned2;echo/plots/memory.svg"
check "... and runs nothing" test ! -e "$TMP/pwned2"
check "no gnuplot script calls a shell" sh -c "! cat '$ROOT'/plots/*.gp | grep -vE '^[[:space:]]*#' | grep -nE 'system|popen|\`'"

# Under an address-space limit the pipeline tools start no OpenBLAS threads (they do no BLAS;
# a thread whose buffer cannot be mapped used to spin for ever, even for --help), and the
# OPENBLAS_NUM_THREADS=1 they run with is not passed on to the programs they start.
if [ "${XL_SANITIZED:-0}" != 1 ] && [ "${XL_VALGRIND:-0}" != 1 ]; then   # ASan maps far more than 150 MB
  for t in xl-merge xl-plot xl-save xl-sweep; do
    check "$t --help under ulimit -v 150000 exits 0 within 20 s" sh -c "ulimit -v 150000; timeout 20 '$BIN/$t' --help > /dev/null 2>&1"
  done
  cat > "$TMP/envtool" <<'SH'
#!/bin/sh
echo "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset} XL_BLAS_UNUSED_REEXEC=${XL_BLAS_UNUSED_REEXEC:-unset}" > "$ENV_OUT"
exit 1
SH
  chmod +x "$TMP/envtool"
  mkdir -p "$TMP/envrun"
  (ulimit -v 400000; ENV_OUT="$TMP/env.txt" timeout 60 "$BIN/xl-sweep" --tool-prefix "$TMP/envtool" -o "$TMP/envrun/r" \
    --prompt-file "$ROOT/prompts/pydocs.txt" --chunk-size 64 --workers 1 --heads-per-band 1 --backend chunkwise \
    --context 64 --new 1 --repeats 1 > /dev/null 2>&1) || true
  check "a program xl-sweep starts under the limit does not inherit OPENBLAS_NUM_THREADS" \
    grep -qx "OPENBLAS_NUM_THREADS=unset XL_BLAS_UNUSED_REEXEC=unset" "$TMP/env.txt"
fi

finish
