package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks symmetric secret.
const SecretPrefix = "whsec_"

// Bounds on the decoded key, from the Standard Webhooks specification
// (24 bytes at least, 512 bits at most).
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// Secret is an endpoint's signing key. It prints as "whsec_[redacted]"
// through fmt and slog, so it cannot leak into a log line or an error.
type Secret struct{ key []byte }

// ParseSecret reads a secret written "whsec_" + standard base64 of 24 to
// 64 random bytes. Its errors never quote the secret.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return Secret{}, fmt.Errorf("the part of the secret after %q is not standard base64", SecretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return Secret{}, fmt.Errorf("secret decodes to %d bytes, want %d to %d random bytes", len(key), minSecretBytes, maxSecretBytes)
	}
	return Secret{key: key}, nil
}

// IsZero reports whether the secret was never parsed.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

const redacted = SecretPrefix + "[redacted]"

// String, GoString and LogValue redact the key.
func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Sign returns the webhook-signature header value for one attempt:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix seconds + "." + body)).
func (s Secret) Sign(id string, at time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, at.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
