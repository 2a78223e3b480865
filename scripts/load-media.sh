#!/usr/bin/env bash
# Concurrent-media test beside its anchor measured in the same run: N
# concurrent calls with a 50 packet/s PCMU stream each way, first through a
# handoff of our own (built from this tree, embedded store, loopback agent
# echoing the caller, free loopback ports), then, with handoff stopped,
# relayed by rtpengine in userspace mode (no kernel module: --table=-1),
# driven over its ng control protocol (offer/answer) with the same streams.
# The generator (test/loadgen media) is the caller, and for rtpengine both
# ends. For each it prints, per direction, packets sent and received, the
# loss and the packets late (over -L behind the stream's best arrival; for
# handoff's inbound direction, its own count of late drops), the CPU per
# call-second and the RSS per concurrent call of the process measured, then
# the ratio of handoff's CPU per call-second to rtpengine's.
#
# Usage: scripts/load-media.sh [options]
#   -n CALLS     concurrent calls (default 200)
#   -r RATE      calls set up per second (default 100)
#   -t SECONDS   measuring window once every call is up (default 20)
#   -L LATE      lateness threshold (default 40ms)
#   -e 'K=V ...' environment for handoff (e.g. GOGC=200)
#   -R           skip the rtpengine anchor
#   -o DIR       keep the work files in DIR
#   -P           profile handoff (a -tags pprof build): a CPU profile inside
#                the measuring window, WORK/cpu.pprof (use with -o)
#
# Needs bash, go, curl, rtpengine (Debian rtpengine-daemon), ss. Everything
# runs on 127.0.0.1.
# Examples (docs/benchmarks.md, Capacity):
#   scripts/load-media.sh -n 1000 -r 200 -t 20
#   scripts/load-media.sh -n 2000 -r 200 -t 20
set -euo pipefail

calls=200 rate=100 secs=20 late=40ms envs="" anchor=1 out="" profile=""
while getopts "n:r:t:L:e:Ro:Ph" opt; do
	case $opt in
	n) calls=$OPTARG ;;
	r) rate=$OPTARG ;;
	t) secs=$OPTARG ;;
	L) late=$OPTARG ;;
	e) envs=$OPTARG ;;
	R) anchor="" ;;
	o) out=$OPTARG ;;
	P) profile=1 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/load-common.sh
. "$root/scripts/lib/load-common.sh"
need curl go ss
[ -n "$anchor" ] && need rtpengine
load_init
(cd "$root" && go build -o "$work/loadgen" ./test/loadgen)

# media runs the generator against one target ($1) with its extra flags.
media() {
	local name=$1
	shift
	echo "== $name: $calls calls with RTP both ways, set up at $rate/s, measured over ${secs}s"
	local s0
	s0=$(cpu_sample)
	"$work/loadgen" media -target "$name" -calls "$calls" -rate "$rate" -hold "${secs}s" -late "$late" "$@" \
		| tee "$work/$name.txt" | grep -v '^CPUMS '
	echo "$name: the box's CPU stolen by the hypervisor during the run: $(steal_between "$s0" "$(cpu_sample)")"
}

echo "== building and starting handoff (work dir $work)"
if [ -n "$profile" ]; then
	buildtags=pprof pprofaddr=127.0.0.1:$(free_port)
	envs="$envs HANDOFF_PPROF_LISTEN=$pprofaddr"
fi
start_handoff "" "$envs"
if [ -n "$profile" ]; then
	# Inside the measuring window: after the set-up and the settling second.
	(sleep $((calls / rate + 3)) && curl -s -o "$work/cpu.pprof" \
		"http://$pprofaddr/debug/pprof/profile?seconds=$((secs > 4 ? secs - 2 : secs))") &
fi
media handoff -api "$api" -sip "$sipaddr" -pid "$hpid"
stop_pid "$hpid"

if [ -n "$anchor" ]; then
	ng=$(free_port) cli=$(free_port)
	rtpengine --table=-1 --interface=127.0.0.1 --listen-ng="127.0.0.1:$ng" --listen-cli="127.0.0.1:$cli" \
		--port-min=30000 --port-max=39999 --foreground --log-stderr --log-level=4 \
		--pidfile="$work/rtpengine.pid" >"$work/rtpengine.log" 2>&1 &
	rpid=$!
	track "$rpid"
	sleep 1
	kill -0 "$rpid" 2>/dev/null || { cat "$work/rtpengine.log" >&2; exit 1; }
	media rtpengine -ng "127.0.0.1:$ng" -pid "$rpid"
	awk '$1 == "CPUMS" { c[$2] = $3 } END {
		if (c["rtpengine"] > 0) printf "== handoff / rtpengine CPU per call-second: %.2f\n", c["handoff"] / c["rtpengine"] }' \
		"$work/handoff.txt" "$work/rtpengine.txt"
fi
[ -n "$out" ] && echo "work files in $work"
exit 0
