package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/handoff/handoff/transfer"
)

// Field limits (docs/api.md and openapi.yaml state them too).
const (
	maxIDLen        = 128
	maxTextLen      = 256 // externalConversationId, taskName, variable names, digest username/password
	maxReturnURILen = 2048
)

func (a *API) create(w http.ResponseWriter, r *http.Request, c *credential) *apiError {
	if c.readOnly {
		return errorf(http.StatusForbidden, codeForbidden,
			"credential %s is read-only and may not create call transfers", c.id)
	}
	if a.draining.Load() {
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message:    "draining: this instance is shutting down and accepts no new transfers; retry on another instance",
			retryAfter: a.cfg.RetryAfter}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(http.StatusRequestEntityTooLarge, codeTooLarge,
				"request body exceeds the limit of %d bytes", tooLarge.Limit)
		}
		return errorf(http.StatusBadRequest, codeMalformed, "could not read the request body: %v", err)
	}
	req, e := parseCreate(body)
	if e != nil {
		return e
	}
	t, replayed, err := a.svc.Create(r.Context(), c.id, *req)
	switch {
	case err == nil:
	case errors.Is(err, transfer.ErrExists):
		return errorf(http.StatusConflict, codeConflict,
			"call transfer id %s already exists with a different request; use a new id for each transfer attempt", req.ID)
	case errors.Is(err, transfer.ErrUnknownCountry):
		return errorf(http.StatusUnprocessableEntity, codeCountry,
			"no transfer numbers are configured for country %s", req.Country)
	case errors.Is(err, transfer.ErrNoNumber):
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			message:    fmt.Sprintf("no free transfer number for country %s right now; retry later", req.Country),
			retryAfter: a.cfg.RetryAfter}
	default:
		return a.internal(r, "create transfer", err)
	}
	if replayed {
		w.Header().Set(headerReplayed, "true")
	}
	writeJSON(w, http.StatusOK, a.view(t, false))
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request, c *credential) *apiError {
	id := r.PathValue("callTransferId")
	notFound := errorf(http.StatusNotFound, codeNotFound, "call transfer %q not found", truncate(id))
	if !validID(id) {
		return notFound // cannot exist: creation only accepts valid ids
	}
	t, err := a.svc.Get(r.Context(), c.id, id)
	switch {
	case err == nil:
	case errors.Is(err, transfer.ErrNotFound):
		return notFound
	default:
		return a.internal(r, "get transfer", err)
	}
	writeJSON(w, http.StatusOK, a.view(t, true))
	return nil
}

// object is a JSON object whose members are decoded one by one, so the
// errors can name the exact field path and keys match case-sensitively.
type object map[string]json.RawMessage

func bad(code, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, format, args...)
}

// jsonKind names the JSON type of raw for error messages.
func jsonKind(raw json.RawMessage) string {
	switch b := strings.TrimLeft(string(raw), " \t\r\n"); {
	case b == "":
		return "nothing"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == '"':
		return "a string"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool {
	return strings.TrimSpace(string(raw)) == "null"
}

// str returns the string member key of o (nil when absent or null).
func (o object) str(key, path string) (*string, *apiError) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, bad(codeWrongType, "%s must be a string, got %s", path, jsonKind(raw))
	}
	return &s, nil
}

// obj returns the object member key of o (nil when absent or null).
func (o object) obj(key, path string) (object, *apiError) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var m object
	if jsonKind(raw) != "an object" || json.Unmarshal(raw, &m) != nil {
		return nil, bad(codeWrongType, "%s must be an object, got %s", path, jsonKind(raw))
	}
	if m == nil {
		m = object{}
	}
	return m, nil
}

// parseCreate decodes and validates a create body into the service request.
func parseCreate(body []byte) (*transfer.CreateRequest, *apiError) {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil, bad(codeMalformed, "request body is empty; send a JSON object")
		}
		return nil, bad(codeMalformed, "request body is not valid JSON: %v", err)
	}
	if k := jsonKind(body); k != "an object" {
		return nil, bad(codeMalformed, "request body must be a JSON object, got %s", k)
	}
	var top object
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, bad(codeMalformed, "request body must be a JSON object: %v", err)
	}

	req := &transfer.CreateRequest{}
	id, e := top.str("id", "id")
	if e != nil {
		return nil, e
	}
	if id == nil {
		return nil, bad(codeMissing, "id is required")
	}
	if !validID(*id) {
		return nil, bad(codeInvalid, "id must be 1-%d characters from A-Z a-z 0-9 . _ ~ -", maxIDLen)
	}
	req.ID = *id

	ext, e := top.str("externalConversationId", "externalConversationId")
	if e != nil {
		return nil, e
	}
	if ext == nil {
		return nil, bad(codeMissing, "externalConversationId is required")
	}
	if e := checkText(*ext, "externalConversationId", true); e != nil {
		return nil, e
	}
	req.ExternalConversationID = *ext

	typ, e := top.str("type", "type")
	if e != nil {
		return nil, e
	}
	if typ == nil {
		return nil, bad(codeMissing, "type is required")
	}
	switch transfer.Type(*typ) {
	case transfer.TypePhoneNumber:
		req.Type = transfer.TypePhoneNumber
		if req.Country, e = parsePhoneNumber(top); e != nil {
			return nil, e
		}
	case transfer.TypeSIP:
		req.Type = transfer.TypeSIP
		if req.SIP, e = parseSIP(top); e != nil {
			return nil, e
		}
	default:
		return nil, bad(codeInvalid, "type must be one of PHONE_NUMBER, SIP; got %q", truncate(*typ))
	}
	// phoneNumber on a SIP transfer and sip on a PHONE_NUMBER transfer are
	// ignored (not validated, not stored), like any unknown field.

	if req.InputContext, e = parseInputContext(top); e != nil {
		return nil, e
	}
	return req, nil
}

func parsePhoneNumber(top object) (string, *apiError) {
	pn, e := top.obj("phoneNumber", "phoneNumber")
	if e != nil {
		return "", e
	}
	if pn == nil {
		return "", bad(codeMissing, "phoneNumber is required when type is PHONE_NUMBER")
	}
	country, e := pn.str("country", "phoneNumber.country")
	if e != nil {
		return "", e
	}
	if country == nil {
		return "", bad(codeMissing, "phoneNumber.country is required when type is PHONE_NUMBER")
	}
	cc := *country
	if len(cc) != 2 || !isASCIILetter(cc[0]) || !isASCIILetter(cc[1]) {
		return "", bad(codeInvalid, "phoneNumber.country must be an ISO 3166 alpha-2 code such as US; got %q", truncate(cc))
	}
	return strings.ToUpper(cc), nil
}

func parseSIP(top object) (*transfer.SIPReturn, *apiError) {
	out := &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye}
	s, e := top.obj("sip", "sip")
	if e != nil || s == nil {
		return out, e
	}
	rt, e := s.str("returnTransferType", "sip.returnTransferType")
	if e != nil {
		return nil, e
	}
	if rt != nil {
		switch transfer.ReturnType(*rt) {
		case transfer.ReturnBye, transfer.ReturnRefer, transfer.ReturnInvite:
			out.ReturnTransferType = transfer.ReturnType(*rt)
		default:
			return nil, bad(codeInvalid, "sip.returnTransferType must be one of BYE, REFER, INVITE; got %q", truncate(*rt))
		}
	}
	uri, e := s.str("returnUri", "sip.returnUri")
	if e != nil {
		return nil, e
	}
	if uri == nil && out.ReturnTransferType != transfer.ReturnBye {
		return nil, bad(codeMissing, "sip.returnUri is required when sip.returnTransferType is %s", out.ReturnTransferType)
	}
	if uri != nil {
		if msg := checkSIPURI(*uri); msg != "" {
			return nil, errorf(http.StatusUnprocessableEntity, codeReturnURI, "sip.returnUri %s", msg)
		}
		out.ReturnURI = *uri
	}
	auth, e := s.obj("returnInviteAuthentication", "sip.returnInviteAuthentication")
	if e != nil {
		return nil, e
	}
	if auth != nil {
		const p = "sip.returnInviteAuthentication"
		user, e := auth.str("username", p+".username")
		if e != nil {
			return nil, e
		}
		pass, e := auth.str("password", p+".password")
		if e != nil {
			return nil, e
		}
		var c transfer.Credentials
		if user != nil {
			if e := checkText(*user, p+".username", false); e != nil {
				return nil, e
			}
			c.Username = *user
		}
		if pass != nil {
			// Never echo the password in a message.
			if strings.IndexFunc(*pass, unicode.IsControl) >= 0 || utf8.RuneCountInString(*pass) > maxTextLen {
				return nil, bad(codeInvalid, "%s.password must be at most %d characters without control characters", p, maxTextLen)
			}
			c.Password = *pass
		}
		if c.Password != "" && c.Username == "" {
			return nil, bad(codeMissing, "%s.username is required when a password is given", p)
		}
		if c.Username != "" {
			out.Auth = &c
		}
	}
	return out, nil
}

// checkSIPURI explains why s is not a usable sip:/sips: URI, or returns "".
func checkSIPURI(s string) string {
	if len(s) > maxReturnURILen {
		return fmt.Sprintf("must be at most %d bytes", maxReturnURILen)
	}
	if _, err := transfer.ParseSIPURI(s); err != nil {
		return err.Error()
	}
	return ""
}

func parseInputContext(top object) (*transfer.InputContext, *apiError) {
	ic, e := top.obj("inputContext", "inputContext")
	if e != nil || ic == nil {
		return nil, e
	}
	out := &transfer.InputContext{}
	task, e := ic.str("taskName", "inputContext.taskName")
	if e != nil {
		return nil, e
	}
	if task != nil {
		if e := checkText(*task, "inputContext.taskName", false); e != nil {
			return nil, e
		}
		out.TaskName = *task
	}
	vars, e := ic.obj("inputVariables", "inputContext.inputVariables")
	if e != nil {
		return nil, e
	}
	if len(vars) > 0 {
		out.InputVariables = make(map[string]string, len(vars))
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			path := fmt.Sprintf("inputContext.inputVariables[%q]", truncate(k))
			if k == "" || utf8.RuneCountInString(k) > maxTextLen || strings.IndexFunc(k, unicode.IsControl) >= 0 {
				return nil, bad(codeInvalid, "%s: variable names must be 1-%d characters without control characters", path, maxTextLen)
			}
			var v string
			if err := json.Unmarshal(vars[k], &v); err != nil {
				return nil, bad(codeWrongType, "%s must be a string, got %s", path, jsonKind(vars[k]))
			}
			out.InputVariables[k] = v
		}
	}
	if out.TaskName == "" && out.InputVariables == nil {
		return nil, nil
	}
	return out, nil
}

// validID reports whether id is 1-128 characters of [A-Za-z0-9._~-] (RFC
// 3986 unreserved characters, safe as a SIP URI user part and a URL path segment).
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isASCIILetter(c) && !('0' <= c && c <= '9') && c != '.' && c != '_' && c != '~' && c != '-' {
			return false
		}
	}
	return true
}

func checkText(s, path string, required bool) *apiError {
	if required && s == "" {
		return bad(codeInvalid, "%s must not be empty", path)
	}
	if utf8.RuneCountInString(s) > maxTextLen {
		return bad(codeInvalid, "%s must be at most %d characters", path, maxTextLen)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return bad(codeInvalid, "%s must not contain control characters", path)
	}
	return nil
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// truncate bounds a client value echoed in a message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
