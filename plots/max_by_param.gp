# max_by_param.gp: bar chart of the best (maximum) decode throughput for each value
# of one runtime setting, the other settings free, one bar per context length.
# Usage: gnuplot -c max_by_param.gp DATAFILE OUTFILE [png|svg]
# DATAFILE (written by xl-plot): optional "# title: ...", "# xlabel: ...",
# "# ylabel: ..." comment lines, then a header row `setting "ctx 128" "ctx 512" ...`
# and one row per setting value; "-" marks a value not measured.
if (ARGC < 2) { print "usage: gnuplot -c max_by_param.gp DATAFILE OUTFILE [png|svg]"; exit status 2 }
meta(key, dflt) = (_m = system(sprintf("sed -n 's/^# %s: //p' '%s' | head -n 1", key, ARG1)), strlen(_m) ? _m : dflt)
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

set datafile missing "-"
stats ARG1 using 2 nooutput
set title meta("title", "Maximum decode throughput by setting") font ",14"
set xlabel meta("xlabel", "setting")
set ylabel meta("ylabel", "decode throughput (tokens/s)")
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
set key outside right top box
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
plot for [i=2:STATS_columns] ARG1 using i:xtic(1) title columnhead(i)
