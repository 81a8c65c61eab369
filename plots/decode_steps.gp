# decode_steps.gp: decode throughput per generated token, from a --stats-log file:
# the instantaneous rate of each step and the running average.
# Usage: gnuplot -c decode_steps.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]
# DATAFILE (written by xl-plot): comment lines, a header row, then "step inst_tok_s
# avg_tok_s" rows. SETTINGS.gp (optional, written by xl-plot): gnuplot `set` commands
# (the title) with quoted strings; it is loaded, never run by a shell, and no path or
# text of the data reaches a shell.
if (ARGC < 2) { print "usage: gnuplot -c decode_steps.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]"; exit status 2 }
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

set datafile missing "-"
set title "Decode throughput per step" font ",14"
set xlabel "decode step (token)"
set ylabel "decode throughput (tokens/s)"
set yrange [0:*]
set grid lc rgb "#dddddd"
set key bottom right box opaque
if (ARGC >= 4 && strlen(ARG4)) { load ARG4 }
plot ARG1 using 1:2 with lines lw 1 lc rgb "#7aa6d6" title "per step", \
     ARG1 using 1:3 with lines lw 3 lc rgb "#c0392b" title "running average"
