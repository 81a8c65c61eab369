#!/usr/bin/env bash
# t_plot: xl-plot on tests/fixtures/run-small: every figure renders as a real PNG and
# a well-formed SVG, the aggregated data match the summary, report.md links each
# figure that exists and lists the ones skipped, the gnuplot scripts run on their
# own, and bad inputs fail with the documented exit codes.
source "$(dirname "$0")/lib.sh"
export XL_PLOTS_DIR="$ROOT/plots"
P="$BIN/xl-plot"
R=$TMP/run
cp -r "$ROOT/tests/fixtures/run-small" "$R"
# chunk size cannot change decode speed: its bar chart shows prefill speed
FIGS="prefill_by_chunk decode_by_heads decode_by_workers prefill_vs_decode speed_quality decode_steps memory"

is_png() {  # real PNG signature and more than a few KB
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$1")" -gt 4000 ]
}
is_svg() {  # starts like SVG and parses as XML with an <svg> root
  head -c 200 "$1" | grep -qE '^(<\?xml|<svg)' &&
    python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); sys.exit(0 if r.tag.endswith("svg") else 1)' "$1"
}

expect_status "xl-merge on the fixture" 0 "$BIN/xl-merge" "$R"
expect_status "xl-plot on the fixture" 0 "$P" "$R"
check "stdout summary: 7 figures, none skipped" grep -q '"figures":7,"skipped":0,"failed":0' "$TMP/out"
for f in $FIGS; do
  check "$f.png is a PNG of some KB" is_png "$R/plots/$f.png"
  check "$f.svg is well-formed SVG" is_svg "$R/plots/$f.svg"
  check "report.md embeds $f.png" grep -qF "](plots/$f.png)" "$R/report.md"
done
check "every link in report.md points at an existing file" python3 - "$R" <<'PY'
import re, os, sys
d = sys.argv[1]
links = re.findall(r"\]\(([^)]+)\)", open(os.path.join(d, "report.md")).read())
missing = [l for l in links if not os.path.exists(os.path.join(d, l))]
print("# links:", len(links), "missing:", missing)
sys.exit(1 if missing or len(links) < 14 else 0)
PY
check "no temp files left" test -z "$(find "$R" -name '*.tmp.*')"
check "report has provenance (commit, CPU, command)" grep -qE '^\| commit \| 8502f39 \|' "$R/report.md"
check "report has the CPU" grep -q 'AMD EPYC 7B13' "$R/report.md"
check "report has the command line" grep -q '`xl-tune --model models/xlstm-tiny' "$R/report.md"
check "report lists recommended profiles from recommended.json" bash -c "grep -c '^| [0-9]* | \[profile_ctx' '$R/report.md' | grep -qx 2"
check "report lists the failed trial and its error" grep -q 'i=34`: memory watchdog' "$R/report.md"

# The bar chart data: max prefill tok/s per chunk size and context, from summary.csv (ok
# rows), each with the half width of that trial's 95% interval (t, from sd and repeats).
check "prefill_by_chunk.dat holds the per-context maxima and their intervals" python3 - "$R" <<'PY'
import csv, sys, os, math
T95 = {2: 4.3027}   # t(0.975, df) for the fixture's 3 repeats
d = sys.argv[1]
best = {}
for r in csv.DictReader(open(os.path.join(d, "summary.csv"))):
    if r["status"] != "ok" or not r["decode_tok_s"]:
        continue
    k = (float(r["chunk_size"]), r["prompt_tokens"])
    v = float(r["prefill_tok_s"])
    if v > best.get(k, (0, 0))[0]:
        best[k] = (v, T95[int(r["repeats"]) - 1] * float(r["prefill_tok_s_sd"]) / math.sqrt(int(r["repeats"])))
lines = [l for l in open(os.path.join(d, "plots/data/prefill_by_chunk.dat")) if not l.startswith("#")]
assert lines[0].split()[0] == "chunk_size" and '"ctx 128"' in lines[0] and '"ctx 512 err"' in lines[0], lines[0]
n = 0
for l in lines[1:]:
    x, a, ae, b, be = l.split()
    for ctx, v, e in (("128", a, ae), ("512", b, be)):
        want = best.get((float(x.strip('"')), ctx))
        assert (v == "-") == (want is None), (x, ctx, v, want)
        if want is not None:
            assert abs(float(v) - want[0]) < 1e-3 and abs(float(e) - want[1]) < 1e-3 * (1 + want[1]), (x, ctx, v, e, want)
            n += 1
print("# checked", n, "cells")
sys.exit(0 if n == 10 else 1)
PY
check "figure settings are gnuplot set commands with quoted strings, loaded by the script" \
  bash -c "grep -qx \"set title 'Best prefill throughput by chunk size' noenhanced\" '$R/plots/data/prefill_by_chunk.set.gp' && ! grep -q system '$ROOT/plots/max_by_param.gp' '$ROOT/plots/speed_quality.gp' '$ROOT/plots/prefill_decode.gp'"
# The speed/quality data: every rated trial with error bars; the drawn front per context is
# pareto.csv's rows (xl-merge's noise-aware front), sorted by quality.
check "speed_quality.dat: points with intervals, the front = pareto.csv" python3 - "$R" <<'PY'
import csv, sys, os
d = sys.argv[1]
blocks = open(os.path.join(d, "plots/data/speed_quality.dat")).read().split("\n\n\n")
blocks = [[l for l in b.strip().split("\n") if l and not l.startswith("#")] for b in blocks]
G = 2
assert len(blocks) == 3 * G, len(blocks)
par = list(csv.DictReader(open(os.path.join(d, "pareto.csv"))))
for g, ctx in enumerate(("128", "512")):
    pts = [l.split() for l in blocks[g][1:]]
    assert len(pts) >= 15 and all(len(p) == 4 and float(p[2]) >= 0 and float(p[3]) > 0 for p in pts), pts[:2]
    front = [tuple(map(float, l.split())) for l in blocks[G + g][1:]]
    want = sorted((float(r["avg_logprob"]), float(r["decode_tok_s"])) for r in par if r["prompt_tokens"] == ctx)
    assert sorted(front) == want and front == sorted(front), (front, want)
sys.exit(0)
PY

# Figures whose input is absent are listed, not silently dropped.
B=$TMP/bare
mkdir -p "$B"; cp "$R/summary.csv" "$R/run_meta.json" "$B/"
expect_status "plot without merged.csv, stats or mem log" 0 "$P" "$B" --format png
check "skips counted" grep -q '"figures":4,"skipped":3' "$TMP/out"
check "report lists the figures not drawn" bash -c "grep -q '^## Figures not drawn' '$B/report.md' && grep -q '(\`speed_quality\`): no merged.csv' '$B/report.md' && grep -q '(\`decode_steps\`): no stats log' '$B/report.md' && grep -q '(\`memory\`): no memory log' '$B/report.md'"
check "skipped figures are not linked" bash -c "! grep -qE '\]\(plots/(speed_quality|decode_steps|memory)\.' '$B/report.md'"
check "--format png writes no SVG" test -z "$(ls "$B/plots" | grep svg || true)"
check "--format png still writes PNGs" is_png "$B/plots/decode_by_workers.png"
check "no profiles noted" grep -q 'No recommended.json' "$B/report.md"

# Explicit logs and an outside figures directory.
expect_status "explicit logs, -o elsewhere, svg only" 0 "$P" "$B" --stats-log "$R/stats.csv" --mem-log "$R/mem.csv" --format svg -o "$TMP/figs"
check "svg-only memory figure" is_svg "$TMP/figs/memory.svg"
check "svg embedded when there is no PNG, linked by a path that exists" bash -c "grep -qF '](/' '$B/report.md' && grep -qF 'figs/decode_steps.svg)' '$B/report.md'"

# A stats log as the run tools write it: a prefill row tagged in the 'phase' column is not a decode step.
printf 'step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase\n356,349.2,349.2,1019.3,1019.3,prefill\n1,1.0,1.0,1000,1000,decode\n2,2.0,3.0,500,666.7,decode\n' > "$TMP/phased.csv"
expect_status "stats log with prefill rows" 0 "$P" "$B" --stats-log "$TMP/phased.csv" --format svg -o "$TMP/figs2"
check "the step figure plots decode rows only" bash -c "[ \"\$(grep -v '^#' '$TMP/figs2/data/decode_steps.dat' | tail -n +2 | cut -d' ' -f1 | tr '\n' ' ')\" = '1 2 ' ]"

# The scripts run on their own; the terminal follows the output name.
check "script runs directly (svg from the file name)" gnuplot -c "$ROOT/plots/memory.gp" "$R/plots/data/memory.dat" "$TMP/direct.svg"
check "direct svg output valid" is_svg "$TMP/direct.svg"
check "script runs directly (png terminal argument)" gnuplot -c "$ROOT/plots/max_by_param.gp" "$R/plots/data/decode_by_heads.dat" "$TMP/direct.out" png
check "direct png output valid" is_png "$TMP/direct.out"
expect_status "script without arguments -> usage, exit 2" 2 gnuplot -c "$ROOT/plots/speed_quality.gp"

# Errors.
expect_status "missing run dir -> 1" 1 "$P" "$TMP/nope"
stderr_has "names the missing table" "nope/summary\.csv"
expect_status "bad --format -> 2" 2 "$P" "$R" --format jpg
expect_status "missing --stats-log -> 1" 1 "$P" "$R" --stats-log "$TMP/none.csv"
stderr_has "names the stats log" "none\.csv"
printf 'a,b\n1,2\n' > "$TMP/badstats.csv"
expect_status "stats log without step column -> 1" 1 "$P" "$R" --stats-log "$TMP/badstats.csv"
stderr_has "says which columns" "badstats\.csv: .*'step'"
mkdir -p "$TMP/short"
cp "$R/run_meta.json" "$TMP/short/"
sed '3s/,[^,]*,[^,]*$//' "$R/summary.csv" > "$TMP/short/summary.csv"
expect_status "a summary row with cells missing -> 1" 1 "$P" "$TMP/short" --format svg
stderr_has "names the file, line and counts" "short/summary\.csv: line 3 has [0-9]+ cells, the header has [0-9]+"
expect_status "--output DIR is -o DIR" 0 "$P" "$B" --format svg --output "$TMP/figs3"
check "... the figures there" test -s "$TMP/figs3/decode_by_workers.svg"
XL_GNUPLOT=false expect_status "gnuplot failing -> 1" 1 "$P" "$B" --format png -o "$TMP/fail"
check "failed figures listed in the report" grep -q 'gnuplot failed to render it' "$B/report.md"
expect_status "--help -> 0" 0 "$P" --help
finish
