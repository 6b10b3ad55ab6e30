package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/observer/internal/testenv"
)

const runEvent = `{"id": "pg:7", "position": 7, "source": "pg", "entity": "public.payment", "op": "INSERT", "key": "7",
 "before": null, "after": {"payment_id": 7, "amount": 123456789012345678901234567890.50}, "changed_fields": [], "commit_time": "2026-01-01T00:00:00Z"}`

func TestPluginRun(t *testing.T) {
	t.Setenv("OBSERVER_CACHE_DIR", t.TempDir()) // compile each plugin once
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	event := write("event.json", runEvent)
	del := write("delete.json", strings.Replace(strings.Replace(runEvent, `"INSERT"`, `"DELETE"`, 1), `"before": null, "after"`, `"after": null, "before"`, 1))
	typo := write("typo.json", strings.Replace(runEvent, `"after"`, `"aftr"`, 1))
	whole := write("whole.json", `{"abi": "1.0", "context": {}, "event": `+runEvent+`}`)
	badOp := write("badop.json", strings.Replace(runEvent, `"INSERT"`, `"UPSERT"`, 1))
	malformed := write("malformed.json", `{"abi": "1.0", "event": {`)
	notifyCfg := write("notify.json", `{"url": "https://hooks.example.com/n"}`)

	minAmount := testenv.GoPlugin(t, "examples/plugins/go/min-amount")
	notify := testenv.GoPlugin(t, "examples/plugins/go/notify")
	hostile := testenv.GoPlugin(t, "host/pluginhost/testdata/guests/hostile")

	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout []string
		stderr []string
	}{
		{"filter pass, exact number", []string{minAmount, "--role", "filter", "--event", event, "--config", `{"min": 9.99}`}, "", exitOK,
			[]string{"min-amount filter: PASS — amount 123456789012345678901234567890.50 >= min 9.99", "call "}, nil},
		{"filter drop", []string{minAmount, "--role", "filter", "--event", del, "--config", `{"min": 1}`}, "", exitOK,
			[]string{"min-amount filter: DROP — no after.amount"}, nil},
		{"event from stdin", []string{minAmount, "--role", "filter", "--event", "-", "--config", `{"min": 1}`}, runEvent, exitOK,
			[]string{"filter: PASS"}, nil},
		{"act effects, config from a file", []string{notify, "--role", "act", "--event", event, "--config", "@" + notifyCfg}, "", exitOK,
			[]string{"notify act: 1 effect(s), not executed", "1. http POST https://hooks.example.com/n", "content-type: application/json",
				`body: {"event":"pg:7","entity":"public.payment","op":"INSERT"}`}, nil},
		{"error result", []string{notify, "--role", "act", "--event", event}, "", exitFailed,
			[]string{"notify act: ERROR RESULT (bad_config, permanent: the event would be dead-lettered): config.url is missing"},
			[]string{"notify act answered with an error result"}},
		{"malformed input", []string{minAmount, "--role", "filter", "--input", malformed}, "", exitFailed,
			[]string{"ERROR RESULT (bad_input, permanent"}, nil},
		{"trap", []string{hostile, "--role", "filter", "--event", event, "--config", `{"mode": "panic"}`}, "", exitFailed,
			[]string{"hostile filter: FAILED (trap, retryable: the call would be retried)", "hostile guest panics on purpose"}, []string{"hostile filter failed"}},
		{"timeout", []string{hostile, "--role", "filter", "--event", event, "--config", `{"mode": "loop"}`, "--timeout", "100ms"}, "", exitFailed,
			[]string{"FAILED (timeout"}, nil},
		{"plugin-config", []string{hostile, "--role", "filter", "--event", event, "--plugin-config", "a=b", "--config", `{"mode": "ok"}`, "--now", "2026-12-03T10:00:00Z"}, "", exitOK,
			[]string{"hostile filter: PASS — mode ok"}, nil},

		{"no role", []string{minAmount, "--event", event}, "", exitUsage, nil, []string{"--role is required: filter or act"}},
		{"bad role", []string{minAmount, "--role", "enrich", "--event", event}, "", exitUsage, nil, []string{`--role "enrich": want filter or act`}},
		{"role not declared", []string{minAmount, "--role", "act", "--event", event}, "", exitUsage, nil, []string{`does not declare the role "act" (its roles: filter)`}},
		{"no event", []string{minAmount, "--role", "filter"}, "", exitUsage, nil, []string{"want exactly one of --event FILE"}},
		{"event and input", []string{minAmount, "--role", "filter", "--event", event, "--input", event}, "", exitUsage, nil, []string{"want exactly one of --event FILE"}},
		{"input with config", []string{minAmount, "--role", "filter", "--input", malformed, "--config", "{}"}, "", exitUsage, nil, []string{"--input is sent verbatim"}},
		{"typo in event", []string{minAmount, "--role", "filter", "--event", typo}, "", exitUsage, nil, []string{"--event " + typo + ` is not an ABI event: json: unknown field "aftr"`}},
		{"whole input as event", []string{minAmount, "--role", "filter", "--event", whole}, "", exitUsage, nil, []string{"holds a whole input", "--input"}},
		{"bad op", []string{minAmount, "--role", "filter", "--event", badOp}, "", exitUsage, nil, []string{`op "UPSERT": want INSERT, UPDATE or DELETE`}},
		{"bad config", []string{minAmount, "--role", "filter", "--event", event, "--config", "{min: 1}"}, "", exitUsage, nil, []string{"--config {min: 1} is not valid JSON"}},
		{"missing config file", []string{minAmount, "--role", "filter", "--event", event, "--config", "@" + filepath.Join(dir, "absent.json")}, "", exitUsage, nil, []string{"absent.json: no such file"}},
		{"bad now", []string{minAmount, "--role", "filter", "--event", event, "--now", "yesterday"}, "", exitUsage, nil, []string{`--now "yesterday": want RFC 3339`}},
		{"bad plugin-config", []string{minAmount, "--role", "filter", "--event", event, "--plugin-config", "novalue"}, "", exitUsage, nil, []string{`--plugin-config "novalue": want KEY=VALUE`}},
		{"missing plugin", []string{filepath.Join(dir, "absent.wasm"), "--role", "filter", "--event", event}, "", exitUsage, nil, []string{"absent.wasm: no such file"}},
		{"not wasm", []string{event, "--role", "filter", "--event", event}, "", exitFailed, nil, []string{"load plugin " + event, "not a WebAssembly module"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			var code int
			if tc.stdin == "" {
				code = Main(context.Background(), append([]string{"plugin", "run"}, tc.args...), &out, &errb)
			} else {
				// Main reads the process's stdin: run the command itself.
				a := &app{stdout: &out, stderr: &errb}
				root := a.rootCommand()
				root.SetArgs(append([]string{"plugin", "run"}, tc.args...))
				root.SetIn(strings.NewReader(tc.stdin))
				root.SetOut(&out)
				root.SetErr(&errb)
				if err := root.ExecuteContext(context.Background()); err != nil {
					code = exitFailed
				}
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}

	// --format json: the result, the input as sent (numbers exact) and timings.
	code, stdout, stderr := runCLI(t, context.Background(), "plugin", "run", notify, "--role", "act", "--event", event,
		"--config", "@"+notifyCfg, "--now", "2026-12-03T10:00:00Z", "--format", "json")
	var rep struct {
		Plugin, Role, Outcome string
		Act                   *struct{ Effects []struct{ Type string } }
		Input                 json.RawMessage
		Timing                map[string]float64 `json:"timing_ms"`
		Executed              *bool              `json:"effects_executed"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	rep.Input = compactJSON(rep.Input)
	if rep.Plugin != "notify" || rep.Outcome != "result" || rep.Act == nil || len(rep.Act.Effects) != 1 || rep.Executed == nil || *rep.Executed ||
		rep.Timing["call"] <= 0 || rep.Timing["load"] <= 0 ||
		!bytes.Contains(rep.Input, []byte(`"amount":123456789012345678901234567890.50`)) || !bytes.Contains(rep.Input, []byte(`"now":"2026-12-03T10:00:00Z"`)) {
		t.Fatalf("report %+v input %s", rep, rep.Input)
	}
}
