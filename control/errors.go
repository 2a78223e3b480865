package control

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Error codes. The first three digits are the HTTP status; the suffix tells
// cases with the same status apart. docs/api.md lists when each is returned.
const (
	codeMalformed      = "400-01" // body is not a JSON object
	codeMissing        = "400-02" // a required field is absent or null
	codeWrongType      = "400-03" // a field has the wrong JSON type
	codeInvalid        = "400-04" // a field has a value outside its allowed set, length or charset
	codeUnauthorized   = "401-01"
	codeForbidden      = "403-01"
	codeNotFound       = "404-01"
	codeMethod         = "405-01"
	codeConflict       = "409-01"
	codeTooLarge       = "413-01"
	codeCountry        = "422-01" // well-formed country we have no numbers for
	codeReturnURI      = "422-02" // sip.returnUri is not a usable SIP/SIPS URI
	codeConfig         = "422-03" // a reload found the configuration invalid
	codeRateLimited    = "429-01"
	codeInternal       = "500-01"
	codeUnavailable    = "503-01" // no free number, draining, or store unreachable
	headerRequestID    = "X-Request-Id"
	headerRetryAfter   = "Retry-After"
	headerReplayed     = "Idempotent-Replayed"
	maxRequestIDLength = 128
)

// apiError is a failure the handlers turn into the error envelope.
type apiError struct {
	status  int
	code    string
	message string
	// retryAfter, when positive, is sent as a Retry-After header.
	retryAfter time.Duration
	// allow, when set, is sent as an Allow header (405).
	allow string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	RequestID string `json:"requestId"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// writeError writes the reference envelope
// {"error":{"requestId","code","message"}}; the request id is the one the
// request-id middleware put in the X-Request-Id header.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	if e.retryAfter > 0 {
		h.Set(headerRetryAfter, retryAfterSeconds(e.retryAfter))
	}
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	writeJSON(w, e.status, errorBody{Error: errorDetail{
		RequestID: requestID(r.Context()),
		Code:      e.code,
		Message:   e.message,
	}})
}

// retryAfterSeconds renders d as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Our own response types always marshal; this is a programming error.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"requestId":"","code":"500-01","message":"internal error encoding the response"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
