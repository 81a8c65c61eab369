# prefill_decode.gp: scatter of prefill throughput against decode throughput, one point
# per successful trial with its 95% intervals as error bars, one colour per context length.
# Usage: gnuplot -c prefill_decode.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]
# DATAFILE (written by xl-plot): one block per context length, blocks separated by two
# blank lines; each block starts with its quoted legend title and holds
# "prefill_tok_s decode_tok_s prefill_err decode_err" rows (err: the interval's half
# width, 0 when unknown). SETTINGS.gp (optional): gnuplot `set` commands, loaded.
if (ARGC < 2) { print "usage: gnuplot -c prefill_decode.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]"; exit status 2 }
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

stats ARG1 using 1 nooutput
G = STATS_blocks
set title "Prefill vs decode throughput per trial" font ",14"
set xlabel "prefill throughput (tokens/s), 95% interval"
set ylabel "decode throughput (tokens/s), 95% interval"
set grid lc rgb "#dddddd"
set key outside right top box
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
if (ARGC >= 4 && strlen(ARG4)) { load ARG4 }
plot for [i=0:G-1] ARG1 index i using 1:2:3:4 with xyerrorbars pt 7 ps 1.1 lc i+1 title columnheader(1)
