package journal

import (
	"time"

	"github.com/fraiseql/observer/host/engine"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/source"
)

// Where a Report came from.
const (
	FromJournal = "journal"
	FromSource  = "source"
)

// Event states in a Report.
const (
	StateInFlight = "in_flight"
	StateFinished = "finished"
	// StateUnknown: the report was rebuilt from the source, which does not
	// know what the engine did with the event beyond its dead letters.
	StateUnknown = "unknown"
)

// Report is everything known about one event. It is the JSON of the admin
// server's /events/{id}.
type Report struct {
	EventID  string `json:"event_id"`
	Source   string `json:"source"`
	Position uint64 `json:"position"`
	// From is FromJournal or FromSource; Note explains a FromSource report.
	From string `json:"from"`
	Note string `json:"note,omitempty"`
	// Event is the event as read, nil when only a partial record is left.
	Event       *event.Event `json:"event,omitempty"`
	DecodeError string       `json:"decode_error,omitempty"`
	State       string       `json:"state"`
	ReadAt      *time.Time   `json:"read_at,omitempty"`
	FinishedAt  *time.Time   `json:"finished_at,omitempty"`
	// Matched is the number of observers that wanted the event.
	Matched int `json:"matched"`
	// CaptureMS is commit → read; TotalMS read → finished.
	CaptureMS float64 `json:"capture_ms,omitempty"`
	TotalMS   float64 `json:"total_ms,omitempty"`
	// Observers are every observer's decision and, for those that matched,
	// what happened, in configuration order.
	Observers []ObserverReport `json:"observers"`
}

// ObserverReport is one observer's part in one event.
type ObserverReport struct {
	Observer string `json:"observer"`
	Matched  bool   `json:"matched"`
	// Reason is why the observer wants the event or not: "condition
	// true", "entity … is not …", "condition false", ….
	Reason string `json:"reason,omitempty"`
	// Outcome is done, filtered, dead_lettered or deduplicated once the
	// unit finished; empty while it runs or when it did not match.
	Outcome    string          `json:"outcome,omitempty"`
	Filters    []PluginCall    `json:"filters,omitempty"`
	Action     []PluginCall    `json:"action,omitempty"`
	Effects    []EffectAttempt `json:"effects,omitempty"`
	Retries    []Retry         `json:"retries,omitempty"`
	DeadLetter *DeadLetter     `json:"dead_letter,omitempty"`
	// RouteMS is read → the unit's first step; PluginMS and EffectMS the
	// time in plugin calls and effects over all attempts.
	RouteMS  float64 `json:"route_ms,omitempty"`
	PluginMS float64 `json:"plugin_ms,omitempty"`
	EffectMS float64 `json:"effect_ms,omitempty"`
	// Dropped counts records not kept because a list was full.
	Dropped int `json:"dropped,omitempty"`
}

// PluginCall is one filter or action call.
type PluginCall struct {
	Plugin     string  `json:"plugin"`
	Attempt    int     `json:"attempt"`
	DurationMS float64 `json:"duration_ms"`
	// Pass and Reason are a filter's answer (nil Pass for the action).
	Pass   *bool  `json:"pass,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Effects is the number of effects an action returned.
	Effects int    `json:"effects,omitempty"`
	Error   string `json:"error,omitempty"`
}

// EffectAttempt is one attempt of one effect.
type EffectAttempt struct {
	Index   int    `json:"index"`
	Type    string `json:"type"`
	Attempt int    `json:"attempt"`
	// Status is the HTTP status code, 0 when there is none.
	Status         int     `json:"status,omitempty"`
	DurationMS     float64 `json:"duration_ms"`
	Detail         string  `json:"detail,omitempty"`
	Error          string  `json:"error,omitempty"`
	IdempotencyKey string  `json:"idempotency_key,omitempty"`
	DryRun         bool    `json:"dry_run,omitempty"`
}

// Retry is one retry scheduled after a failed step.
type Retry struct {
	Stage string `json:"stage"`
	// Effect is the failing effect's index, -1 before any effect.
	Effect  int     `json:"effect"`
	Attempt int     `json:"attempt"` // the attempt that failed
	DelayMS float64 `json:"delay_ms"`
	Error   string  `json:"error"`
}

// DeadLetter is the dead letter stored for one observer.
type DeadLetter struct {
	ID        int64     `json:"id"`
	Stage     string    `json:"stage"`
	Effect    int       `json:"effect"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

func deadLetterOf(d source.DeadLetter) *DeadLetter {
	return &DeadLetter{ID: d.ID, Stage: d.Stage, Effect: d.Effect, Attempts: d.Attempts, Error: d.Error, CreatedAt: d.CreatedAt}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// NoObserver names, in a report, the unit of no observer that a record
// which could not be decoded becomes.
const NoObserver = "(decode)"

// SourceReport builds the report of an event the journal no longer holds:
// rec as the source has it now, decisions re-evaluated now by the current
// configuration, and the dead letters the store keeps for it. The note
// says so; what the engine did beyond the dead letters is not known.
func SourceReport(rec source.Record, decisions []engine.RouteDecision, dead []source.DeadLetter) Report {
	ev := rec.Event
	r := Report{
		EventID: ev.ID, Source: ev.Source, Position: ev.Position, From: FromSource, State: StateUnknown,
		Note: "not in the journal of recent events (evicted, or processed before this process started): " +
			"the event is read from the source now, routing decisions are re-evaluated now with the current configuration, " +
			"and dead letters come from the store; filter results and effect attempts are not known",
		Observers: []ObserverReport{},
	}
	if rec.DecodeErr != nil {
		r.DecodeError = rec.DecodeErr.Error()
	} else {
		r.Event = ev
	}
	for _, d := range decisions {
		r.Observers = append(r.Observers, ObserverReport{Observer: d.Observer, Matched: d.Matched, Reason: d.Reason})
		if d.Matched {
			r.Matched++
		}
	}
	for _, d := range dead {
		name := d.Observer
		if name == "" {
			name = NoObserver
		}
		i := findObserver(r.Observers, name)
		if i < 0 {
			r.Observers = append(r.Observers, ObserverReport{Observer: name, Reason: "no longer configured"})
			i = len(r.Observers) - 1
		}
		r.Observers[i].DeadLetter = deadLetterOf(d)
		r.Observers[i].Outcome = engine.UnitDeadLettered
	}
	return r
}

func findObserver(os []ObserverReport, name string) int {
	for i := range os {
		if os[i].Observer == name {
			return i
		}
	}
	return -1
}
