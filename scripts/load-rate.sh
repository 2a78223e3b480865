#!/usr/bin/env bash
# Call-rate and overload tests, each beside its anchor measured in the same
# run on the same box: a Kamailio stateful proxy (scripts/anchor/kamailio.cfg,
# t_relay() with record-routing) in front of a SIPp UAS that answers 200 at
# once (scripts/anchor/uas.xml).
#
# SIPp (test/sipp/uac_rate.xml) offers calls of -d ms (no RTP from the
# caller) at a fixed rate for -t seconds, one SIP transfer per call, first to
# a handoff of our own (built from this tree, embedded store, loopback agent,
# free loopback ports), then, with handoff stopped, to the anchor. For each it
# prints:
#   completed calls/s   calls answered and hung up (BYE answered) divided by
#                       the time calls were offered (SIPp's wall time minus
#                       one call length)
#   INVITE->200         mean, p50, p99, max (SIPp -trace_rtt: 1 ms resolution)
#   retransmissions     SIPp's count (INVITEs and BYEs resent after 500 ms)
#   failed              calls SIPp counts failed (a 503 is not a failure)
#   CPU                 ms of CPU per offered call (handoff; Kamailio: all its
#                       processes), and the SIPp caller's share of one core
#                       (SIPp is single-threaded: near 100 % it is the limit)
#   steal               the share of the box's CPU the hypervisor took in the
#                       window (on a shared VM every figure moves with it)
# and the ratio of handoff's completed calls/s to Kamailio's.
#
# Overload (-O): offers 2 x RATE, RATE being the clean maximum found with the
# call-rate test, and adds goodput (completed calls/s, and as a share of
# RATE), the 503s (count; latency p50, p99, max: INVITE sent to 503 received)
# and the answered calls lost (answered, never completed). handoff runs with
# its default overload protection (docs/operations.md, Overload) unless -e
# sets limits. The anchor then sheds too: Kamailio's ratelimit module admits
# RATE new INVITEs per second and answers the rest with a stateless 503, so
# its INVITE->503 latency is what a C proxy's refusal costs on this box
# under the same offered load.
#
# Usage: scripts/load-rate.sh [options]
#   -r RATE       offered calls per second (default 200); with -O the clean
#                 maximum, and 2 x RATE is offered
#   -t SECONDS    how long calls are offered (default 10)
#   -d MS         call length (default 1000)
#   -O            the overload test
#   -e 'K=V ...'  environment for handoff, e.g. 'HANDOFF_SIP_LIMITS_MAX_CPS=200
#                 HANDOFF_SIP_OVERLOAD_MAX_LATENCY=50ms'
#   -K            skip the Kamailio anchor
#   -o DIR        keep the work files (per target: SIPp stats, rtt, logs;
#                 handoff's /metrics after the run) in DIR
#   -P            profile handoff (a -tags pprof build): a CPU profile of the
#                 offered window and the allocations since start, written to
#                 the work dir as cpu.pprof and allocs.pprof, and an execution
#                 trace of the first 5 s as trace.out (use with -o; read with
#                 go tool pprof -top WORK/handoff WORK/cpu.pprof, and
#                 go tool trace -pprof=sched WORK/trace.out)
#
# Needs bash, curl, sipp, kamailio, go, ss, GNU time (/usr/bin/time). Everything runs on 127.0.0.1.
# Examples (docs/benchmarks.md, Capacity):
#   scripts/load-rate.sh -r 900 -t 10         # call rate
#   scripts/load-rate.sh -r 900 -t 10 -O      # overload at 1 800 calls/s
set -euo pipefail

rate=200 secs=10 len=1000 overload="" envs="" anchor=1 out="" profile=""
while getopts "r:t:d:Oe:Ko:Ph" opt; do
	case $opt in
	r) rate=$OPTARG ;;
	t) secs=$OPTARG ;;
	d) len=$OPTARG ;;
	O) overload=1 ;;
	e) envs=$OPTARG ;;
	K) anchor="" ;;
	o) out=$OPTARG ;;
	P) profile=1 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
offered=$rate
[ -n "$overload" ] && offered=$((2 * rate))
# SIPp's sockets default to 64 KiB: at 1 000 calls/s a stall of SIPp's own
# loop of a few ms overflows them, and it retransmits what it dropped.
sippbuf=4194304
calls=$((offered * secs))

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/load-common.sh
. "$root/scripts/lib/load-common.sh"
need curl sipp go ss
[ -n "$anchor" ] && need kamailio
load_init

# cpu_of sums the CPU ticks of a process and its children (Kamailio forks).
cpu_of() {
	local t=0 c
	for c in $1 $(pgrep -P "$1" || true); do t=$((t + $(ticks "$c"))); done
	echo "$t"
}

# offer runs SIPp against $2 for target $1 (results in $work/run-$1) and prints
# the summary; $3 is the pid whose CPU is counted.
offer() {
	local name=$1 target=$2 cpid=$3 dir="$work/run-$1" t0 t1 c0 c1 s0 s1 rc ppid
	rm -rf "$dir" && mkdir -p "$dir" # a kept -o dir must not mix in an earlier run's samples
	echo "== $name: $calls calls of ${len} ms at $offered/s for ${secs}s to $target"
	c0=$(cpu_of "$cpid") t0=$(date +%s%N) s0=$(cpu_sample)
	if [ -n "$profile" ] && [ "$name" = handoff ]; then
		curl -s -o "$work/cpu.pprof" "http://$pprofaddr/debug/pprof/profile?seconds=$secs" &
		ppid=$!
		curl -s -o "$work/trace.out" "http://$pprofaddr/debug/pprof/trace?seconds=$((secs < 5 ? secs : 5))" &
	fi
	set +e
	(cd "$dir" && exec /usr/bin/time -f '%U %S' -o sipp.cpu sipp -sf "$root/test/sipp/uac_rate.xml" -inf "$work/transfers.csv" "$target" \
		-i 127.0.0.1 -mi 127.0.0.1 -buff_size "$sippbuf" -nostdin -m "$calls" -r "$offered" -rp 1000 -l $((offered * 60)) \
		-d "$len" -timeout "$((secs + 90))s" -recv_timeout 20000 \
		-trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 100 -trace_logs -log_file logs.log \
		-trace_err -error_file errors.log >sipp.out 2>&1)
	rc=$?
	set -e
	t1=$(date +%s%N) c1=$(cpu_of "$cpid") s1=$(cpu_sample)
	if [ -n "$profile" ] && [ "$name" = handoff ]; then
		wait "$ppid"
		curl -s -o "$work/allocs.pprof" "http://$pprofaddr/debug/pprof/allocs"
	fi
	summarize "$name" "$dir" "$(((t1 - t0) / 1000000))" "$((c1 - c0))" "$rc" >"$dir/summary.txt"
	echo "$name: the box's CPU stolen by the hypervisor meanwhile: $(steal_between "$s0" "$s1")" >>"$dir/summary.txt"
	grep -v '^RATE ' "$dir/summary.txt"
}

# dist prints "n mean p50 p99 max" of the response times of timer $1 in the
# SIPp rtt files of directory $2 (ms; "0 - - - -" without samples).
dist() {
	cat "$2"/uac_rate_*_rtt.csv 2>/dev/null | awk -F';' -v t="$1" '$3 == t { print $2 }' | sort -n |
		awk '{ v[NR] = $1; s += $1 }
		function at(p,   i) { i = int(NR * p + 0.999999); return v[i < 1 ? 1 : i] }
		END { if (!NR) { print "0 - - - -"; exit } printf "%d %.1f %s %s %s\n", NR, s / NR, at(.5), at(.99), v[NR] }'
}

# summarize prints one target's figures from SIPp's files in $2; $3 is the
# wall time in ms, $4 the CPU ticks spent, $5 SIPp's exit status. Its last
# line, "RATE name calls/s", is for the ratio.
summarize() {
	local stat="$2/stat.csv" last answered completed
	last=$(tail -1 "$stat")
	col() { head -1 "$stat" | tr ';' '\n' | grep -nx "$1" | cut -d: -f1; }
	answered=$(grep -c 'answered' "$2/logs.log" || true)
	completed=$(grep -c 'completed' "$2/logs.log" || true)
	awk -v name="$1" -v wall="$3" -v ticks="$4" -v hz="$hz" -v rc="$5" -v calls="$calls" -v len="$len" \
		-v rate="$rate" -v overload="$overload" -v answered="$answered" -v completed="$completed" \
		-v failed="$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")" \
		-v retrans="$(echo "$last" | cut -d';' -f"$(col 'Retransmissions(C)')")" \
		-v sippcpu="$(tail -1 "$2/sipp.cpu" 2>/dev/null | awk '{print $1 + $2}')" \
		-v ok="$(dist 1 "$2")" -v no="$(dist 2 "$2")" 'BEGIN {
		split(ok, a, " "); split(no, b, " ")
		offered_s = wall / 1000 - len / 1000
		cps = completed / (offered_s > 0 ? offered_s : 1)
		printf "%s: completed %.1f calls/s (%d of %d calls answered, %d completed; SIPp exit %d)\n", name, cps, answered, calls, completed, rc
		printf "%s: INVITE->200 mean %s ms, p50 %s, p99 %s, max %s ms (%d samples)\n", name, a[2], a[3], a[4], a[5], a[1]
		printf "%s: retransmissions %d, failed calls %d, CPU %.2f ms per offered call; SIPp caller %.0f%% of a core\n", name, retrans, failed, 1000 * ticks / hz / calls, 100 * sippcpu / (wall / 1000)
		if (overload != "") {
			printf "%s: goodput %.1f calls/s = %.0f%% of the clean maximum %d/s; answered calls lost %d\n", name, cps, 100 * cps / rate, rate, answered - completed
			printf "%s: 503s %d, INVITE->503 p50 %s, p99 %s, max %s ms\n", name, b[1], b[3], b[4], b[5]
		}
		printf "RATE %s %.3f\n", name, cps
	}'
}

# --- handoff -------------------------------------------------------------------
echo "== building and starting handoff (work dir $work)"
if [ -n "$profile" ]; then
	buildtags=pprof pprofaddr=127.0.0.1:$(free_port)
	envs="$envs HANDOFF_PPROF_LISTEN=$pprofaddr"
fi
start_handoff "" "$envs"
create_transfers "$calls" SIP
offer handoff "$sipaddr" "$hpid"
curl -s -m 5 -o "$work/metrics.txt" "$api/metrics" || true
stop_pid "$hpid"

# --- anchor: Kamailio stateful proxy and a SIPp UAS -----------------------------
if [ -n "$anchor" ]; then
	kport=$(free_port) uport=$(free_port)
	mkdir -p "$work/kamailio-run"
	(cd "$work" && exec sipp -sf "$root/scripts/anchor/uas.xml" -p "$uport" -i 127.0.0.1 -mi 127.0.0.1 -buff_size "$sippbuf" \
		-nostdin -trace_err -error_file uas-errors.log >uas.out 2>&1) &
	track $!
	rl=()
	[ -n "$overload" ] && rl=(-A "RLPIPE=\"0:TAILDROP:$rate\"") # shed beyond the clean maximum
	kamailio -f "$root/scripts/anchor/kamailio.cfg" -DD -E -n 4 -m 256 -M 16 \
		-l "udp:127.0.0.1:$kport" -A "UAS=\"sip:127.0.0.1:$uport\"" "${rl[@]}" \
		-P "$work/kamailio-run/pid" -Y "$work/kamailio-run" -w "$work/kamailio-run" >"$work/kamailio.log" 2>&1 &
	kpid=$!
	track "$kpid"
	sleep 1
	kill -0 "$kpid" 2>/dev/null || { cat "$work/kamailio.log" >&2; exit 1; }
	offer kamailio "127.0.0.1:$kport" "$kpid"
fi

# --- the ratio -----------------------------------------------------------------
if [ -n "$anchor" ]; then
	awk '$1 == "RATE" { r[$2] = $3 } END {
		if (r["kamailio"] > 0) printf "== handoff / kamailio completed calls/s: %.2f\n", r["handoff"] / r["kamailio"] }' \
		"$work/run-handoff/summary.txt" "$work/run-kamailio/summary.txt"
fi
[ -n "$out" ] && echo "work files in $work"
exit 0
