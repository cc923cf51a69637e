#!/bin/sh
# chart.sh RUN.txt OUT.svg: draws a benchmark run's side-by-side figures
# as one SVG with gnuplot (Debian's gnuplot-nox): five panels, herald's
# bars beside each peer's.
#
#   memory per idle connection   RESULT anon_per_conn      (bytes, lower is better)
#   server CPU per delivery      RESULT cpu_us_per_delivery (µs, lower)
#   time to the last device      RESULT fanout_ms_max      (ms, lower)
#   connect + auth rate          RESULT connect_rate       (/s, higher)
#   durable pushes/s             push_load http|tars lines  (herald only:
#                                the peers run QoS 0 / no store here)
#
# RUN.txt is what bench/run.sh prints (BUILD/bench/last-run.txt): only its
# `RESULT key=value ...` lines (herald bench) and `push_load http|tars: N
# pushes/s, ...` lines are read, so a file of just those lines works too.
# A series is keyed by target (and herald's transport); a later line for
# the same series replaces an earlier one.  The title is an optional line
# `# chart-title: TEXT`, else run.sh's first line (date, kernel, cores,
# workload).  Exit 1 when RUN.txt holds no
# figure, 2 on usage, gnuplot's status otherwise.
set -eu

in=${1:?usage: chart.sh RUN.txt OUT.svg}
out=${2:?usage: chart.sh RUN.txt OUT.svg}
command -v gnuplot >/dev/null 2>&1 || { echo "chart.sh: gnuplot not installed (make deps)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-chart.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One data file per panel: "label" value colour; herald first, peers after.
awk -v dir="$tmp" '
function series(   t, tr) {
    t = kv["target"]; tr = kv["transport"]
    if (t == "herald") return tr == "ws" ? "herald WebSocket" : "herald raw TCP"
    if (t == "mosquitto") return "Mosquitto"
    if (t == "nchan") return "nginx+Nchan"
    return t
}
function put(panel, name, v) {
    if (v == "" || v !~ /^-?[0-9.]+$/) return
    if (!((panel, name) in val)) { n[panel]++; order[panel, n[panel]] = name }
    val[panel, name] = v
}
/^# chart-title: / { sub(/^# chart-title: /, ""); title = $0; next }
/^bench: [0-9][0-9][0-9][0-9]-/ && title == "" { sub(/^bench: /, ""); title = "herald beside its peers: " $0; next }
/^RESULT / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = substr($i, length(p[1]) + 2) }
    s = series()
    put("mem", s, kv["anon_per_conn"]); put("cpu", s, kv["cpu_us_per_delivery"])
    put("fanout", s, kv["fanout_ms_max"]); put("connect", s, kv["connect_rate"])
    next
}
/^push_load (http|tars): [0-9.]+ pushes\/s/ {
    sub(/:$/, "", $2)
    put("push", "herald " ($2 == "http" ? "HTTP" : "TARS"), $3)
}
END {
    split("mem cpu fanout connect push", panels, " ")
    for (k = 1; k <= 5; k++) {
        pn = panels[k]; f = dir "/" pn ".dat"; max = 0
        printf "" > f
        for (i = 1; i <= n[pn]; i++) {
            name = order[pn, i]; v = val[pn, name] + 0
            colour = name ~ /^herald/ ? "0x1f6feb" : "0x9aa0a6"
            printf "\"%s\" %s %s\n", name, v, colour >> f
            if (v > max) max = v; total++
        }
        close(f)
        print max > (dir "/" pn ".max"); close(dir "/" pn ".max")
    }
    print (title == "" ? "herald beside its peers" : title) > (dir "/title")
    exit total == 0
}' "$in" || { echo "chart.sh: no RESULT or push_load figures in $in" >&2; exit 1; }

ymax() { awk '{ m = $1 > 0 ? $1 * 1.22 : 1; print m }' "$tmp/$1.max"; }
xmax() { awk 'END { print NR - 0.4 }' "$tmp/$1.dat"; }

# panel NAME TITLE FORMAT: the gnuplot commands of one bar panel.
panel() {
    if [ -s "$tmp/$1.dat" ]; then
        cat <<EOF
set title "$2" font ",12"
set yrange [0:$(ymax "$1")]
set xrange [-0.6:$(xmax "$1")]
plot "$tmp/$1.dat" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \
     "" using 0:2:(sprintf("$3", \$2)) with labels offset 0,0.7 font ",10" notitle
EOF
    else
        cat <<EOF
set title "$2" font ",12"
set yrange [0:1]
set xrange [0:1]
set label 1 "not measured in this run" at graph 0.5, graph 0.5 center
plot 2 notitle
unset label 1
EOF
    fi
}

title=$(cat "$tmp/title")
{
    cat <<EOF
set terminal svg size 1600,480 dynamic noenhanced font "sans,11" background "#ffffff"
set output "$out.tmp"
set encoding utf8
set style fill solid 0.9 border -1
set boxwidth 0.65
set xtics rotate by -30 nomirror font ",10"
set ytics nomirror
set border 3
set grid ytics lc rgb "#dddddd"
set format y "%.0s%c"
set multiplot layout 1,5 title "$title" font ",14"
EOF
    panel mem "memory per idle connection\\nbytes, lower is better" "%.0f"
    panel cpu "server CPU per delivery\\nµs, lower is better" "%.2f"
    panel fanout "broadcast: time to the last device\\nms, lower is better" "%.1f"
    panel connect "connect + auth rate\\nper s, higher is better" "%.0f"
    panel push "durable pushes (herald only)\\nper s, higher is better" "%.0f"
    echo "unset multiplot"
} >"$tmp/plot.gp"

gnuplot "$tmp/plot.gp"
mv "$out.tmp" "$out"
