package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/handoff/handoff/control"
	"github.com/handoff/handoff/transfer"
)

// loadDoc parses and validates the embedded OpenAPI document, with its
// servers pointed at baseURL so the router matches the test server.
func loadDoc(t testing.TB, baseURL string) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(control.OpenAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml does not validate: %v", err)
	}
	if baseURL != "" {
		doc.Servers = openapi3.Servers{{URL: baseURL}}
	}
	return doc
}

// contractTransport checks every response the tests receive against the
// OpenAPI document, and the invariants the document states in prose (request
// id header equal to error.requestId, Retry-After on 429/503, code matching
// the status). Any mismatch fails the test that made the request.
type contractTransport struct {
	t      testing.TB
	base   http.RoundTripper
	doc    *openapi3.T
	router routers.Router
}

func newContractTransport(t testing.TB, base http.RoundTripper, baseURL string) *contractTransport {
	doc := loadDoc(t, baseURL)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &contractTransport{t: t, base: base, doc: doc, router: router}
}

func (c *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.check(req, resp, body); err != nil {
		c.t.Errorf("contract: %s %s -> %d: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

func (c *contractTransport) check(req *http.Request, resp *http.Response, body []byte) error {
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" {
		return errors.New("no X-Request-Id header")
	}
	if req.Method == http.MethodHead {
		return nil // no body to check
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error struct {
				RequestID string `json:"requestId"`
				Code      string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return err
		}
		if env.Error.RequestID != rid {
			return errors.New("error.requestId " + env.Error.RequestID + " != X-Request-Id " + rid)
		}
		if !strings.HasPrefix(env.Error.Code, strconv.Itoa(resp.StatusCode)+"-") {
			return errors.New("error.code " + env.Error.Code + " does not match the status")
		}
		if resp.StatusCode == 429 || resp.StatusCode == 503 {
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				return errors.New("missing or bad Retry-After: " + resp.Header.Get("Retry-After"))
			}
		}
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Paths and methods outside the document: only our 404/405 envelope.
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			return errors.New("undocumented route answered " + resp.Status)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		return c.doc.Components.Schemas["ErrorResponse"].Value.VisitJSON(v)
	}
	op := route.Operation
	if op.Responses.Status(resp.StatusCode) == nil && resp.StatusCode != 500 {
		return errors.New("status " + strconv.Itoa(resp.StatusCode) + " is not documented for " + op.OperationID)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
		},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(req.Context(), in)
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := loadDoc(t, "")
	for _, p := range []string{"/generativeagent/v1/call-transfers", "/generativeagent/v1/call-transfers/{callTransferId}"} {
		if doc.Paths.Value(p) == nil {
			t.Errorf("path %s missing", p)
		}
	}
	if doc.Components.SecuritySchemes["API-ID"].Value.Name != "asapp-api-id" ||
		doc.Components.SecuritySchemes["API-Secret"].Value.Name != "asapp-api-secret" {
		t.Error("security schemes do not name the reference headers")
	}
}

// The document's endReason enum is the transfer package's list, in order.
func TestOpenAPIEndReasonsAreTheTransferList(t *testing.T) {
	doc := loadDoc(t, "")
	prop := doc.Components.Schemas["GetCallTransferResponse"].Value.Properties["endReason"]
	if prop == nil {
		t.Fatal("GetCallTransferResponse has no endReason")
	}
	var got []string
	for _, v := range prop.Value.Enum {
		got = append(got, v.(string))
	}
	var want []string
	for _, r := range transfer.EndReasons() {
		want = append(want, string(r))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("openapi.yaml endReason enum %v, transfer.EndReasons %v", got, want)
	}
}
