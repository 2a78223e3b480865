package transfer

// AgentLeg is the SIP agent leg a call was handed to (agent mode sip): the
// agent's URI as dialled, the leg's own SIP Call-ID, and how it ended.
type AgentLeg struct {
	URI    string `json:"uri"`
	CallID string `json:"callId"`
	// Ending is one of the sip package's agent-leg endings: bye_outcome,
	// bye, refer, info, max_duration, agent_media_timeout,
	// agent_session_expired (the agent finished), or the call's end
	// reason when the call ended first.
	Ending string `json:"ending"`
}
