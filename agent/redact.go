package agent

import (
	"net/url"
	"strings"
)

// redactedValue stands in for a query value RedactURL hides.
const redactedValue = "REDACTED"

// RedactURL is a URL as logs and error messages may show it (agent.url,
// store.redis_url): the user info (a password, or a token used as a user
// name) and the fragment are removed, and every query value is replaced by
// REDACTED. Query keys stay, so a reader still sees which parameters were
// set (?region=eu&token=REDACTED), but a bare item, which may be a token
// itself (?s3cret), is redacted whole. An unparseable URL shows as
// "(invalid URL)", since its text may hold a secret (so does one without
// a scheme, which url.Parse reads as a path); "" stays "".
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(invalid URL)"
	}
	if u.Opaque != "" { // "ws:user:token@host": no "//", so no user info either
		u.Opaque = redactedValue
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.ForceQuery = false
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	return u.String()
}

func redactQuery(q string) string {
	items := strings.Split(q, "&")
	for i, item := range items {
		key, _, hasValue := strings.Cut(item, "=")
		switch {
		case hasValue:
			items[i] = key + "=" + redactedValue
		case item != "":
			items[i] = redactedValue
		}
	}
	return strings.Join(items, "&")
}
