# Shared by scripts/load*.sh (sourced, not run): work directory, building
# and starting a handoff of our own on free loopback ports, creating one
# transfer per call over the API (test/loadgen), free ports, /proc samples,
# and cleanup of whatever was started. Everything runs on 127.0.0.1.
#
# The sourcing script sets root (the repository) and out (a directory to keep
# the work files in, or empty), and calls load_init first.

# load_init makes the work directory ($work) and installs the cleanup trap.
load_init() {
	if [ -n "$out" ]; then
		mkdir -p "$out"
		work=$(cd "$out" && pwd)
	else
		work=$(mktemp -d /tmp/handoff-load.XXXXXX)
	fi
	started="" # pids to stop at exit, newest last
	trap load_cleanup EXIT
	trap 'exit 130' INT TERM
}

# need fails unless every tool named is on PATH.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "load: $tool not found" >&2; exit 1; }
	done
}

# track adds a pid to stop at exit (SIGTERM, then SIGKILL after 10 s).
track() { started="$started $1"; }

# stop_pid stops one process we started and waits for it.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
	kill -KILL "$1" 2>/dev/null || true
}

load_cleanup() {
	local p
	for p in $started; do stop_pid "$p"; done
	[ -z "$out" ] && rm -rf "$work"
	return 0
}

# start_handoff builds handoff and starts it with a generated configuration
# (HTTP on port 0; SIP on a free port, which its Contact advertises; RTP
# ports 20000-39999; extra YAML appended to the sip: section from $1) and
# the environment overrides in $2 (space-separated NAME=VALUE); built with
# the Go build tags in $buildtags when set (pprof: see cmd/handoff/pprof.go).
# Sets api, sipaddr and hpid.
start_handoff() {
	local sipextra=${1:-} envs=${2:-} log="$work/handoff.log" httpp="" sipp_="" port
	port=$(free_port)
	(cd "$root" && go build -tags "${buildtags:-}" -o "$work/handoff" ./cmd/handoff)
	cat >"$work/handoff.yaml" <<EOF
http:
  listen: 127.0.0.1:0
  rate_limit: -1
numbers:
  quarantine: 1s
  pools:
    US:
      - +19990000000-+19990009999
store:
  path: $work/data/handoff.db
sip:
  listen: [udp://127.0.0.1:$port]
$sipextra
media:
  rtp_ports: 20000-39999
  bind: 127.0.0.1
log:
  level: info
EOF
	# shellcheck disable=SC2086 # envs is a list of words
	env $envs "$work/handoff" -config "$work/handoff.yaml" 2>"$log" &
	hpid=$!
	track "$hpid"
	for _ in $(seq 300); do
		httpp=$(sed -n 's/.*"msg":"http listening","addr":"\([^"]*\)".*/\1/p' "$log" | head -1)
		sipp_=$(sed -n 's#.*"msg":"sip listening","addrs":\["udp://\([^"]*\)".*#\1#p' "$log" | head -1)
		if [ -n "$httpp" ] && [ -n "$sipp_" ] && curl -sf "http://$httpp/readyz" >/dev/null; then break; fi
		kill -0 "$hpid" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	[ -n "$httpp" ] && [ -n "$sipp_" ] || { echo "load: handoff did not come up" >&2; tail "$log" >&2; exit 1; }
	api="http://$httpp" sipaddr=$sipp_
	echo "handoff pid $hpid, API $api, SIP udp $sipaddr"
}

# create_transfers creates $1 transfers of type $2 (SIP or PHONE_NUMBER)
# through $api (test/loadgen transfers, 16 at a time) and writes what each
# call dials to $work/users.txt and SIPp's injection file $work/transfers.csv.
create_transfers() {
	local t0 t1
	echo "== creating $1 $2 transfers"
	[ -x "$work/loadgen" ] || (cd "$root" && go build -o "$work/loadgen" ./test/loadgen)
	t0=$(date +%s%N)
	"$work/loadgen" transfers -api "$api" -n "$1" -type "$2" -prefix "load-$(date +%s)-$$" >"$work/users.txt"
	t1=$(date +%s%N)
	{ echo SEQUENTIAL; sed 's/$/;/' "$work/users.txt"; } >"$work/transfers.csv"
	echo "created in $(((t1 - t0) / 1000000)) ms"
}

# free_port prints a loopback port nobody listens on (UDP or TCP).
free_port() {
	local p
	while :; do
		p=$((RANDOM % 20000 + 40000))
		ss -Hlntu "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# /proc samples of a process: CPU ticks (user+system), user and system ticks,
# RSS in KiB.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
usersys() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo 0 0; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# metric prints the value of one exposition line's series $2 (exact, labels
# included) from $1/metrics, 0 when absent.
metric() { curl -s -m 5 "$1/metrics" | awk -v s="$2" '$1 == s {printf "%d", $2; f=1} END {if (!f) print 0}'; }

# cpu_sample prints the box's CPU time so far and the part of it stolen by
# the hypervisor (/proc/stat: user..steal jiffies, steal), for steal_between.
cpu_sample() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9; exit }' /proc/stat; }

# steal_between prints the share of the box's CPU time stolen between two
# cpu_sample outputs: on a shared VM a high share (30-50 % was seen) makes
# every figure of the window slower, the anchors' too.
steal_between() { echo "$1 $2" | awk '{ d = $3 - $1; s = d > 0 ? 100 * ($4 - $2) / d : 0; printf "%.0f%%", s }'; }
