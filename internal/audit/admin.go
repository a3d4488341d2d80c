package audit

import (
	"time"
)

// Admin is what an admin record says about one admin API write: who made
// it (the admin credential's id and a short id of the token, never the
// token), the action, the objects it changed with digests of their
// documents before and after, and the result. It never holds a secret
// value or a request body.
type Admin struct {
	Identity string `json:"identity"`
	TokenID  string `json:"tokenId,omitempty"`
	Role     string `json:"role,omitempty"`
	// Action is "METHOD route": "PUT /v1/secrets/:name".
	Action  string         `json:"action"`
	Path    string         `json:"path"`
	Objects []ObjectChange `json:"objects,omitempty"`
	Status  int            `json:"status"`
	// Result is "ok" or the answer's error code.
	Result string `json:"result"`
}

// ObjectChange is one object an admin write changed: hex SHA-256 digests
// of its canonical document before and after ("" when absent).
type ObjectChange struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// AdminEvent is one admin write to record (WriteAdmin).
type AdminEvent struct {
	Time     time.Time
	ClientIP string
	TraceID  string
	Latency  time.Duration
	Admin
}

// WriteAdmin appends an admin record to the trail, in the same chain as
// the request records: durable within FlushInterval, like Write. Called on
// the admin API's request goroutine; it returns at once (except when the
// buffer is full, see Write).
func (l *Log) WriteAdmin(e AdminEvent) error {
	a := e.Admin
	a.Objects = append([]ObjectChange(nil), a.Objects...)
	r := Record{
		Time: e.Time.UTC(), Kind: KindAdmin, Node: l.cfg.Node, ClientIP: e.ClientIP, TraceID: e.TraceID,
		Method: a.Action, LatencyMs: float64(e.Latency.Microseconds()) / 1e3, Admin: &a,
	}
	return l.writeRecord(r)
}
