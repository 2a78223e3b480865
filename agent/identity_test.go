package agent

import "testing"

// The SIP side's identity parameters reach customParameters under their
// keys, empty ones left out; X- headers keep their names beside them.
func TestIdentityInCustomParameters(t *testing.T) {
	info := CallInfo{TransferID: "t1",
		Identity: map[string]string{"avaya_ucid": "00025000160955721139", "Cisco-GUID": "1-2-3-4", "diversion": ""},
		Headers:  map[string]string{"X-Genesys-CallUUID": "4BOK"}}
	p := customParameters(info)
	for k, want := range map[string]string{"avaya_ucid": "00025000160955721139", "Cisco-GUID": "1-2-3-4", "X-Genesys-CallUUID": "4BOK"} {
		if p[k] != want {
			t.Errorf("customParameters[%s] = %q, want %q", k, p[k], want)
		}
	}
	if _, ok := p["diversion"]; ok {
		t.Error("an empty identity value was sent")
	}
}
