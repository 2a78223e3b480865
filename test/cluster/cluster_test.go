// Package cluster_test runs Handoff as several nodes: redis-server (shared
// store), two handoff binaries on different loopback ports, Kamailio's
// dispatcher in front (deploy/kamailio/kamailio.cfg, with test ports), and
// SIPp placing calls through Kamailio.
//
// Needs redis-server, kamailio and sipp on PATH (Debian: redis-server,
// kamailio, sip-tester; .ci/run installs them). Without them the tests skip,
// unless CI is set, when they fail. Everything listens on 127.0.0.1 only.
package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/redistest"
	"github.com/handoff/handoff/internal/testenv"
)

const (
	apiID     = "dev"
	apiSecret = "dev-secret"

	// Node liveness in the test: a heartbeat every 200 ms lives 1 s; a
	// node silent for 1 s more is lost (2 s after its last heartbeat).
	heartbeat = 200 * time.Millisecond
	grace     = time.Second

	// Kamailio: OPTIONS probe every second; 1 s without a provisional
	// answer to an INVITE fails over to the next node.
	pingInterval = 1
	frTimerMS    = 1000

	buildLimit = 3 * time.Minute
	startLimit = 30 * time.Second
)

// Upper bounds for things to happen, never measured thresholds.
var waitLimit = 20 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// node is one running handoff process.
type node struct {
	id      string
	http    string
	sipPort int
	log     string
	cmd     *exec.Cmd
	done    chan struct{}
	client  *http.Client
}

// startNode runs a node; args are the binary's (e.g. -config FILE), the
// environment sets the rest.
func startNode(t testing.TB, dir, id, redisURL string, rtpFirst int, args ...string) *node {
	t.Helper()
	bin := testenv.Build(t, "github.com/handoff/handoff/cmd/handoff")
	n := &node{
		id:      id,
		sipPort: redistest.FreePort(t),
		log:     filepath.Join(dir, id+".log"),
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
	}
	httpPort := redistest.FreePort(t)
	n.http = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	env := []string{
		"HANDOFF_HTTP_LISTEN=127.0.0.1:" + strconv.Itoa(httpPort),
		"HANDOFF_HTTP_RATE_LIMIT=-1",
		"HANDOFF_STORE_PATH=" + filepath.Join(dir, id, "handoff.db"),
		"HANDOFF_STORE_REDIS_URL=" + redisURL,
		"HANDOFF_STORE_REDIS_PREFIX=cluster-test:",
		"HANDOFF_NODE_ID=" + id,
		"HANDOFF_NODE_HEARTBEAT=" + heartbeat.String(),
		"HANDOFF_NODE_GRACE=" + grace.String(),
		"HANDOFF_NUMBERS_POOLS=US=+19995550100-+19995550399;GB=+447700900000-+447700900009",
		"HANDOFF_NUMBERS_QUARANTINE=1m",
		fmt.Sprintf("HANDOFF_SIP_LISTEN=udp://127.0.0.1:%[1]d,tcp://127.0.0.1:%[1]d", n.sipPort),
		fmt.Sprintf("HANDOFF_MEDIA_RTP_PORTS=%d-%d", rtpFirst, rtpFirst+999),
		"HANDOFF_MEDIA_RTP_TIMEOUT=2m", // the SIPp calls send no RTP
		"HANDOFF_LOG_FORMAT=json",
		"HANDOFF_DRAIN_TIMEOUT=5s",
	}
	env = append(env, testenv.CleanEnv()...)
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Dir = dir
	n.cmd.Env = env
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = n.cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			dumpTail(t, n.log, 40)
		}
	})
	if err := testenv.WaitReady(n.client, n.http+"/readyz", n.done, startLimit); err != nil {
		dumpTail(t, n.log, 40)
		t.Fatalf("node %s %v", id, err)
	}
	return n
}

// stop drains the node with SIGTERM (SIGKILL after 10 s).
func (n *node) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// kill ends the node at once, as a crash would.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

func dumpTail(t testing.TB, path string, lines int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	t.Logf("%s (tail):\n%s", filepath.Base(path), testenv.Tail(string(b), lines))
}

// transferView is the part of the API's transfer the tests read.
type transferView struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	PhoneNumber *struct {
		TransferNumber string `json:"transferNumber"`
	} `json:"phoneNumber"`
	EndReason string `json:"endReason"`
}

// create registers a transfer of type typ (PHONE_NUMBER in country, or SIP
// with a BYE return) on n, and returns the status code and the transfer.
func (n *node) create(id, typ, country string) (int, transferView, error) {
	body := fmt.Sprintf(`{"id":%q,"externalConversationId":"conv-%s","type":"SIP","sip":{"returnTransferType":"BYE"}}`, id, id)
	if typ == "PHONE_NUMBER" {
		body = fmt.Sprintf(`{"id":%q,"externalConversationId":"conv-%s","type":"PHONE_NUMBER","phoneNumber":{"country":%q}}`, id, id, country)
	}
	return n.api("POST", "/generativeagent/v1/call-transfers", body)
}

func (n *node) get(t testing.TB, id string) transferView {
	t.Helper()
	code, v, err := n.api("GET", "/generativeagent/v1/call-transfers/"+id, "")
	if err != nil || code != 200 {
		t.Fatalf("GET %s on %s: %d %v", id, n.id, code, err)
	}
	return v
}

func (n *node) api(method, path, body string) (int, transferView, error) {
	var v transferView
	req, err := http.NewRequest(method, n.http+path, strings.NewReader(body))
	if err != nil {
		return 0, v, err
	}
	req.Header.Set("asapp-api-id", apiID)
	req.Header.Set("asapp-api-secret", apiSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, v, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &v); err != nil {
			return resp.StatusCode, v, fmt.Errorf("%v in %s", err, b)
		}
	}
	return resp.StatusCode, v, nil
}

// metricSum adds up the samples of the metric name that have the labels
// ("label=value").
func (n *node) metricSum(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return testenv.MetricValue(t, testenv.Scrape(t, n.client, n.http+"/metrics"), name, labels...)
}

// answered reads the node's log: the transfers it took ONGOING.
func (n *node) answered(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg        string `json:"msg"`
			TransferID string `json:"transfer_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "transfer ongoing" {
			out[line.TransferID] = true
		}
	}
	return out
}

// cluster is Redis, the nodes and (optionally) Kamailio in front of them.
type cluster struct {
	dir      string
	redis    *redistest.Server
	nodes    []*node
	sipProxy int // where SIPp sends calls: Kamailio's port (or a node's)
}

func startCluster(t testing.TB, withProxy bool) *cluster {
	t.Helper()
	progs := []string{"redis-server"}
	if withProxy {
		progs = append(progs, "kamailio", "sipp")
	}
	redistest.Require(t, progs...)
	c := &cluster{dir: t.TempDir()}
	c.redis = redistest.Start(t)
	c.nodes = []*node{
		startNode(t, c.dir, "node-a", c.redis.URL(), 40000),
		startNode(t, c.dir, "node-b", c.redis.URL(), 41000),
	}
	if withProxy {
		c.sipProxy = startKamailio(t, c.dir, c.nodes)
	}
	return c
}

// startKamailio runs deploy/kamailio/kamailio.cfg, rewritten for the test's
// ports, in the foreground with its own runtime directory.
func startKamailio(t testing.TB, dir string, nodes []*node) int {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/kamailio/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	port := redistest.FreePort(t)
	kdir := filepath.Join(dir, "kamailio")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:127.0.0.1:%d 0 0\n", n.sipPort)
	}
	listPath := filepath.Join(kdir, "dispatcher.list")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, r := range []struct{ from, to string }{
		{"!PROXY_UDP_SOCKET!udp:127.0.0.1:5060!", fmt.Sprintf("!PROXY_UDP_SOCKET!udp:127.0.0.1:%d!", port)},
		{"!PROXY_TCP_SOCKET!tcp:127.0.0.1:5060!", fmt.Sprintf("!PROXY_TCP_SOCKET!tcp:127.0.0.1:%d!", port)},
		{"!NODE_LIST_FILE!/etc/kamailio/dispatcher.list!", "!NODE_LIST_FILE!" + listPath + "!"},
	} {
		if !strings.Contains(cfg, r.from) {
			t.Fatalf("kamailio.cfg lacks %q", r.from)
		}
		cfg = strings.Replace(cfg, r.from, r.to, 1)
	}
	cfgPath := filepath.Join(kdir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(kdir, "kamailio.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kamailio", "-DD", "-E", "-f", cfgPath,
		"-A", fmt.Sprintf("PING_INTERVAL=%d", pingInterval), "-A", fmt.Sprintf("FR_TIMER=%d", frTimerMS),
		"-P", filepath.Join(kdir, "kamailio.pid"), "-Y", kdir, "-w", kdir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Kamailio forks workers, and cleanup ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		// Workers left behind by a main process that died first.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if t.Failed() {
			dumpTail(t, logPath, 60)
		}
	})
	deadline := time.Now().Add(startLimit)
	for {
		if sipOptionsOK(port) {
			return port
		}
		select {
		case <-done:
			dumpTail(t, logPath, 60)
			t.Fatal("kamailio exited during start-up")
		default:
		}
		if time.Now().After(deadline) {
			dumpTail(t, logPath, 60)
			t.Fatal("kamailio does not answer OPTIONS")
		}
	}
}

// sipOptionsOK sends an OPTIONS to the proxy itself and wants a 200.
func sipOptionsOK(port int) bool {
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-probe-%d;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:127.0.0.1:%d>\r\n"+
		"Call-ID: probe-%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		port, local, time.Now().UnixNano(), port, time.Now().UnixNano())
	if _, err := conn.Write([]byte(msg)); err != nil {
		return false
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	return err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200"))
}

// sippRun is one SIPp process placing calls through the proxy.
type sippRun struct {
	name    string
	dir     string
	stat    string
	stdout  bytes.Buffer
	err     error
	done    chan struct{}
	ok, bad int
}

// startSIPp places one call per entry of users (transfer numbers or SIP
// transfer ids) at rate calls/s, each lasting hold, through the proxy.
func (c *cluster) startSIPp(t testing.TB, name string, users []string, rate int, hold time.Duration, limit time.Duration, extra ...string) *sippRun {
	t.Helper()
	r := &sippRun{name: name, dir: filepath.Join(c.dir, "sipp-"+name), done: make(chan struct{})}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for _, u := range users {
		fmt.Fprintf(&inf, "%s;\n", u)
	}
	csvPath := filepath.Join(r.dir, "calls.csv")
	if err := os.WriteFile(csvPath, []byte(inf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r.stat = filepath.Join(r.dir, "stat.csv")
	scenario, _ := filepath.Abs("uac_call.xml")
	args := []string{
		"-sf", scenario,
		fmt.Sprintf("127.0.0.1:%d", c.sipProxy),
		"-t", "u1",
		"-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-p", strconv.Itoa(redistest.FreePort(t)),
		"-mp", strconv.Itoa(redistest.FreePort(t)),
		"-cp", strconv.Itoa(redistest.FreePort(t)),
		"-inf", csvPath,
		"-m", strconv.Itoa(len(users)), "-l", strconv.Itoa(len(users)),
		"-r", strconv.Itoa(rate), "-rp", "1000",
		"-d", strconv.Itoa(int(hold / time.Millisecond)),
		"-nostdin",
		"-timeout", strconv.Itoa(int(limit/time.Second)) + "s", "-timeout_error",
		"-recv_timeout", "10000",
		"-trace_stat", "-stf", r.stat, "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(r.dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(r.dir, "messages.log"),
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), limit+20*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stdout
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		defer cancel()
		r.err = cmd.Wait()
		r.ok, r.bad, _ = testenv.SIPpTotals(r.stat)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for SIPp to end and returns its successful and failed calls.
func (r *sippRun) wait(t testing.TB) (ok, failed int) {
	t.Helper()
	<-r.done
	t.Logf("sipp %s: %d successful, %d failed calls (%v)", r.name, r.ok, r.bad, r.err)
	return r.ok, r.bad
}

func (r *sippRun) report(t testing.TB) {
	t.Logf("sipp %s output:\n%s", r.name, testenv.Tail(r.stdout.String(), 30))
	for _, f := range []string{"errors.log", "messages.log"} {
		dumpTail(t, filepath.Join(r.dir, f), 60)
	}
}

// createMany creates count transfers named prefix-i, alternating the node
// (i%2) and the type (PHONE_NUMBER for even i/2, SIP for odd), and returns
// their ids, the SIP Request-URI user of each (number or id) and the node
// each was created on.
func (c *cluster) createMany(t testing.TB, prefix string, count int) (ids, users []string, createdOn map[string]string) {
	t.Helper()
	ids = make([]string, count)
	users = make([]string, count)
	createdOn = map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range count {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		n := c.nodes[i%2]
		typ := "PHONE_NUMBER"
		if (i/2)%2 == 1 {
			typ = "SIP"
		}
		wg.Go(func() {
			code, v, err := n.create(ids[i], typ, "US")
			if err != nil || code != 200 {
				t.Errorf("create %s on %s: %d %v", ids[i], n.id, code, err)
				return
			}
			users[i] = ids[i]
			if typ == "PHONE_NUMBER" {
				users[i] = v.PhoneNumber.TransferNumber
			}
			mu.Lock()
			createdOn[ids[i]] = n.id
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids, users, createdOn
}

// waitStatus polls GET on n until every id reads status (with endReason
// reason, if not empty) or waitLimit passes.
func waitStatus(t testing.TB, n *node, ids []string, status, reason string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for _, id := range ids {
		for {
			v := n.get(t, id)
			if v.Status == status && (reason == "" || v.EndReason == reason) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("transfer %s on %s: %s/%s, want %s/%s", id, n.id, v.Status, v.EndReason, status, reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// Several creates at once on both nodes for a small pool: each number is
// leased once across the cluster, the rest are refused with 503.
func TestClusterLeaseExclusive(t *testing.T) {
	c := startCluster(t, false)
	const creates = 60 // GB has 10 numbers
	var wg sync.WaitGroup
	var mu sync.Mutex
	leased := map[string]string{}
	refused := 0
	for i := range creates {
		n := c.nodes[i%2]
		wg.Go(func() {
			id := fmt.Sprintf("lease-%02d", i)
			code, v, err := n.create(id, "PHONE_NUMBER", "GB")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("create %s: %v", id, err)
			case code == 503:
				refused++
			case code == 200:
				if prev, dup := leased[v.PhoneNumber.TransferNumber]; dup {
					t.Errorf("number %s leased to %s and %s", v.PhoneNumber.TransferNumber, prev, id)
				}
				leased[v.PhoneNumber.TransferNumber] = id
			default:
				t.Errorf("create %s: status %d", id, code)
			}
		})
	}
	wg.Wait()
	if len(leased) != 10 || refused != creates-10 {
		t.Fatalf("leased %d numbers, refused %d; want 10 and %d", len(leased), refused, creates-10)
	}
	// Both nodes see every lease.
	for _, n := range c.nodes {
		if got := n.metricSum(t, "handoff_number_pool_numbers", "country=GB", "state=leased"); got != 10 {
			t.Errorf("%s: GB leased = %v, want 10", n.id, got)
		}
		for number, id := range leased {
			if v := n.get(t, id); v.PhoneNumber == nil || v.PhoneNumber.TransferNumber != number {
				t.Errorf("%s: %s has %+v, want %s", n.id, id, v.PhoneNumber, number)
			}
		}
	}
}

// Calls through Kamailio to two nodes sharing Redis: transfers created on
// one node are answered on the other, calls spread over both; SIGKILL of one
// node under load costs no new call once the dispatcher has noticed, and its
// ONGOING transfers end as node_lost.
func TestClusterCallsAndNodeLoss(t *testing.T) {
	c := startCluster(t, true)
	a, b := c.nodes[0], c.nodes[1]

	// 1. Cross-node calls: 24 transfers created alternately on A and B,
	// called through the proxy (round-robin over A and B).
	ids, users, createdOn := c.createMany(t, "cross", 24)
	run := c.startSIPp(t, "cross", users, 12, 500*time.Millisecond, 60*time.Second)
	if ok, failed := run.wait(t); ok != len(ids) || failed != 0 {
		run.report(t)
		t.Fatalf("cross-node calls: %d ok, %d failed; want %d and 0", ok, failed, len(ids))
	}
	answeredA, answeredB := a.answered(t), b.answered(t)
	cross := map[string]int{}
	for _, id := range ids {
		// GET on the node that did not create it.
		other := a
		if createdOn[id] == a.id {
			other = b
		}
		if v := other.get(t, id); v.Status != "COMPLETED" || v.EndReason != "caller_hangup" {
			t.Errorf("%s (created on %s) reads %s/%s on %s, want COMPLETED/caller_hangup", id, createdOn[id], v.Status, v.EndReason, other.id)
		}
		switch {
		case answeredA[id] == answeredB[id]:
			t.Errorf("%s answered by node-a: %v, node-b: %v; want exactly one", id, answeredA[id], answeredB[id])
		case answeredA[id] && createdOn[id] == b.id:
			cross["b->a"]++
		case answeredB[id] && createdOn[id] == a.id:
			cross["a->b"]++
		}
	}
	t.Logf("created on one node, answered on the other: %v", cross)
	if cross["a->b"] == 0 || cross["b->a"] == 0 {
		t.Errorf("no transfer created on one node was answered on the other both ways: %v", cross)
	}
	invA := a.metricSum(t, "handoff_sip_invites_total", "code=200")
	invB := b.metricSum(t, "handoff_sip_invites_total", "code=200")
	t.Logf("INVITEs answered 200: node-a %v, node-b %v", invA, invB)
	if invA == 0 || invB == 0 || invA+invB != float64(len(ids)) {
		t.Errorf("calls not spread over both nodes: node-a %v, node-b %v (of %d)", invA, invB, len(ids))
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. Load: long calls in progress on both nodes, and a stream of short
	// ones, when node B is killed.
	longIDs, longUsers, _ := c.createMany(t, "long", 10)
	streamIDs, streamUsers, _ := c.createMany(t, "stream", 40)
	afterIDs, afterUsers, _ := c.createMany(t, "after", 30)
	long := c.startSIPp(t, "long", longUsers, 20, 12*time.Second, 60*time.Second)
	waitStatus(t, a, longIDs, "ONGOING", "")
	stream := c.startSIPp(t, "stream", streamUsers, 10, time.Second, 60*time.Second)
	time.Sleep(1500 * time.Millisecond)
	b.kill()
	killed := time.Now()
	onB := b.answered(t)
	t.Logf("node-b killed with %d transfers answered in its life", len(onB))

	// The dispatcher notices within a probe interval plus the probe's
	// timeout; give it that twice over, then require every new call to work.
	streamOK, streamFailed := stream.wait(t)
	time.Sleep(time.Until(killed.Add(2 * (pingInterval*time.Second + frTimerMS*time.Millisecond))))
	before := a.metricSum(t, "handoff_sip_invites_total", "code=200")
	after := c.startSIPp(t, "after", afterUsers, 15, 300*time.Millisecond, 60*time.Second)
	if ok, failed := after.wait(t); ok != len(afterIDs) || failed != 0 {
		after.report(t)
		t.Fatalf("new calls after the dispatcher noticed: %d ok, %d failed; want %d and 0", ok, failed, len(afterIDs))
	}
	waitStatus(t, a, afterIDs, "COMPLETED", "caller_hangup")
	if got := a.metricSum(t, "handoff_sip_invites_total", "code=200") - before; got != float64(len(afterIDs)) {
		t.Errorf("node-a answered %v of the %d new calls", got, len(afterIDs))
	}

	// The stream's calls in progress on B when it died are lost; every
	// other call of the stream worked (the proxy failed over the INVITEs B
	// never answered).
	lostStream := 0
	for _, id := range streamIDs {
		if onB[id] {
			lostStream++
		}
	}
	t.Logf("stream during the kill: %d ok, %d failed; %d of its calls had been answered by node-b", streamOK, streamFailed, lostStream)
	if streamOK+streamFailed != len(streamIDs) || streamFailed > lostStream {
		stream.report(t)
		t.Errorf("stream: %d ok, %d failed; at most the %d calls node-b held may fail", streamOK, streamFailed, lostStream)
	}

	// 3. node_lost: B's ONGOING transfers end on the survivor; A's long
	// calls carry on and end normally when SIPp hangs up.
	var lostIDs, keptIDs []string
	for _, id := range append(longIDs, streamIDs...) {
		if onB[id] {
			lostIDs = append(lostIDs, id)
		}
	}
	for _, id := range longIDs {
		if !onB[id] {
			keptIDs = append(keptIDs, id)
		}
	}
	if len(lostIDs) == 0 || len(keptIDs) == 0 {
		t.Fatalf("long calls not on both nodes: %d on node-b, %d on node-a", len(lostIDs), len(keptIDs))
	}
	for _, id := range lostIDs {
		v := a.get(t, id)
		if v.Status == "COMPLETED" && v.EndReason == "caller_hangup" {
			continue // a short call that ended before the kill
		}
		waitStatus(t, a, []string{id}, "COMPLETED", "node_lost")
	}
	if got := a.metricSum(t, "handoff_transfers_completed_total", "reason=node_lost"); got == 0 {
		t.Error("handoff_transfers_completed_total{reason=\"node_lost\"} is 0 on the survivor")
	}
	longOK, longFailed := long.wait(t)
	if longOK != len(keptIDs) {
		long.report(t)
		t.Errorf("long calls: %d ok, %d failed; want the %d on node-a ok", longOK, longFailed, len(keptIDs))
	}
	waitStatus(t, a, keptIDs, "COMPLETED", "caller_hangup")
}
