package sip

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// The User-to-User header (RFC 7433) and the alias AudioCodes gateways
// send (x-User-to-User, data only: no protocol discriminator).
const (
	hdrUUI      = "User-to-User"
	hdrUUIAlias = "x-User-to-User"
)

// maxUUIBytes bounds an inbound User-to-User value (data and parameters);
// a longer one is ignored. Salesforce documents 1,024 characters as the
// most a SIP header may carry; ISDN UUI itself holds at most 128 octets.
const maxUUIBytes = 1024

// Why an inbound User-to-User value was ignored: the values of the reason
// label of handoff_sip_uui_ignored_total (a fixed set, never input).
const (
	uuiMalformed = "malformed" // bad hex, empty data, control characters
	uuiOversized = "oversized" // over maxUUIBytes, or past maxInboundEntries values
	uuiDuplicate = "duplicate" // a second value for a purpose already read
)

// Defaults of RFC 7433 §4.1 when the parameters are absent.
const (
	uuiDefaultEncoding = "hex"
	uuiDefaultPurpose  = "isdn-uui"
)

// readUUI returns the User-to-User values of req that Handoff keeps: the
// standard header's, or only when it has none the alias's (Genesys reads
// User-to-User first and the alias only without it). Each header may list
// several values; one value per purpose is kept (RFC 7433 §4.1: one UUI
// per package), the first. ignored hears about every value left out.
func readUUI(req *sip.Request, ignored func(reason, header string, size int)) []transfer.UUI {
	if kept := uuiValues(req, hdrUUI, ignored); len(kept) > 0 {
		return kept
	}
	return uuiValues(req, hdrUUIAlias, ignored)
}

func uuiValues(req *sip.Request, name string, ignored func(reason, header string, size int)) []transfer.UUI {
	var kept []transfer.UUI
	for _, h := range req.GetHeaders(name) {
		for _, v := range splitOutside(h.Value(), ',') {
			u, reason := parseUUI(name, v)
			switch {
			case reason != "":
			case hasPurpose(kept, u.Purpose):
				reason = uuiDuplicate
			case len(kept) == maxInboundEntries:
				reason = uuiOversized
			}
			if reason != "" {
				ignored(reason, name, len(v))
				continue
			}
			kept = append(kept, u)
		}
	}
	return kept
}

func hasPurpose(kept []transfer.UUI, purpose string) bool {
	for _, u := range kept {
		if u.Purpose == purpose {
			return true
		}
	}
	return false
}

// parseUUI reads one User-to-User value of header, or says why not.
//
// Hex data of the standard header whose first octet is below 0x20 (never
// printable text: 0x00 user-specific, 0x04 IA5 characters, … of Q.931's
// protocol discriminators) is taken as the ISDN protocol discriminator and
// left out of the payload, unless a pd= parameter carries the
// discriminator instead (the gateways Genesys describes). A payload whose
// first octet is printable is all data, so plain hex text is never cut.
func parseUUI(header, v string) (u transfer.UUI, reason string) {
	if len(v) > maxUUIBytes {
		return u, uuiOversized
	}
	data, params := splitParams(v)
	data = unquote(data)
	if data == "" || hasControl(v) {
		return u, uuiMalformed
	}
	u = transfer.UUI{Header: header, Value: v, Encoding: uuiDefaultEncoding, Purpose: uuiDefaultPurpose}
	if e, ok := paramValue(params, "encoding"); ok && e != "" {
		u.Encoding = strings.ToLower(e)
	}
	if p, ok := paramValue(params, "purpose"); ok && p != "" {
		u.Purpose = strings.ToLower(p)
	}
	u.Content, _ = paramValue(params, "content")
	var payload []byte
	switch u.Encoding {
	case "hex":
		b, err := hex.DecodeString(data)
		if err != nil {
			return transfer.UUI{}, uuiMalformed
		}
		u.PD, payload = discriminator(header, b, params)
	case "ascii":
		payload = []byte(data)
	default: // an encoding we cannot read: kept as received
		return u, ""
	}
	if printable(payload) {
		u.Text = string(payload)
	}
	u.UCID = avayaUCID(payload)
	return u, ""
}

// discriminator is the ISDN protocol discriminator of hex data b, as two
// hex digits ("" for none), and the payload after it (see parseUUI).
func discriminator(header string, b []byte, params []param) (string, []byte) {
	if pd, ok := paramValue(params, "pd"); ok {
		if len(pd) == 1 {
			pd = "0" + pd
		}
		if d, err := hex.DecodeString(pd); err == nil && len(d) == 1 {
			return strings.ToUpper(hex.EncodeToString(d)), b
		}
		return "", b
	}
	if header == hdrUUI && len(b) > 0 && b[0] < 0x20 {
		return strings.ToUpper(hex.EncodeToString(b[:1])), b[1:]
	}
	return "", b
}

// avayaUCID finds Avaya's Universal Call ID in a UUI payload: the
// information element 0xFA of length 8 (User-to-User: 00FA08…;encoding=hex,
// after the discriminator 00), and writes it the way Avaya shows it: 20
// digits, the network node (5), the sequence number (5) and the seconds
// since 1970 (10). Elements are walked as id, length, data; "" when there
// is none.
func avayaUCID(p []byte) string {
	for i := 0; i+2 <= len(p); i += 2 + int(p[i+1]) {
		id, n := p[i], int(p[i+1])
		if i+2+n > len(p) {
			return ""
		}
		if id == 0xFA && n == 8 {
			d := p[i+2 : i+10]
			node := uint16(d[0])<<8 | uint16(d[1])
			seq := uint16(d[2])<<8 | uint16(d[3])
			ts := uint32(d[4])<<24 | uint32(d[5])<<16 | uint32(d[6])<<8 | uint32(d[7])
			return fmt.Sprintf("%05d%05d%010d", node, seq, ts)
		}
	}
	return ""
}
