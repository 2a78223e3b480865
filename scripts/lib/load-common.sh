# Shared by scripts/load*.sh (sourced, not run): work directory, building
# and starting a handoff of our own on free loopback ports, creating one
# transfer per call over the API, /proc samples, and cleanup of whatever was
# started. Everything runs on 127.0.0.1.
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
# (SIP and HTTP on port 0, RTP ports 20000-29999, extra YAML appended to the
# sip: section from $1) and the environment overrides in $2 (space-separated
# NAME=VALUE). Sets api, sipaddr and hpid.
start_handoff() {
	local sipextra=${1:-} envs=${2:-} log="$work/handoff.log" httpp="" sipp_=""
	(cd "$root" && go build -o "$work/handoff" ./cmd/handoff)
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
  listen: [udp://127.0.0.1:0]
$sipextra
media:
  rtp_ports: 20000-29999
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
# through $api, 8 at a time, and writes the Request-URI user parts to
# $work/users.txt and SIPp's injection file $work/transfers.csv.
create_transfers() {
	local n=$1 t0 t1
	echo "== creating $n $2 transfers"
	export api type=$2 run id=${HANDOFF_API_ID:-dev} secret=${HANDOFF_API_SECRET:-dev-secret}
	run=$(date +%s)-$$
	export -f create_transfer
	t0=$(date +%s%N)
	seq 1 "$n" | xargs -P 8 -I{} bash -c 'create_transfer {}' >"$work/users.txt"
	t1=$(date +%s%N)
	[ "$(wc -l <"$work/users.txt")" = "$n" ] || { echo "load: only $(wc -l <"$work/users.txt") transfers created" >&2; exit 1; }
	{ echo SEQUENTIAL; sed 's/$/;/' "$work/users.txt"; } >"$work/transfers.csv"
	echo "created in $(((t1 - t0) / 1000000)) ms"
}

# create_transfer creates transfer number $1 and prints its Request-URI user
# part (run by xargs in a child bash: uses the exported api, type, run, id,
# secret).
create_transfer() {
	local body resp code
	body="{\"id\":\"load-$run-$1\",\"externalConversationId\":\"load-$1\",\"type\":\"$type\",\"phoneNumber\":{\"country\":\"US\"}}"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		resp=$(curl -s -w '\n%{http_code}' -X POST "$api/generativeagent/v1/call-transfers" \
			-H "asapp-api-id: $id" -H "asapp-api-secret: $secret" -H 'Content-Type: application/json' -d "$body")
		code=${resp##*$'\n'}
		case $code in
		200) break ;;
		429 | 503) sleep 1 ;; # rate limit of a running instance
		*) echo "load: create: $code ${resp%$'\n'*}" >&2; return 1 ;;
		esac
	done
	[ "$code" = 200 ] || { echo "load: create: $code" >&2; return 1; }
	if [ "$type" = PHONE_NUMBER ]; then
		echo "$resp" | sed -n 's/.*"transferNumber":"\([^"]*\)".*/\1/p'
	else
		echo "load-$run-$1"
	fi
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
