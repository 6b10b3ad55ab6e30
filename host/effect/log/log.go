package log

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
)

// Executor writes log effects to a slog.Logger. It is safe for concurrent
// use.
type Executor struct {
	log *slog.Logger
}

var _ effect.Executor = (*Executor)(nil)

// New returns an Executor writing to logger (nil: slog.Default()).
func New(logger *slog.Logger) *Executor {
	if logger == nil {
		logger = slog.Default()
	}
	return &Executor{log: logger}
}

// ParseLevel maps a log effect's level to slog's: "" and "info" are Info;
// "debug", "warn" (or "warning") and "error" as named; case-insensitive.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("level %q is not debug, info, warn or error", s)
}

// Execute writes req's log effect as one record.
func (x *Executor) Execute(ctx context.Context, req effect.Request) (effect.Result, error) {
	start := time.Now()
	l := req.Effect.Log
	bad := func(err error) (effect.Result, error) {
		e := effect.NewError(abi.EffectLog, req.Index, err, true)
		e.Plugin = req.Plugin
		return effect.Result{Duration: time.Since(start), Detail: "failed"}, e
	}
	if req.Effect.Type != abi.EffectLog || l == nil {
		return bad(fmt.Errorf("effect type %q with log member %v is not a log effect", req.Effect.Type, l != nil))
	}
	level, err := ParseLevel(l.Level)
	if err != nil {
		return bad(err)
	}
	if strings.TrimSpace(l.Message) == "" {
		return bad(fmt.Errorf("message is empty"))
	}
	// A plugin never gets the observer's secret from the host, but its
	// config might hold a copy; the log line must not.
	scrub := func(v string) string { return v }
	if sec := req.Policy.Secret; sec != "" {
		scrub = func(v string) string { return strings.ReplaceAll(v, sec, effect.Redacted) }
	}
	attrs := make([]slog.Attr, 0, 5)
	if len(l.Fields) > 0 {
		keys := make([]string, 0, len(l.Fields))
		for k := range l.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fields := make([]any, 0, len(keys))
		for _, k := range keys {
			fields = append(fields, slog.String(scrub(k), scrub(l.Fields[k])))
		}
		attrs = append(attrs, slog.Group("fields", fields...))
	}
	attrs = append(attrs,
		slog.String("event_id", req.EventID),
		slog.String("observer", req.Observer),
		slog.String("plugin", req.Plugin),
		slog.Int("effect", req.Index),
	)
	x.log.LogAttrs(ctx, level, scrub(l.Message), attrs...)
	return effect.Result{Duration: time.Since(start), Detail: "logged"}, nil
}
