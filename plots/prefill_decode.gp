# prefill_decode.gp: scatter of prefill throughput against decode throughput, one
# point per successful trial, one colour per context length.
# Usage: gnuplot -c prefill_decode.gp DATAFILE OUTFILE [png|svg]
# DATAFILE (written by xl-plot): optional "# title:/# xlabel:/# ylabel:" comment lines,
# then one block per context length, blocks separated by two blank lines; each block
# starts with its quoted legend title and holds "prefill_tok_s decode_tok_s" rows.
if (ARGC < 2) { print "usage: gnuplot -c prefill_decode.gp DATAFILE OUTFILE [png|svg]"; exit status 2 }
meta(key, dflt) = (_m = system(sprintf("sed -n 's/^# %s: //p' '%s' | head -n 1", key, ARG1)), strlen(_m) ? _m : dflt)
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

stats ARG1 using 1 nooutput
set title meta("title", "Prefill vs decode throughput per trial") font ",14"
set xlabel meta("xlabel", "prefill throughput (tokens/s)")
set ylabel meta("ylabel", "decode throughput (tokens/s)")
set grid lc rgb "#dddddd"
set key outside right top box
plot for [i=0:STATS_blocks-1] ARG1 index i using 1:2 with points pt 7 ps 1.3 lc i+1 title columnheader(1)
