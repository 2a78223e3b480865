package sip

import (
	"strings"
	"testing"

	"github.com/handoff/handoff/transfer"
)

// One value at a time, as the platforms document them.
func TestParseUUI(t *testing.T) {
	for _, tc := range []struct {
		name, header, value string
		want                transfer.UUI
		reason              string
	}{
		// AudioCodes' Mediant manual ("SIPREC with Avaya Equipment"): the
		// UCID Avaya Aura sends, 00 discriminator, FA 08 and 8 bytes.
		{"Avaya UCID", hdrUUI, "00FA080019001038F725B3;encoding=hex",
			transfer.UUI{Encoding: "hex", Purpose: "isdn-uui", PD: "00", UCID: "00025000160955721139"}, ""},
		// Genesys Cloud "UUI data formats": XX is the discriminator.
		{"Genesys with discriminator", hdrUUI, "04313233343536;encoding=hex;purpose=isdn-uui;content=isdn-uui",
			transfer.UUI{Encoding: "hex", Purpose: "isdn-uui", Content: "isdn-uui", PD: "04", Text: "123456"}, ""},
		{"Genesys pd parameter", hdrUUI, "313233343536;pd=4;encoding=hex;purpose=isdn-uui;content=isdn-uui",
			transfer.UUI{Encoding: "hex", Purpose: "isdn-uui", Content: "isdn-uui", PD: "04", Text: "123456"}, ""},
		{"AudioCodes alias, hex, no discriminator", hdrUUIAlias, "0431323334;encoding=hex",
			transfer.UUI{Encoding: "hex", Purpose: "isdn-uui"}, ""},
		{"AudioCodes alias, ascii", hdrUUIAlias, "account 42;encoding=ascii",
			transfer.UUI{Encoding: "ascii", Purpose: "isdn-uui", Text: "account 42"}, ""},
		{"plain hex text, encoding absent", hdrUUI, "6F72646572203432",
			transfer.UUI{Encoding: "hex", Purpose: "isdn-uui", Text: "order 42"}, ""},
		{"quoted ascii", hdrUUI, `"a;b";encoding=ascii;purpose=Goog-Conversation`,
			transfer.UUI{Encoding: "ascii", Purpose: "goog-conversation", Text: "a;b"}, ""},
		{"unknown encoding kept undecoded", hdrUUI, "Zm9v;encoding=base64",
			transfer.UUI{Encoding: "base64", Purpose: "isdn-uui"}, ""},
		{"odd hex", hdrUUI, "00FA0;encoding=hex", transfer.UUI{}, uuiMalformed},
		{"not hex", hdrUUI, "zz;encoding=hex", transfer.UUI{}, uuiMalformed},
		{"empty data", hdrUUI, ";encoding=hex", transfer.UUI{}, uuiMalformed},
		{"NUL", hdrUUI, "00\x00;encoding=ascii", transfer.UUI{}, uuiMalformed},
		{"oversized", hdrUUI, strings.Repeat("41", 513), transfer.UUI{}, uuiOversized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := parseUUI(tc.header, tc.value)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			if reason != "" {
				return
			}
			tc.want.Header, tc.want.Value = tc.header, tc.value
			if got != tc.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Several values: one per purpose (RFC 7433), the standard header before
// the alias, the alias only without it, and each value ignored is heard.
func TestReadUUI(t *testing.T) {
	type ignore struct{ reason, header string }
	read := func(headers ...string) ([]transfer.UUI, []ignore) {
		t.Helper()
		req, ok := fuzzRequest("INVITE", "sip:t@192.0.2.2", headers, "")
		if !ok {
			t.Fatalf("request with %q does not parse", headers)
		}
		var ignored []ignore
		kept := readUUI(req, func(reason, header string, _ int) { ignored = append(ignored, ignore{reason, header}) })
		return kept, ignored
	}
	kept, ignored := read(
		"x-User-to-User: 41;encoding=hex",
		"User-To-User: 00FA080019001038F725B3;encoding=hex, 04414243;purpose=isdn-uui",
		"User-to-User: 6162;encoding=hex;purpose=app",
		"User-to-User: zz")
	if len(kept) != 2 || kept[0].UCID == "" || kept[1].Purpose != "app" || kept[1].Text != "ab" {
		t.Fatalf("kept %+v", kept)
	}
	if len(ignored) != 2 || ignored[0] != (ignore{uuiDuplicate, hdrUUI}) || ignored[1] != (ignore{uuiMalformed, hdrUUI}) {
		t.Fatalf("ignored %+v", ignored)
	}
	kept, _ = read("x-User-to-User: account 42;encoding=ascii", "User-to-User: zz")
	if len(kept) != 1 || kept[0].Header != hdrUUIAlias || kept[0].Text != "account 42" {
		t.Fatalf("alias without a usable standard value: %+v", kept)
	}
	var many []string
	for i := range maxInboundEntries + 2 {
		many = append(many, "User-to-User: 41;purpose=p"+strings.Repeat("x", i))
	}
	kept, ignored = read(many...)
	if len(kept) != maxInboundEntries || len(ignored) != 2 || ignored[0].reason != uuiOversized {
		t.Fatalf("%d kept, ignored %+v", len(kept), ignored)
	}
}
