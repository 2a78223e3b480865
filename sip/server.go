// Package sip is Handoff's SIP side: it accepts, authenticates and
// correlates inbound INVITEs, runs each call's dialog, drives its media
// session and agent session, and hands the call back when the agent is done.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/lateguard"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// tcpIdleTimeout closes an inbound TCP or TLS connection that sends
// nothing for this long (trunks keep theirs alive with OPTIONS or CRLF).
const tcpIdleTimeout = 15 * time.Minute

// withoutRawData is a log handler that replaces a "data" attribute (sipgo
// logs a whole unparsable message under it) by its length.
type withoutRawData struct{ slog.Handler }

func (h withoutRawData) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "data" {
			a = slog.Int("data_bytes", len(a.Value.String()))
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h withoutRawData) WithAttrs(attrs []slog.Attr) slog.Handler {
	return withoutRawData{h.Handler.WithAttrs(attrs)}
}

func (h withoutRawData) WithGroup(name string) slog.Handler {
	return withoutRawData{h.Handler.WithGroup(name)}
}

// Config is what the SIP side needs from the configuration.
type Config struct {
	// Listen lists transport://host:port addresses (udp, tcp).
	Listen []string
	// ExternalHost is the host (and optional port) advertised in Contact,
	// Via and transfer URIs; empty means the first listen address.
	ExternalHost string
	// MediaAddr is the IP advertised in SDP; empty means ExternalHost's IP.
	MediaAddr netip.Addr
	// TrustedCIDRs admit INVITEs from these sources without digest auth.
	TrustedCIDRs []netip.Prefix
	// DigestRealm and DigestUsers (username -> password) turn on digest
	// authentication for sources outside TrustedCIDRs.
	DigestRealm string
	DigestUsers map[string]string
	// TransferHeader carries a SIP transfer's id when the Request-URI does not.
	TransferHeader string
	// AckTimeout bounds the wait for the ACK of our 200 OK.
	AckTimeout time.Duration
	// RingingAfter is how long an INVITE waits for its answer (the agent
	// connecting) before the caller gets 180 Ringing, repeated every
	// minute until the answer. 0 means 500 ms; negative never rings.
	RingingAfter time.Duration
	// RTPTimeout ends a call whose caller sends no RTP for this long.
	RTPTimeout time.Duration
	// MinSE is the smallest session-timer interval we accept (RFC 4028).
	MinSE time.Duration
	// NodeID names this instance in transfer claims.
	NodeID string
	// RetryAfter is sent with 503 answers.
	RetryAfter time.Duration
	// Return tunes the REFER and INVITE returns.
	Return ReturnConfig
	// HeadersMode admits API-less calls with their context in SIP headers.
	HeadersMode HeadersMode
	// Flood limits out-of-dialog requests per source.
	Flood FloodConfig
	// Limits and Overload are admission control: fixed limits on calls
	// and call rate, and shedding when the node falls behind.
	Limits   Limits
	Overload OverloadConfig
	// TLS serves tls:// listeners and places sips: (or transport=tls)
	// return calls; nil turns TLS off.
	TLS *tls.Config
	// SRTP is the media encryption policy (SDES, RFC 4568): SRTPOff,
	// SRTPOptional (the default) or SRTPRequired; see SRTPPolicy for what
	// each means for offers, answers and the INVITE return.
	SRTP SRTPPolicy
	// Codecs are the audio codecs we offer and answer with, in preference
	// order (media.DefaultCodecs when empty: G.722 first); see
	// media.Negotiate for how an answer picks. An offer sharing none gets
	// 488.
	Codecs []media.Codec
	// DisableComfortNoise stops offering and accepting RFC 3389 comfort
	// noise (media.ComfortNoise), which is on by default.
	DisableComfortNoise bool

	// dropInbound, when set, drops the raw inbound SIP messages it returns
	// true for (fault-injection tests: lost INVITEs, ACKs, BYEs).
	dropInbound func(data []byte) bool
	// clock, when set, is admission control's time (tests).
	clock func() time.Time

	Ports *media.PortPool
	// Pipeline opens each call's agent session, unless AgentLeg is set:
	// then each call is handed to that SIP agent (agent mode sip).
	Pipeline agent.Pipeline
	AgentLeg *AgentLegConfig
	Logger   *slog.Logger
}

// Defaults of the Config fields left zero.
const (
	DefaultTransferHeader = "X-Call-Transfer-Id"
	DefaultAckTimeout     = 32 * time.Second // 64*T1, RFC 3261 13.3.1.4
	DefaultMinSE          = 90 * time.Second // the least RFC 4028 allows
	DefaultSRTP           = SRTPOptional
)

func (c *Config) defaults() {
	if c.TransferHeader == "" {
		c.TransferHeader = DefaultTransferHeader
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.RingingAfter == 0 {
		c.RingingAfter = DefaultRingingAfter
	}
	if c.MinSE <= 0 {
		c.MinSE = DefaultMinSE
	}
	if c.SRTP == "" {
		c.SRTP = DefaultSRTP
	}
	if len(c.Codecs) == 0 {
		c.Codecs = media.DefaultCodecs
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 30 * time.Second
	}
	if c.DigestRealm == "" {
		c.DigestRealm = "handoff"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Return.defaults()
}

// Server is the SIP user agent: one UA, one server and one dialog user
// agent sharing the listening sockets, and the table of live calls.
type Server struct {
	cfg          Config
	svc          *transfer.Service
	log          *slog.Logger
	ua           *sipgo.UserAgent
	srv          *sipgo.Server
	dialogUA     *sipgo.DialogUA
	udpLaddr     sip.Addr        // the first UDP listener; zero without one
	door         *lateguard.Door // every request handler passes through it
	mediaMetrics *media.Metrics  // the process-wide RTP and DTMF counters
	metrics      *metrics
	auth         *authenticator
	limiter      *limiter // nil: no flood limit
	gate         *gate    // admission control
	shedTag      string   // the To tag of stateless refusals (early.go)

	host     string                       // advertised host
	port     int                          // advertised port of the first listener
	contacts map[string]sip.ContactHeader // our Contact per transport

	mu       sync.Mutex
	dialogs  map[string]dialogHandler // by dialog id
	active   int                      // inbound calls in progress
	stopped  bool                     // no more calls may be added
	wg       sync.WaitGroup           // one per call and per listener
	draining atomic.Bool
	closing  chan struct{} // closed when calls must end now
	closeOne sync.Once

	listeners []io.Closer
	addrs     []string
}

// New builds a server; Start opens its sockets.
func New(cfg Config, svc *transfer.Service, reg prometheus.Registerer) (*Server, error) {
	cfg.defaults()
	if cfg.Ports == nil || (cfg.Pipeline == nil && cfg.AgentLeg == nil) {
		return nil, errors.New("sip: Ports and a Pipeline or an AgentLeg are required")
	}
	if err := cfg.checkAgentLeg(); err != nil {
		return nil, err
	}
	if _, err := ParseSRTPPolicy(string(cfg.SRTP)); err != nil {
		return nil, fmt.Errorf("sip: SRTP policy %w", err)
	}
	if _, err := ParseContextEncoding(string(cfg.Return.ContextEncoding)); err != nil {
		return nil, fmt.Errorf("sip: return context encoding %w", err)
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("sip: no listen address")
	}
	s := &Server{
		cfg:          cfg,
		svc:          svc,
		log:          cfg.Logger,
		dialogs:      map[string]dialogHandler{},
		closing:      make(chan struct{}),
		metrics:      newMetrics(),
		mediaMetrics: media.NewMetrics(nil),
		gate:         newGate(cfg.Limits, cfg.Overload, cfg.clock, cfg.Logger),
		shedTag:      newShedTag(),
	}
	s.cfg.Pipeline = timedPipeline{Pipeline: cfg.Pipeline, g: s.gate}
	if reg != nil {
		if err := s.metrics.register(reg); err != nil {
			return nil, err
		}
		if err := s.gate.metrics.register(reg); err != nil {
			return nil, err
		}
		s.mediaMetrics = media.NewMetrics(reg)
	}
	s.auth = newAuthenticator(cfg.TrustedCIDRs, cfg.DigestRealm, cfg.DigestUsers)
	s.limiter = newLimiter(cfg.Flood)
	return s, nil
}

// Start opens the listening sockets and starts serving. The advertised
// port is the first listener's actual port (useful with port 0 in tests).
// Sockets are bound first and served last, so no request meets a
// half-built server.
func (s *Server) Start() error {
	ua, err := s.newUA()
	if err != nil {
		return err
	}
	s.ua = ua
	s.door = lateguard.New(ua)
	fail := func(err error) error {
		s.closeListeners()
		ua.Close()
		return err
	}
	if s.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(s.log)); err != nil {
		return fail(err)
	}
	var serve []func()
	for _, l := range s.cfg.Listen {
		fn, err := s.bind(l)
		if err != nil {
			return fail(err)
		}
		serve = append(serve, fn)
	}
	s.host, s.port = s.advertised()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(s.host), sipgo.WithClientPort(s.port), sipgo.WithClientNAT())
	if err != nil {
		return fail(err)
	}
	s.contacts = s.contactsByTransport()
	s.dialogUA = &sipgo.DialogUA{Client: client, ContactHDR: s.contacts["udp"]}
	s.udpLaddr = s.udpListenAddr()
	s.route()
	for _, fn := range serve {
		s.wg.Go(fn)
	}
	return nil
}

// newUA is the user agent our server and client share. sipgo logs the raw
// bytes of messages it cannot parse: keep client data (personal data,
// floods) out of our logs, and close idle TCP/TLS connections so a silent
// peer cannot hold sockets forever. (The read filter must come first: the
// transports copy it when they are set.)
func (s *Server) newUA() (*sipgo.UserAgent, error) {
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent("Handoff")}
	if s.cfg.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(s.cfg.TLS))
	}
	var tpOpts []sip.TransportLayerOption
	if drop := s.cfg.dropInbound; drop != nil {
		tpOpts = append(tpOpts, sip.WithTransportLayerReadFilter(
			func(_ sip.TransportReadProps, data []byte) ([]byte, error) {
				if drop(data) {
					return nil, nil
				}
				return data, nil
			}))
	}
	tpOpts = append(tpOpts,
		sip.WithTransportLayerLogger(slog.New(withoutRawData{s.log.Handler()})),
		sip.WithTransportLayerTransports(sip.TransportsConfig{
			TCP: &sip.TransportTCP{ReadTimeout: tcpIdleTimeout},
			TLS: &sip.TransportTLS{TransportTCP: &sip.TransportTCP{ReadTimeout: tcpIdleTimeout}},
		}))
	uaOpts = append(uaOpts, sipgo.WithUserAgentTransportLayerOptions(tpOpts...))
	return sipgo.NewUA(uaOpts...)
}

// route registers every request handler, each behind the door that drops
// requests reaching a closed user agent.
func (s *Server) route() {
	s.srv.OnInvite(s.door.Wrap(s.guard(s.admitted(s.onInvite))))
	s.srv.OnAck(s.door.Wrap(s.inDialog(dialogHandler.onAck)))
	s.srv.OnBye(s.door.Wrap(s.inDialog(dialogHandler.onBye)))
	s.srv.OnCancel(s.door.Wrap(s.onCancel))
	s.srv.OnOptions(s.door.Wrap(s.guard(s.onOptions)))
	s.srv.OnInfo(s.door.Wrap(s.inDialog(dialogHandler.onInfo)))
	s.srv.OnUpdate(s.door.Wrap(s.inDialog(dialogHandler.onOffer)))
	s.srv.OnNotify(s.door.Wrap(s.inDialog(dialogHandler.onOther)))
	s.srv.OnRefer(s.door.Wrap(s.inDialog(dialogHandler.onOther)))
	s.srv.OnNoRoute(s.door.Wrap(s.guard(s.onNoRoute)))
}

// bind opens one listen address and returns the function that serves it.
func (s *Server) bind(spec string) (func(), error) {
	network, addr, ok := strings.Cut(spec, "://")
	if !ok {
		network, addr = "udp", spec
	}
	switch network {
	case "udp":
		conn, err := listenSIPUDP(addr)
		if err != nil {
			return nil, fmt.Errorf("sip listen %s: %w", spec, err)
		}
		s.listeners = append(s.listeners, conn)
		s.addrs = append(s.addrs, "udp://"+conn.LocalAddr().String())
		served := newEarlyConn(conn, s)
		return func() { _ = s.srv.ServeUDP(served) }, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sip listen %s: %w", spec, err)
		}
		s.listeners = append(s.listeners, l)
		s.addrs = append(s.addrs, "tcp://"+l.Addr().String())
		return func() { _ = s.srv.ServeTCP(l) }, nil
	case "tls":
		if s.cfg.TLS == nil {
			return nil, fmt.Errorf("sip listen %s: no TLS certificate configured", spec)
		}
		l, err := tls.Listen("tcp", addr, s.cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("sip listen %s: %w", spec, err)
		}
		s.listeners = append(s.listeners, l)
		s.addrs = append(s.addrs, "tls://"+l.Addr().String())
		return func() { _ = s.srv.ServeTLS(l) }, nil
	default:
		return nil, fmt.Errorf("sip listen %s: unsupported transport %q", spec, network)
	}
}

// Addrs lists the bound listen addresses as transport://host:port.
func (s *Server) Addrs() []string { return append([]string(nil), s.addrs...) }

func (s *Server) advertised() (string, int) {
	_, first, _ := strings.Cut(s.addrs[0], "://")
	host, portStr, _ := net.SplitHostPort(first)
	port, _ := strconv.Atoi(portStr)
	if s.cfg.ExternalHost != "" {
		if h, p, err := net.SplitHostPort(s.cfg.ExternalHost); err == nil {
			host = h
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		} else {
			host = s.cfg.ExternalHost
		}
	}
	if !s.cfg.MediaAddr.IsValid() {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			s.cfg.MediaAddr = a
		} else {
			s.cfg.MediaAddr = netip.MustParseAddr("127.0.0.1")
		}
	}
	return host, port
}

// udpListenAddr is the local address of the first UDP listener.
func (s *Server) udpListenAddr() sip.Addr {
	for _, a := range s.addrs {
		if hp, ok := strings.CutPrefix(a, "udp://"); ok {
			host, port, _ := sip.ParseAddr(hp)
			return sip.Addr{IP: net.ParseIP(host), Port: port, Hostname: host}
		}
	}
	return sip.Addr{}
}

// fromListener makes a request we send over UDP leave from the first UDP
// listening socket, the port Via and Contact advertise: carriers and SBCs
// may accept only that port, and for a peer it has not heard from sipgo
// would open an ephemeral socket instead. sipgo's dialogs never copy a
// client's connection address onto their in-dialog requests, so it is set
// on each request (the ACK and CANCEL of our INVITE inherit it).
func (s *Server) fromListener(req *sip.Request) {
	if s.udpLaddr.Port != 0 && strings.EqualFold(req.Transport(), "udp") {
		s.udpLaddr.Copy(&req.Laddr)
	}
}

// contactsByTransport builds our Contact for each listening transport, so
// in-dialog requests come back on the transport and port the call used.
func (s *Server) contactsByTransport() map[string]sip.ContactHeader {
	out := map[string]sip.ContactHeader{}
	for _, a := range s.addrs {
		network, hp, _ := strings.Cut(a, "://")
		if _, done := out[network]; done {
			continue
		}
		port := s.port
		if s.cfg.ExternalHost == "" || !strings.Contains(s.cfg.ExternalHost, ":") {
			_, p, _ := net.SplitHostPort(hp)
			port, _ = strconv.Atoi(p)
		}
		uri := sip.Uri{Scheme: "sip", User: "handoff", Host: s.host, Port: port}
		if network != "udp" {
			uri.UriParams = sip.HeaderParams{{K: "transport", V: network}}
		}
		out[network] = sip.ContactHeader{Address: uri}
	}
	if _, ok := out["udp"]; !ok {
		for _, c := range out {
			out["udp"] = c
			break
		}
	}
	return out
}

// contactFor is our Contact for a request that arrived over transport.
func (s *Server) contactFor(transport string) *sip.ContactHeader {
	c, ok := s.contacts[strings.ToLower(transport)]
	if !ok {
		c = s.contacts["udp"]
	}
	return &c
}

// TransferURI is where an IVR sends the call of SIP transfer id.
func (s *Server) TransferURI(id string) string {
	return TransferURI(s.host, s.port, id)
}

// TransferURI builds the SIP URI that identifies transfer id at host:port.
func TransferURI(host string, port int, id string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("sip:%s@%s:%d", url.PathEscape(id), host, port)
}

// SetDraining makes new INVITEs and OPTIONS answer 503; calls carry on.
func (s *Server) SetDraining(on bool) { s.draining.Store(on) }

// ActiveCalls counts the calls in progress.
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Shutdown drains: new calls are refused, calls in progress may run until
// ctx ends, then they get BYE with reason shutdown. It returns when every
// call and socket is released.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining(true)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.ActiveCalls() > 0 {
		select {
		case <-ctx.Done():
			s.closeOne.Do(func() { close(s.closing) })
			// Give the calls a bounded moment to send their BYEs.
			s.waitCalls(5 * time.Second)
			return s.close()
		case <-tick.C:
		}
	}
	s.closeOne.Do(func() { close(s.closing) })
	return s.close()
}

func (s *Server) waitCalls(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for s.ActiveCalls() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) close() error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	// Requests sipgo read before the listeners closed are dropped, and the
	// sockets it opens to answer them closed (internal/lateguard).
	s.door.Close()
	s.closeListeners()
	var err error
	if s.ua != nil {
		err = s.ua.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

// dialogHandler serves the in-dialog requests of one dialog: an inbound
// call, or the outbound leg of an INVITE return.
type dialogHandler interface {
	onAck(req *sip.Request, tx sip.ServerTransaction)
	onBye(req *sip.Request, tx sip.ServerTransaction)
	onOffer(req *sip.Request, tx sip.ServerTransaction) // re-INVITE, UPDATE
	onInfo(req *sip.Request, tx sip.ServerTransaction)
	onOther(req *sip.Request, tx sip.ServerTransaction) // NOTIFY, REFER
}

// addCall registers a call so in-dialog requests find it; it fails once
// the server is closing. Each added call holds s.wg until it is removed.
func (s *Server) addCall(c *Call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	s.dialogs[c.dialogID] = c
	s.active++
	s.metrics.active.Inc()
	return true
}

func (s *Server) removeCall(c *Call) {
	s.mu.Lock()
	delete(s.dialogs, c.dialogID)
	s.active--
	s.mu.Unlock()
	s.metrics.active.Dec()
	s.wg.Done()
}

// addDialog routes the requests of another dialog (a return leg) to h.
func (s *Server) addDialog(id string, h dialogHandler) {
	s.mu.Lock()
	s.dialogs[id] = h
	s.mu.Unlock()
}

func (s *Server) removeDialog(id string) {
	s.mu.Lock()
	delete(s.dialogs, id)
	s.mu.Unlock()
}

// dialogFor finds the dialog an in-dialog request belongs to: one where we
// answered (UAS) or one we placed (UAC).
func (s *Server) dialogFor(req *sip.Request) dialogHandler {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if h, ok := s.dialogs[id]; ok {
			return h
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if h, ok := s.dialogs[id]; ok {
			return h
		}
	}
	return nil
}

func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "call_id", callID(req), "code", code, "err", err)
	}
}

func (s *Server) retryAfter() sip.Header {
	return retryAfter(s.cfg.RetryAfter)
}

// retryAfter is a Retry-After header of d in whole seconds.
func retryAfter(d time.Duration) sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(int(d/time.Second)))
}

// inOrder checks an in-dialog request's CSeq against dlg (RFC 3261
// §12.2.2) and answers one out of order with 500 and Retry-After.
func (s *Server) inOrder(dlg *sipgo.Dialog, req *sip.Request, tx sip.ServerTransaction) bool {
	if err := dlg.ReadRequest(req, tx); err != nil {
		s.respond(req, tx, sip.StatusInternalServerError, "CSeq Out Of Order", retryAfter(time.Second))
		return false
	}
	return true
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

var allowHeader = sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY")

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") && s.dialogFor(req) != nil {
		s.respond(req, tx, sip.StatusOK, "OK", allowHeader)
		return
	}
	if s.draining.Load() {
		s.respond(req, tx, sip.StatusServiceUnavailable, "Draining", s.retryAfter())
		return
	}
	if s.optionsBusy(req, tx) {
		return
	}
	s.respond(req, tx, sip.StatusOK, "OK", allowHeader,
		sip.NewHeader("Accept", "application/sdp"),
		sip.NewHeader("Supported", "timer"))
}

func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, sip.StatusMethodNotAllowed, "Method Not Allowed", allowHeader)
}

// onCancel sees only CANCELs that match no transaction (the transaction
// layer answers the others and sends 487 on the INVITE).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
}

// inDialog routes a request to its dialog's handler method, or answers 481.
func (s *Server) inDialog(serve func(h dialogHandler, req *sip.Request, tx sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		h := s.dialogFor(req)
		if h == nil {
			if !req.IsAck() {
				s.respond(req, tx, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
			}
			return
		}
		serve(h, req, tx)
	}
}
