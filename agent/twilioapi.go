package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/handoff/handoff/transfer"
)

// TwilioAPIPath is where the hang-up endpoint lives: mount the TwilioAPI
// on the HTTP API's mux with mux.Handle(agent.TwilioAPIPath, api). A
// Twilio-compatible client pointed at Handoff (Pipecat's base_url) then
// reaches POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json.
const TwilioAPIPath = "/2010-04-01/Accounts/"

// maxTwilioForm bounds the form body of a hang-up request.
const maxTwilioForm = 64 << 10

// TwilioAPIOptions configure the hang-up endpoint.
type TwilioAPIOptions struct {
	// AccountSID and AuthToken are the HTTP basic credentials a client
	// must present, as to Twilio (both required). The token is never
	// logged.
	AccountSID string
	AuthToken  string
	// TransferType is the outputContext.transferType of a call ended this
	// way (SYSTEM: the IVR takes the call back).
	TransferType string
	// Logger logs refused requests (the default logger if nil); hang-ups
	// are logged by the session, with its transfer_id and call_id.
	Logger *slog.Logger
}

// TwilioAPI serves the one request of Twilio's REST API that agents built
// for Twilio Media Streams send when they are done: Pipecat's Twilio
// serializer hangs up with POST .../Calls/{CallSid}.json and Status=completed.
// Handoff takes it as the agent finishing without variables: the session
// with that callSid (the start event's) finishes with TransferType, and the
// call is returned as for handoff.complete. The answers are Twilio's: 401
// for wrong credentials, 404 (code 20404) for a call it does not know, 400
// for a Status other than completed or canceled, 200 with the call
// resource otherwise.
type TwilioAPI struct {
	opts TwilioAPIOptions
	// user and token are the credentials' SHA-256, compared in constant
	// time whatever the presented lengths.
	user, token [sha256.Size]byte

	mu    sync.Mutex
	calls map[string]*wsSession // by callSid, while the session is open
}

// NewTwilioAPI returns the hang-up endpoint. Set it as WebSocket.TwilioAPI
// so that sessions are listed there, and mount it at TwilioAPIPath.
func NewTwilioAPI(opts TwilioAPIOptions) (*TwilioAPI, error) {
	if opts.AccountSID == "" || opts.AuthToken == "" {
		return nil, errors.New("agent: the Twilio API needs an account SID and an auth token")
	}
	if opts.TransferType == "" {
		opts.TransferType = TransferSystem
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &TwilioAPI{
		opts:  opts,
		user:  sha256.Sum256([]byte(opts.AccountSID)),
		token: sha256.Sum256([]byte(opts.AuthToken)),
		calls: map[string]*wsSession{},
	}, nil
}

// add lists s under its callSid, or under a fresh one when another open
// session has it already (a Call-ID reused by a broken peer), so that a
// hang-up never ends the wrong call.
func (a *TwilioAPI) add(s *wsSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.calls[s.callSid] != nil {
		s.callSid = newCallSid()
	}
	a.calls[s.callSid] = s
}

func (a *TwilioAPI) remove(sid string, s *wsSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls[sid] == s {
		delete(a.calls, sid)
	}
}

func (a *TwilioAPI) lookup(sid string) *wsSession {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[sid]
}

// ServeHTTP answers in Twilio's order: authentication first, then the
// resource, then the method and the parameters.
func (a *TwilioAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		a.opts.Logger.Warn("twilio api: authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	sid, ok := a.callSid(r.URL)
	s := a.lookup(sid)
	if !ok || s == nil {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTwilioForm)
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Could not read the form body")
		return
	}
	switch r.PostForm.Get("Status") {
	case "completed":
		s.hangUp(a.opts.TransferType)
	case "canceled":
		// As on Twilio: canceled ends only calls not yet answered, and a
		// call with an agent session has been.
	default:
		twilioError(w, http.StatusBadRequest, 20001, "Status must be completed or canceled")
		return
	}
	a.writeCall(w, sid, s)
}

// authorized checks the basic credentials in constant time.
func (a *TwilioAPI) authorized(r *http.Request) bool {
	user, token, ok := r.BasicAuth()
	u, t := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(token))
	good := subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(t[:], a.token[:])
	return ok && good == 1
}

// callSid reads {CallSid} from /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json;
// the account must be the configured one.
func (a *TwilioAPI) callSid(u *url.URL) (string, bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), TwilioAPIPath)
	if !ok {
		return "", false
	}
	account, call, ok := strings.Cut(rest, "/Calls/")
	if !ok {
		return "", false
	}
	call, ok = strings.CutSuffix(call, ".json")
	if !ok || strings.Contains(call, "/") {
		return "", false
	}
	account, err1 := url.PathUnescape(account)
	call, err2 := url.PathUnescape(call)
	if err1 != nil || err2 != nil || account != a.opts.AccountSID {
		return "", false
	}
	return call, true
}

// hangUp finishes the conversation as a handoff.complete without
// variables would; a conversation already finishing keeps its outcome.
func (s *wsSession) hangUp(transferType string) {
	if s.complete(transfer.OutputContext{TransferType: transferType}, "twilio api hang-up") {
		s.log.Info("agent hung up through the Twilio API", "transfer_type", transferType)
	}
}

// twilioCall is the part of Twilio's Call resource a client reads back.
type twilioCall struct {
	Sid         string `json:"sid"`
	AccountSid  string `json:"account_sid"`
	Status      string `json:"status"`
	Direction   string `json:"direction"`
	From        string `json:"from"`
	To          string `json:"to"`
	APIVersion  string `json:"api_version"`
	DateUpdated string `json:"date_updated"`
	URI         string `json:"uri"`
}

func (a *TwilioAPI) writeCall(w http.ResponseWriter, sid string, s *wsSession) {
	status := "in-progress"
	if st := s.state(); st != stateTalking {
		status = "completed" // finishing, finished or closing: the agent is done
	}
	writeTwilioJSON(w, http.StatusOK, twilioCall{
		Sid:         sid,
		AccountSid:  a.opts.AccountSID,
		Status:      status,
		Direction:   "inbound",
		From:        PhoneNumber(s.info.From),
		To:          PhoneNumber(s.info.To),
		APIVersion:  "2010-04-01",
		DateUpdated: time.Now().UTC().Format(time.RFC1123Z),
		URI:         TwilioAPIPath + url.PathEscape(a.opts.AccountSID) + "/Calls/" + url.PathEscape(sid) + ".json",
	})
}

// twilioError writes Twilio's error body.
func twilioError(w http.ResponseWriter, status, code int, message string) {
	writeTwilioJSON(w, status, map[string]any{
		"code":      code,
		"message":   message,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		"status":    status,
	})
}

func writeTwilioJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
