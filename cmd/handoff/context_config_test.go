package main

import (
	"testing"

	"github.com/handoff/handoff/sip"
)

// The keys of issue 12: context_encoding uui, the UUI pass-through and the
// headers-mode names, from the file and the environment, and their errors.
func TestContextKeys(t *testing.T) {
	cfg, err := Load("", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.SIP.Return.UUIPassthrough || cfg.SIP.HeadersMode.Names != sip.NamesAuto {
		t.Fatalf("defaults: uui_passthrough %v, names %q", cfg.SIP.Return.UUIPassthrough, cfg.SIP.HeadersMode.Names)
	}
	path := writeFile(t, "c.yaml", "sip:\n  return:\n    context_encoding: uui\n    uui_passthrough: false\n  headers_mode:\n    names: ga\n")
	if cfg, err = Load(path, envMap(nil)); err != nil {
		t.Fatal(err)
	}
	if cfg.SIP.Return.ContextEncoding != sip.ContextUUI || cfg.SIP.Return.UUIPassthrough || cfg.SIP.HeadersMode.Names != sip.NamesGA {
		t.Fatalf("from the file: %+v %+v", cfg.SIP.Return, cfg.SIP.HeadersMode)
	}
	cfg, err = Load(path, envMap(map[string]string{"HANDOFF_SIP_RETURN_UUI_PASSTHROUGH": "true", "HANDOFF_SIP_HEADERS_MODE_NAMES": "handoff"}))
	if err != nil || !cfg.SIP.Return.UUIPassthrough || cfg.SIP.HeadersMode.Names != sip.NamesHandoff {
		t.Fatalf("from the environment: %+v %+v (%v)", cfg.SIP.Return, cfg.SIP.HeadersMode, err)
	}
	for yaml, want := range map[string]string{
		"sip:\n  return:\n    context_encoding: isdn\n": "headers, params or uui",
		"sip:\n  headers_mode:\n    names: x-ga\n":      "sip.headers_mode.names",
	} {
		wantLoadError(t, yaml, want)
	}
}
