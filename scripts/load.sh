#!/usr/bin/env bash
# Load benchmark for handoff's call path with SIPp (test/sipp/uac_load.xml):
# creates one transfer per call over the API, runs SIPp at a given call rate
# with G.711 RTP for a given call duration (caller hangs up), and samples
# handoff's CPU time (/proc/PID/stat) and RSS (/proc/PID/status) and its
# active calls (/metrics) once a second. Prints SIPp's final statistics and
# a summary: calls/s, peak concurrent calls, CPU%, CPU per call, RSS per
# concurrent call.
#
# Usage: scripts/load.sh [options]
#   -n CALLS      calls to place (default 600)
#   -r RATE       calls per second (default 20)
#   -d SECONDS    call duration = RTP played per call (default 4)
#   -l LIMIT      max concurrent calls in SIPp (default CALLS)
#   -t TYPE       transfer type: SIP (default; the id is the Request-URI user
#                 part) or PHONE_NUMBER (needs a pool of >= CALLS free numbers)
#   -a URL        API of a running handoff (e.g. http://127.0.0.1:8080);
#                 without it the script builds and starts its own handoff on
#                 free loopback ports and stops it at the end
#   -s HOST:PORT  SIP address of that running handoff (default 127.0.0.1:5060)
#   -p PID        its process id, for the CPU/RSS samples (default: pgrep -x handoff, if exactly one)
#   -o DIR        keep the work files (sipp stats, samples, handoff log) in DIR
#   -M MODE       how SIPp sends RTP: stream (default: rtp_stream, a headerless
#                 u-law file looped by SIPp's RTP threads over a UDP socket per
#                 call) or pcap (play_pcap_audio, as the tests do: one thread and
#                 one raw socket per call; every raw socket receives a copy of
#                 every UDP packet on the host, which costs the kernel O(calls^2)
#                 and is charged partly to handoff; fine for tests, not for
#                 hundreds of concurrent calls)
#
# Credentials: HANDOFF_API_ID / HANDOFF_API_SECRET (default dev / dev-secret).
# Needs bash, curl, sipp (root or CAP_NET_RAW for play_pcap_audio), go, ss.
# Everything runs on 127.0.0.1.
#
# Siblings: scripts/load-rate.sh (call rate and overload, with a Kamailio
# anchor) and scripts/load-media.sh (concurrent media, with an rtpengine
# anchor); scripts/lib/load-common.sh is what they share.
#
# Examples (the figures in docs/benchmarks.md):
#   scripts/load.sh -n 1500 -r 50 -d 2            # call rate, short calls
#   scripts/load.sh -n 600 -r 25 -d 20            # ~500 concurrent calls with RTP
set -euo pipefail

calls=600 rate=20 dur=4 limit="" mode=stream type=SIP api="" sipaddr=127.0.0.1:5060 pid="" out=""
while getopts "n:r:d:l:t:a:s:p:o:M:h" opt; do
	case $opt in
	n) calls=$OPTARG ;;
	r) rate=$OPTARG ;;
	d) dur=$OPTARG ;;
	l) limit=$OPTARG ;;
	t) type=$OPTARG ;;
	a) api=${OPTARG%/} ;;
	s) sipaddr=$OPTARG ;;
	p) pid=$OPTARG ;;
	o) out=$OPTARG ;;
	M) mode=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
limit=${limit:-$calls}
case $type in SIP | PHONE_NUMBER) ;; *) echo "load: -t SIP or PHONE_NUMBER" >&2; exit 2 ;; esac
case $mode in stream | pcap) ;; *) echo "load: -M stream or pcap" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/load-common.sh
. "$root/scripts/lib/load-common.sh"
need curl sipp go ss
load_init
sampler="" sipp_pid=""
stop_ours() {
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
	[ -n "$sipp_pid" ] && kill "$sipp_pid" 2>/dev/null || true
	load_cleanup
}
trap stop_ours EXIT

# --- handoff: the given one, or our own --------------------------------------
if [ -z "$api" ]; then
	echo "== building and starting handoff (work dir $work)"
	start_handoff
	pid=$hpid
else
	if [ -z "$pid" ]; then
		pid=$(pgrep -x handoff || true)
		[ "$(echo "$pid" | wc -w)" = 1 ] || { echo "load: give the handoff pid with -p" >&2; exit 2; }
	fi
	curl -sf "$api/readyz" >/dev/null || { echo "load: $api/readyz is not ready" >&2; exit 1; }
fi

# --- transfers: one per call ---------------------------------------------------
create_transfers "$calls" "$type"

# --- scenario: uac_load.xml with RTP of the requested duration ------------------
(cd "$root" && go run ./test/sipp/gen -o "$work/pcap" -audio "${dur}s" -digits "" -after 0 -alaw 0 -ulaw)
pcap=$(ls "$work"/pcap/pcmu_*.pcap) ulaw=$(ls "$work"/pcap/pcmu_*.ulaw)
if [ "$mode" = pcap ]; then
	play="<exec play_pcap_audio=\"$pcap\"/>"
	port='[media_port]'
else
	# Looped for ever; the BYE ends it.
	play="<exec rtp_stream=\"$ulaw,-1,0,PCMU/8000\"/>"
	port='[rtpstream_audio_port]'
fi
sed -e "s#<exec play_pcap_audio=\"pcap/pcmu_4s.pcap\"/>#$play#" \
	-e "s#m=audio \[media_port\]#m=audio $port#" \
	-e "s#<pause milliseconds=\"4200\"/>#<pause milliseconds=\"$((dur * 1000 + 200))\"/>#" \
	"$root/test/sipp/uac_load.xml" >"$work/uac_load.xml"
grep -q "$play" "$work/uac_load.xml" || { echo "load: could not set up the scenario" >&2; exit 1; }

# --- sampler: handoff CPU ticks, RSS, active calls, sipp CPU, once a second ------
sample() {
	echo "t_ms handoff_ticks handoff_rss_kb calls_active sipp_ticks"
	local sp
	while kill -0 "$pid" 2>/dev/null; do
		sp=$(pgrep -n -x sipp || true)
		echo "$(($(date +%s%N) / 1000000)) $(ticks "$pid") $(rss_kb "$pid") $(curl -s -m 2 "$api/metrics" | awk '/^handoff_sip_calls_active /{print $2}') $([ -n "$sp" ] && ticks "$sp" || echo 0)"
		sleep 1
	done
}

echo "== sipp: $calls calls at $rate/s, ${dur}s of RTP each ($mode), limit $limit, to $sipaddr"
rtp() { metric "$api" "handoff_rtp_packets_total{direction=\"$1\"}"; }
rss0=$(rss_kb "$pid") ticks0=$(ticks "$pid") us0=$(usersys "$pid") in0=$(rtp in) out0=$(rtp out)
sample >"$work/samples.txt" &
sampler=$!
start=$(date +%s%N)
set +e
(cd "$work" && exec sipp -sf uac_load.xml -inf transfers.csv "$sipaddr" -t u1 \
	-i 127.0.0.1 -mi 127.0.0.1 -nostdin \
	-m "$calls" -r "$rate" -rp 1000 -l "$limit" \
	-timeout "$((calls / rate + dur + 120))s" -timeout_error -recv_timeout 30000 \
	-trace_stat -stf stat.csv -fd 5 -trace_err -error_file errors.log \
	-trace_screen -screen_file screen.log >sipp.out 2>&1) &
sipp_pid=$!
wait "$sipp_pid"
rc=$?
sipp_pid=""
set -e
end=$(date +%s%N)
sleep 1
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""
ticks1=$(ticks "$pid") rss1=$(rss_kb "$pid") us1=$(usersys "$pid") in1=$(rtp in) out1=$(rtp out)

echo "== sipp final screens (exit status $rc: 0 = every call succeeded)"
grep -v '^ *$' "$work/screen.log" | grep -v 'Press \[q\]' || true
[ -s "$work/errors.log" ] && { echo "== sipp errors (tail)"; tail -20 "$work/errors.log"; }

# --- summary -----------------------------------------------------------------
stat_last=$(tail -1 "$work/stat.csv")
col() { head -1 "$work/stat.csv" | tr ';' '\n' | grep -nx "$1" | cut -d: -f1; }
ok=$(echo "$stat_last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
failed=$(echo "$stat_last" | cut -d';' -f"$(col 'FailedCall(C)')")
for c in 'ResponseTime1(C)' 'CallLength(C)' 'Retransmissions(C)' 'FailedUnexpectedMessage(C)' 'FailedTimeoutOnRecv(C)' 'FailedMaxUDPRetrans(C)'; do
	printf '%s %s; ' "$c" "$(echo "$stat_last" | cut -d';' -f"$(col "$c")")"
done
echo "(sipp averages, hh:mm:ss:us)"
awk -v hz="$hz" -v ok="$ok" -v failed="$failed" -v rate="$rate" -v dur="$dur" \
	-v wall="$(((end - start) / 1000000))e-3" -v t0="$ticks0" -v t1="$ticks1" \
	-v rss0="$rss0" -v rss1="$rss1" -v calls="$calls" -v us0="$us0" -v us1="$us1" \
	-v rtpin="$((${in1:-0} - ${in0:-0}))" -v rtpout="$((${out1:-0} - ${out0:-0}))" '
NR == 1 { next }
{
	n++; ms[n] = $1; tk[n] = $2; rss[n] = $3; act[n] = $4 + 0; sp[n] = $5
	if ($3 > peakrss) peakrss = $3
	if (act[n] > peak) peak = act[n]
}
END {
	# Steady state: intervals that start and end at >= 90% of the peak
	# concurrency (long calls); with short calls there may be none.
	for (i = 2; i <= n; i++) if (act[i] >= 0.9 * peak && act[i-1] >= 0.9 * peak && sp[i] >= sp[i-1]) {
		s++; dt += (ms[i] - ms[i-1]) / 1000; cpu += (tk[i] - tk[i-1]); scpu += (sp[i] - sp[i-1]); sact += act[i]
	}
	printf "\n== summary\n"
	printf "calls: %d successful, %d failed, of %d (offered %s/s, %s s of RTP each)\n", ok, failed, calls, rate, dur
	printf "sipp wall time: %.1f s (%.1f calls/s completed)\n", wall, ok / wall
	printf "handoff RTP packets: %d in, %d out (%d each way expected: calls x %s s x 50/s)\n", rtpin, rtpout, ok * dur * 50, dur
	printf "peak concurrent calls (handoff_sip_calls_active, 1 s samples): %d\n", peak
	printf "handoff CPU over the run: %.2f s = %.1f ms per call (avg %.0f%% of one core)", (t1 - t0) / hz, 1000 * (t1 - t0) / hz / (ok ? ok : 1), 100 * (t1 - t0) / hz / wall
	split(us0, a0, " "); split(us1, a1, " ")
	printf "; user %.2f s, system %.2f s\n", (a1[1] - a0[1]) / hz, (a1[2] - a0[2]) / hz
	if (dt > 0) {
		c = 100 * cpu / hz / dt; a = sact / s
		printf "steady state (%.0f s at >= 90%% of peak, %.0f calls on average): handoff CPU %.0f%% of one core = %.2f%% per concurrent call; sipp CPU %.0f%%\n", dt, a, c, c / a, 100 * scpu / hz / dt
	}
	printf "handoff RSS: %.1f MiB before, %.1f MiB peak, %.1f MiB after; (peak - before) / peak calls = %.0f KiB per concurrent call\n", rss0 / 1024, peakrss / 1024, rss1 / 1024, peak ? (peakrss - rss0) / peak : 0
}' "$work/samples.txt"
[ -n "$out" ] && echo "work files in $work"
exit "$rc"
