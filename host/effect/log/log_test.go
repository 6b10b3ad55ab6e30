package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/resilience"
)

func req(l *abi.LogEffect) effect.Request {
	return effect.Request{Effect: abi.Effect{Type: abi.EffectLog, Log: l}, EventID: "main:7", Observer: "audit", Plugin: "logger", Index: 1}
}

func TestExecuteWritesOneRecord(t *testing.T) {
	tests := []struct {
		level     string
		wantLevel string
	}{{"", "INFO"}, {"info", "INFO"}, {"DEBUG", "DEBUG"}, {"warn", "WARN"}, {"warning", "WARN"}, {"error", "ERROR"}}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			x := New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			res, err := x.Execute(context.Background(), req(&abi.LogEffect{Level: tt.level, Message: "payment seen",
				Fields: map[string]string{"amount": "9.99", "event_id": "plugin-cannot-shadow"}}))
			if err != nil || res.Detail != "logged" {
				t.Fatalf("Execute = %+v, %v", res, err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("wrote %d lines: %s", len(lines), buf.String())
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"level": tt.wantLevel, "msg": "payment seen", "event_id": "main:7", "observer": "audit",
				"plugin": "logger", "effect": 1.0}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s = %v, want %v", k, rec[k], v)
				}
			}
			fields, _ := rec["fields"].(map[string]any)
			if fields["amount"] != "9.99" || fields["event_id"] != "plugin-cannot-shadow" {
				t.Errorf("fields = %v", rec["fields"])
			}
		})
	}
}

func TestBadLogEffectsArePermanent(t *testing.T) {
	var buf bytes.Buffer
	x := New(slog.New(slog.NewTextHandler(&buf, nil)))
	tests := []struct {
		name string
		r    effect.Request
		want string
	}{
		{"bad level", req(&abi.LogEffect{Level: "loud", Message: "x"}), `level "loud" is not debug, info, warn or error`},
		{"empty message", req(&abi.LogEffect{Message: "  "}), "message is empty"},
		{"not a log effect", effect.Request{Effect: abi.Effect{Type: "http"}, Plugin: "p"}, `effect type "http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Execute(context.Background(), tt.r)
			if err == nil || !resilience.Permanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want permanent containing %q", err, tt.want)
			}
		})
	}
	if buf.Len() != 0 {
		t.Errorf("bad effects wrote: %s", buf.String())
	}
}

func TestSecretScrubbedFromLogEffects(t *testing.T) {
	const secret = "whsec-0123456789abcdef"
	var buf bytes.Buffer
	x := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	r := req(&abi.LogEffect{Message: "signing with " + secret, Fields: map[string]string{"key": secret, secret: "as a name"}})
	r.Policy.Secret = secret
	if _, err := x.Execute(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, secret) || strings.Count(out, effect.Redacted) != 3 {
		t.Errorf("log line = %s", out)
	}
}
