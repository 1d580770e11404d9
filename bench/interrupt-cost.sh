#!/bin/bash
# bench/interrupt-cost.sh: what interruptible reads cost. Interruptible
# mounts turn the kernel's asynchronous readahead off so that a signal to a
# reader becomes FUSE_INTERRUPT; this measures cold sequential throughput
# of both modes side by side in one run (alternating, REPS times each,
# medians), with raw curl from the same origin as the limit.
#
#   top_builddir=BUILD_DIR bench/interrupt-cost.sh [-s SIZE_MIB] [-r REPS]
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir
: "${top_builddir:=$top_srcdir}"
export top_builddir
. "$top_srcdir/tests/integration/lib.sh"
CF_NAME=interrupt-cost

SIZE_MIB=512
REPS=3
while getopts s:r: o; do
	case $o in
	s) SIZE_MIB=$OPTARG ;;
	r) REPS=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE_MIB] [-r REPS]" >&2; exit 2 ;;
	esac
done

drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# Seconds (3 decimals) that "$@" takes.
secs() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000000))" | awk '{ printf "%.3f", $1 / 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

mibs() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN { printf "%.0f", s / t }'; }

cf_init
www=$T/www
mkdir -p "$www"
cf_random_file "$www/data" $((SIZE_MIB * 1048576))
want=$(cf_sha "$www/data")
cf_nginx_start "$www"
: >"$T/curl" >"$T/intr" >"$T/async"
for rep in $(seq 1 "$REPS"); do
	drop
	secs curl -s -o /dev/null "${NGINX_URL}data" >>"$T/curl"
	echo >>"$T/curl"
	for mode in intr async; do
		m=$T/m-$mode-$rep
		opt=--interruptible
		[ "$mode" = async ] && opt=--async-read
		cf_mount "$NGINX_URL" "$m" --no-cache "$opt"
		drop
		secs cat "$m/data" >>"$T/$mode"
		echo >>"$T/$mode"
		# Verified outside the timed part, from the page cache.
		[ "$(cf_sha "$m/data")" = "$want" ] || cf_fail "$mode: wrong data"
		cf_unmount "$m"
	done
done
c=$(median <"$T/curl")
i=$(median <"$T/intr")
a=$(median <"$T/async")
printf '%-28s %8s %10s %8s\n' "cold sequential, $SIZE_MIB MiB" seconds MiB/s "x curl"
printf '%-28s %8s %10s %8s\n' "curl -o /dev/null" "$c" "$(mibs "$c")" 1.00
printf '%-28s %8s %10s %8s\n' "cofault --interruptible" "$i" "$(mibs "$i")" \
	"$(awk -v c="$c" -v t="$i" 'BEGIN { printf "%.2f", c / t }')"
printf '%-28s %8s %10s %8s\n' "cofault --async-read" "$a" "$(mibs "$a")" \
	"$(awk -v c="$c" -v t="$a" 'BEGIN { printf "%.2f", c / t }')"
printf 'interruptible / async: %s\n' \
	"$(awk -v a="$a" -v i="$i" 'BEGIN { printf "%.2f", a / i }')"
