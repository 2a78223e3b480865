package interop

// One baresip process per test, driven through its ctrl_tcp module
// (netstring-framed JSON: commands in, responses and events out), with a
// generated configuration directory: no sound card (the caller's voice is
// a WAV file played by aufile, what it hears is dumped by the sndfile
// filter), no registration, SIP and RTP on loopback only.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// Where Debian's baresip-core installs its modules.
const baresipModules = "/usr/lib/baresip/modules"

// callerToneHz is the caller's voice: a steady tone the agent's echo
// brings back, told apart from the loopback agent's 440 Hz greeting.
const callerToneHz = 1000

// needBaresip returns the baresip binary, or skips without it (fails when
// CI is set: .ci/run installs it).
func needBaresip(t *testing.T) string {
	t.Helper()
	const install = "apt-get install -y baresip"
	p := testenv.Tool(t, "baresip", install)
	if _, err := os.Stat(filepath.Join(baresipModules, "ctrl_tcp.so")); err != nil {
		testenv.Missing(t, "baresip's modules", install, err)
	}
	return p
}

// baresip is one running baresip and its control connection.
type baresip struct {
	t       *testing.T
	dir     string // its configuration, its input WAV and its dumps
	sipPort int
	cmd     *exec.Cmd
	done    chan struct{}
	out     *testenv.Buffer // stdout and stderr, with the SIP trace (-s)
	ctrl    net.Conn
	events  chan baresipEvent
	replies chan baresipReply
	token   int
}

// baresipEvent is one ctrl_tcp event (the fields the tests read).
type baresipEvent struct {
	Type, Param string
	PeerURI     string `json:"peeruri"`
}

type baresipReply struct {
	OK    bool
	Data  string
	Token string
}

// startBaresip writes a configuration and starts baresip, its audio
// source a WAV file of callerToneHz, and connects to its ctrl_tcp.
func startBaresip(t *testing.T, bin string) *baresip {
	t.Helper()
	b := &baresip{
		t: t, dir: t.TempDir(), sipPort: testenv.FreePort(t, true),
		done: make(chan struct{}), out: &testenv.Buffer{},
		events: make(chan baresipEvent, 1024), replies: make(chan baresipReply, 4),
	}
	ctrlPort := testenv.FreePort(t, false)
	writeTone(t, filepath.Join(b.dir, "caller.wav"), callerToneHz, 30*time.Second)
	b.writeConfig(ctrlPort)

	b.cmd = exec.Command(bin, "-f", b.dir, "-s")
	b.cmd.Dir = b.dir
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("baresip: %v", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.kill)
	b.connect(ctrlPort)
	return b
}

func (b *baresip) writeConfig(ctrlPort int) {
	b.t.Helper()
	// rtp_ports: baresip takes an RTP and RTCP pair in the range for each
	// call (two when it follows a REFER); ports this test found free keep
	// it off every other test's.
	rtp := testenv.FreeUDPRange(b.t, 4)
	config := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%[1]d
net_interface 127.0.0.1
call_local_timeout 10
audio_source aufile,%[2]s
audio_player aubridge,nil
audio_alert aubridge,nil
ausrc_srate 8000
ausrc_channels 1
rtp_ports %[3]d-%[4]d
rtp_timeout 10
module_path %[5]s
module opus.so
module g722.so
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_tmp account.so
snd_path %[6]s
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%[7]d
`, b.sipPort, filepath.Join(b.dir, "caller.wav"), rtp, rtp+3, baresipModules, b.dir, ctrlPort)
	// answermode auto: a call to baresip is answered at once (not used by
	// these tests, which have baresip call out, but no call may ring
	// forever).
	accounts := fmt.Sprintf("<sip:interop@127.0.0.1:%d>;regint=0;answermode=auto\n", b.sipPort)
	for name, text := range map[string]string{"config": config, "accounts": accounts, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(text), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// connect dials ctrl_tcp once baresip listens and reads its messages.
func (b *baresip) connect(port int) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			b.ctrl = c
			break
		}
		select {
		case <-b.done:
			b.t.Fatalf("baresip exited during start-up:\n%s", b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip's ctrl_tcp not listening after 10 s: %v\n%s", err, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	go b.read()
}

// read splits ctrl_tcp's netstrings into events and replies until the
// connection closes.
func (b *baresip) read() {
	defer close(b.events)
	r := bufio.NewReader(b.ctrl)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return
		}
		var m struct {
			Event, Response bool
			baresipEvent
			baresipReply
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			continue
		}
		switch {
		case m.Event:
			b.events <- m.baresipEvent
		case m.Response:
			b.replies <- m.baresipReply
		}
	}
}

// readNetstring reads one "<length>:<bytes>," frame.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("ctrl_tcp: bad netstring length %q", head)
	}
	msg := make([]byte, n+1)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	if msg[n] != ',' {
		return nil, fmt.Errorf("ctrl_tcp: netstring not closed by a comma")
	}
	return msg[:n], nil
}

// command runs a baresip command (the menu's long form, as on its
// console: "dial sip:…", "sndcode #") and returns its output.
func (b *baresip) command(name, params string) string {
	b.t.Helper()
	b.token++
	tok := strconv.Itoa(b.token)
	body, _ := json.Marshal(map[string]string{"command": name, "params": params, "token": tok})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(body), body); err != nil {
		b.t.Fatalf("ctrl_tcp %s: %v", name, err)
	}
	select {
	case r := <-b.replies:
		if !r.OK || r.Token != tok {
			b.t.Fatalf("baresip %s %s: ok %v token %q data %q", name, params, r.OK, r.Token, r.Data)
		}
		return r.Data
	case <-time.After(5 * time.Second):
		b.t.Fatalf("baresip %s %s: no reply in 5 s", name, params)
		return ""
	}
}

// waitEvent waits for the next event of type typ about a call with peer
// (its peer URI), skipping others.
func (b *baresip) waitEvent(typ, peer string, limit time.Duration) baresipEvent {
	b.t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case e, ok := <-b.events:
			if !ok {
				b.t.Fatalf("baresip's ctrl_tcp closed waiting for %s", typ)
			}
			b.t.Logf("baresip event %s %s %q", e.Type, e.PeerURI, e.Param)
			if e.Type == typ && e.PeerURI == peer {
				return e
			}
		case <-timeout:
			b.t.Fatalf("no baresip %s event for %s in %v", typ, peer, limit)
		}
	}
}

// quit asks baresip to end (hanging up what is left) and waits for it.
func (b *baresip) quit() {
	b.t.Helper()
	b.command("quit", "")
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.t.Errorf("baresip still running 10 s after quit")
	}
}

// kill ends baresip if it still runs and closes the control connection.
func (b *baresip) kill() {
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.done
	}
	if b.ctrl != nil {
		b.ctrl.Close()
		for range b.events { // the reader's exit
		}
	}
	if b.t.Failed() {
		b.t.Logf("baresip output (tail):\n%s", testenv.Tail(b.out.String(), 150))
	}
}

// decodedDump is the WAV baresip's sndfile filter wrote of what it heard.
func (b *baresip) decodedDump() string {
	b.t.Helper()
	m, _ := filepath.Glob(filepath.Join(b.dir, "dump-*-dec.wav"))
	if len(m) != 1 {
		b.t.Fatalf("want one decoded-audio dump in %s, found %v", b.dir, m)
	}
	return m[0]
}

// sipMessage is one message of baresip's SIP trace (-s).
type sipMessage struct {
	from, to string // host:port
	text     string // start line, headers and body, LF line ends
}

// start is the message's first line.
func (m sipMessage) start() string {
	first, _, _ := strings.Cut(m.text, "\n")
	return first
}

// trace splits baresip's SIP trace into its messages, in order. Each is
// "ESC[36;1m#", "UDP <from> -> <to>", the message, "ESC[;m".
func (b *baresip) trace() []sipMessage {
	var out []sipMessage
	for _, block := range strings.Split(strings.ReplaceAll(b.out.String(), "\r", ""), "\x1b[36;1m#\n")[1:] {
		block, _, _ = strings.Cut(block, "\x1b[;m")
		head, text, _ := strings.Cut(block, "\n")
		var m sipMessage
		if _, err := fmt.Sscanf(head, "UDP %s -> %s", &m.from, &m.to); err != nil {
			continue
		}
		m.text = text
		out = append(out, m)
	}
	return out
}

// find returns the first message of the trace whose start line begins
// with prefix (a method and space, or "SIP/2.0 200").
func (b *baresip) find(prefix string) (sipMessage, bool) {
	for _, m := range b.trace() {
		if strings.HasPrefix(m.start(), prefix) {
			return m, true
		}
	}
	return sipMessage{}, false
}
