# memory.gp: the memory timeline of a run from a --mem-log file: resident set size
# of the process (left axis) and memory available on the machine (right axis).
# Usage: gnuplot -c memory.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]
# DATAFILE (written by xl-plot): comment lines, a header row, then "t_s rss_mb avail_mb"
# rows (t_s = seconds since the first sample, "-" = missing). SETTINGS.gp (optional,
# written by xl-plot): gnuplot `set` commands (the title) with quoted strings; it is
# loaded, never run by a shell, and no path or text of the data reaches a shell.
if (ARGC < 2) { print "usage: gnuplot -c memory.gp DATAFILE OUTFILE [png|svg] [SETTINGS.gp]"; exit status 2 }
term = (ARGC >= 3 && strlen(ARG3)) ? ARG3 : (ARG2[strlen(ARG2)-2:] eq "svg" ? "svg" : "png")
if (term eq "svg") { set terminal svg size 900,560 dynamic enhanced font "Sans,13" background "white" } \
else { set terminal pngcairo size 900,560 enhanced font "Sans,11" }
set output ARG2

set datafile missing "-"
set title "Memory over time" font ",14"
set xlabel "time since first sample (s)"
set ylabel "process RSS (MB)" tc rgb "#c0392b"
set y2label "available on the machine (MB)" tc rgb "#2e86c1"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
set grid lc rgb "#dddddd"
set key bottom right box opaque
if (ARGC >= 4 && strlen(ARG4)) { load ARG4 }
plot ARG1 using 1:2 axes x1y1 with lines lw 2.5 lc rgb "#c0392b" title "RSS", \
     ARG1 using 1:3 axes x1y2 with lines lw 2 dt 2 lc rgb "#2e86c1" title "available"
