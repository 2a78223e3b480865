package sip

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// An offer with more m= lines than media.MaxSDPMedia is refused with 488
// and a Warning that says why; the transfer stays ACTIVE.
func TestAbsurdSDPIsRefusedWith488(t *testing.T) {
	g := newGateway(t)
	p := newPhone(t)
	g.createSIP("many-m")
	body := p.Offer("0") // one audio stream, then padding streams
	extra := strings.Repeat(fmt.Sprintf("m=audio %d RTP/AVP 0\r\n", p.RTPPort()), media.MaxSDPMedia)
	_, err := p.Invite("sip:many-m@"+g.addr, append(body, extra...), sipgo.AnswerOptions{})
	var e *sipgo.ErrDialogResponse
	if !errors.As(err, &e) || e.Res.StatusCode != sip.StatusNotAcceptableHere {
		t.Fatalf("INVITE with %d m= lines: %v", media.MaxSDPMedia+1, err)
	}
	w := e.Res.GetHeader("Warning")
	if w == nil || !strings.Contains(w.Value(), "m= lines") {
		t.Fatalf("Warning %v", w)
	}
	if st := g.Get("many-m").StatusAt(g.svc.Now()); st != transfer.StatusActive {
		t.Fatalf("transfer %s after the refusal", st)
	}
}

// Headers mode keeps at most maxHeaderVars variables of at most
// maxHeaderValueLen bytes, however many and long the INVITE carries.
func TestHeadersModeBounds(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.HeadersMode = HeadersMode{Enabled: true, User: "agent", Owner: "ivr"} })
	p := newPhone(t)
	hdrs := []sip.Header{sip.NewHeader(hdrTransferID, "bounds-1"), sip.NewHeader(hdrTask, strings.Repeat("t", 3000))}
	for i := range maxHeaderVars + 20 {
		hdrs = append(hdrs, sip.NewHeader(fmt.Sprintf("%sv%03d", hdrVarPrefix, i), strings.Repeat("%41", 100)))
	}
	c := p.MustAnswer("sip:agent@"+g.tcp+";transport=tcp", p.Offer("0"), hdrs...) // too large for UDP
	tr := g.Get("bounds-1")
	c.Hangup()
	in := tr.InputContext
	if in == nil || len(in.InputVariables) != maxHeaderVars || len(in.TaskName) != maxHeaderValueLen {
		t.Fatalf("input context: %d variables, task of %d bytes", len(in.InputVariables), len(in.TaskName))
	}
	for k, v := range in.InputVariables {
		if v != strings.Repeat("A", 100) {
			t.Fatalf("variable %s = %d bytes", k, len(v))
		}
	}
}
