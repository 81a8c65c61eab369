# speed_quality.gp: decode throughput against output quality for every rated trial, both
# with their 95% intervals as error bars; the Pareto front of each context length (the
# rows of pareto.csv: noise-aware, over every objective) drawn as a line; each output
# setting (fp32, bf16, ...) labelled once per context, so the spread between them shows.
# Usage: gnuplot -c speed_quality.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]
# DATAFILE (written by xl-plot): 3*G blocks (G context lengths, set as G in SETTINGS.gp),
# separated by two blank lines, each starting with a quoted legend title: blocks 0..G-1
# "quality decode_tok_s quality_err decode_err" rows of every trial, G..2G-1 the front rows
# sorted by quality ("quality decode_tok_s"), 2G..3G-1 "quality decode_tok_s label" rows.
# SETTINGS.gp: gnuplot `set` commands and G, loaded (never run by a shell); when every
# setting gave the same output it also sets a label saying so.
if (ARGC < 2) { print "usage: gnuplot -c speed_quality.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]"; exit status 2 }
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

G = 1
set title "Decode speed vs quality, Pareto front per context length" font ",14"
set xlabel "quality (higher is better)"
set ylabel "decode throughput (tokens/s), 95% interval"
set grid lc rgb "#dddddd"
set key outside right top box
set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08
if (ARGC >= 4 && strlen(ARG4)) { load ARG4 }
plot for [i=0:G-1] ARG1 index i using 1:2:3:4 with xyerrorbars pt 7 ps 1.0 lc i+1 title columnheader(1), \
     for [i=0:G-1] ARG1 index G+i using 1:2 with linespoints lw 2 pt 5 ps 1.3 lc i+1 title columnheader(1), \
     for [i=0:G-1] ARG1 index 2*G+i using 1:2:3 with labels offset char 0,1.2 font ",10" tc lt i+1 notitle
