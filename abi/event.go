package abi

// Operation is the kind of change.
type Operation string

const (
	OpInsert Operation = "INSERT"
	OpUpdate Operation = "UPDATE"
	OpDelete Operation = "DELETE"
)

// Valid reports whether op is one of the three operations.
func (op Operation) Valid() bool {
	return op == OpInsert || op == OpUpdate || op == OpDelete
}

// Event is the canonical change event, the same whatever the source.
//
// Before and After hold the row images decoded with json.Number for
// numbers, so that large integers and exact decimals survive; either is nil
// (JSON null) where the operation has no such image.
type Event struct {
	// ID is stable and unique: "<source>:<position>".
	ID string `json:"id"`
	// Position is the event's place in its source's log (the checkpoint unit).
	Position uint64    `json:"position"`
	Source   string    `json:"source"`
	Entity   string    `json:"entity"`
	Op       Operation `json:"op"`
	// Key is the entity key (primary key value(s) as text); events with the
	// same Entity and Key are delivered in order.
	Key           string         `json:"key"`
	Before        map[string]any `json:"before"`
	After         map[string]any `json:"after"`
	ChangedFields []string       `json:"changed_fields"`
	Tenant        string         `json:"tenant,omitempty"`
	// CommitTime is RFC 3339 with nanoseconds, UTC.
	CommitTime string        `json:"commit_time"`
	TxID       string        `json:"txid,omitempty"`
	Trace      *TraceContext `json:"trace,omitempty"`
}
