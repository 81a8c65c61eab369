# speed_quality.gp: decode throughput against output quality for every rated trial,
# with the speed/quality Pareto front of each context length drawn as a line and the
# rows of pareto.csv (the front over all objectives) circled.
# Usage: gnuplot -c speed_quality.gp DATAFILE OUTFILE [png|svg]
# DATAFILE (written by xl-plot): optional "# title:/# xlabel:/# ylabel:" comment lines,
# then 3*G blocks (G context lengths), separated by two blank lines, each starting
# with a quoted legend title and holding "quality decode_tok_s" rows: blocks 0..G-1
# all trials, G..2G-1 the 2-D front sorted by quality, 2G..3G-1 the pareto.csv rows.
if (ARGC < 2) { print "usage: gnuplot -c speed_quality.gp DATAFILE OUTFILE [png|svg]"; exit status 2 }
meta(key, dflt) = (_m = system(sprintf("sed -n 's/^# %s: //p' '%s' | head -n 1", key, ARG1)), strlen(_m) ? _m : dflt)
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

stats ARG1 using 1 nooutput
G = int(STATS_blocks / 3)
if (G < 1) { G = 1 }
set title meta("title", "Decode speed vs quality, Pareto front per context length") font ",14"
set xlabel meta("xlabel", "quality (higher is better)")
set ylabel meta("ylabel", "decode throughput (tokens/s)")
set grid lc rgb "#dddddd"
set key outside right top box
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
plot for [i=0:G-1] ARG1 index i using 1:2 with points pt 7 ps 1.0 lc i+1 title columnheader(1), \
     for [i=0:G-1] ARG1 index G+i using 1:2 with linespoints lw 2 pt 5 ps 1.2 lc i+1 title columnheader(1), \
     for [i=0:G-1] ARG1 index 2*G+i using 1:2 with points pt 6 ps 2.4 lw 1.5 lc rgb "black" title columnheader(1)
