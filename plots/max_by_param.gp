# max_by_param.gp: bar chart of the best (maximum) throughput for each value of one
# runtime setting, the other settings free, one bar per context length, each bar with the
# 95% interval of that best trial as an error bar.
# Usage: gnuplot -c max_by_param.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]
# DATAFILE (written by xl-plot): a header row `setting "ctx 128" "ctx 128 err" ...` and
# one row per setting value: per context the best mean and its interval's half width;
# "-" marks a value not measured. SETTINGS.gp (optional, written by xl-plot): gnuplot
# `set` commands (title, axis labels) with quoted strings; it is loaded, never run by a shell.
if (ARGC < 2) { print "usage: gnuplot -c max_by_param.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]"; exit status 2 }
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

set datafile missing "-"
stats ARG1 using 2 nooutput
set title "Best throughput by setting" font ",14"
set xlabel "setting"
set ylabel "throughput (tokens/s)"
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
set key outside right top box
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
if (ARGC >= 4 && strlen(ARG4)) { load ARG4 }
plot for [i=2:STATS_columns:2] ARG1 using i:i+1:xtic(1) title columnhead(i)
