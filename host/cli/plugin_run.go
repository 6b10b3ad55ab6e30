package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/spf13/cobra"
)

// runReport is `plugin run --format json`.
type runReport struct {
	Plugin string `json:"plugin"`
	Role   string `json:"role"`
	// Outcome: "result", "error result", or the failure's kind ("trap",
	// "timeout", "bad output", ...).
	Outcome string             `json:"outcome"`
	Filter  *abi.FilterResult  `json:"filter,omitempty"`
	Act     *abi.ActResult     `json:"act,omitempty"`
	Failure *runFailure        `json:"failure,omitempty"`
	Input   json.RawMessage    `json:"input"`
	Timing  map[string]float64 `json:"timing_ms"`
	// EffectsExecuted is always false: plugin run never executes effects.
	EffectsExecuted bool `json:"effects_executed"`
}

type runFailure struct {
	Kind      string `json:"kind"`
	Message   string `json:"message"`
	Permanent bool   `json:"permanent"`
}

func (a *app) pluginRunCommand() *cobra.Command {
	var role, eventFile, inputFile, config, observerName, now string
	var pluginConfig []string
	var limits pluginhost.Limits
	var memory int64
	cmd := &cobra.Command{
		Use:   "run FILE.wasm --role filter|act --event EVENT.json",
		Short: "Run one plugin call locally and print its result and effects (not executed)",
		Long: `run loads the plugin in the sandbox (the limits of observer run), builds the ABI
input from an event (--event, a JSON file holding one event; - reads stdin), the
observer's config for the plugin (--config, JSON or @file) and a call context, calls
the role once and prints the decision or the effects it returns, with timings.
Effects are never executed. --input sends a whole input file verbatim instead (to
try malformed input).

Exit status: 0 for a result, 1 for an error result or a failed call (trap, limit,
bad output; the plugin's own log lines go to stderr), 2 for bad usage (a missing
or unreadable file, an event that is not an ABI event, bad flags).`,
		Example: `  observer plugin run bin/plugins/field-filter.wasm --role filter --event payment.json \
      --config '{"field": "after.amount", "op": ">=", "value": 9.99}'
  observer plugin run notify.wasm --role act --event event.json --config @notify.json --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if role == "" {
				return usagef("plugin run: --role is required: filter or act")
			}
			if role != abi.RoleFilter && role != abi.RoleAct {
				return usagef("plugin run: --role %q: want filter or act", role)
			}
			if (eventFile == "") == (inputFile == "") {
				return usagef("plugin run: want exactly one of --event FILE (an event) or --input FILE (a whole input, sent verbatim)")
			}
			if f := cmd.Flags(); inputFile != "" && (f.Changed("config") || f.Changed("now") || f.Changed("observer")) {
				return usagef("plugin run: --input is sent verbatim: --config, --now and --observer apply to --event only")
			}
			if _, err := os.Stat(path); err != nil {
				return usagef("plugin run: %v", err)
			}
			cfgMap := map[string]string{}
			for _, kv := range pluginConfig {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("plugin run: --plugin-config %q: want KEY=VALUE", kv)
				}
				cfgMap[k] = v
			}
			var input []byte
			var err error
			if inputFile != "" {
				if input, err = readArgFile(cmd, inputFile); err != nil {
					return usagef("plugin run: --input: %v", err)
				}
			} else if input, err = buildRunInput(cmd, role, eventFile, config, observerName, now); err != nil {
				return err
			}
			limits.MemoryBytes = uint64(memory)

			ctx := cmd.Context()
			h, err := pluginhost.New(ctx, pluginhost.Config{CacheDir: pluginCacheDir(), Logger: a.logger("info", "text")})
			if err != nil {
				return fmt.Errorf("start plugin host: %w", err)
			}
			defer h.Close(context.WithoutCancel(ctx))
			start := time.Now()
			p, err := h.Load(ctx, pluginhost.Spec{Path: path, Limits: limits, Config: cfgMap})
			if err != nil {
				return err
			}
			load := time.Since(start)
			defer p.Close(context.WithoutCancel(ctx))
			if m := p.Manifest(); !m.HasRole(role) {
				return usagef("plugin run: %s does not declare the role %q (its roles: %s)", path, role, strings.Join(m.Roles, ", "))
			}
			rep := runReport{Plugin: p.Name(), Role: role, Input: compactJSON(input), Timing: map[string]float64{"load": ms(load)}}
			start = time.Now()
			var callErr error
			if role == abi.RoleFilter {
				r, err := p.FilterRaw(ctx, input)
				rep.Filter, callErr = &r, err
			} else {
				r, err := p.ActRaw(ctx, input)
				rep.Act, callErr = &r, err
			}
			rep.Timing["call"] = ms(time.Since(start))
			var ce *pluginhost.CallError
			var ge *abi.Error
			switch {
			case callErr == nil:
				rep.Outcome = "result"
			case errors.As(callErr, &ce) && ce.Kind == pluginhost.KindGuest && errors.As(callErr, &ge) &&
				((rep.Filter != nil && rep.Filter.Error != nil) || (rep.Act != nil && rep.Act.Error != nil)):
				rep.Outcome = "error result"
			case ce != nil:
				rep.Outcome = ce.Kind.String()
				rep.Filter, rep.Act = nil, nil
				rep.Failure = &runFailure{Kind: ce.Kind.String(), Message: ce.Error(), Permanent: ce.Permanent()}
			default:
				return callErr
			}
			if err := a.emit(rep, func(w io.Writer) { rep.write(w) }); err != nil {
				return err
			}
			switch rep.Outcome {
			case "result":
				return nil
			case "error result":
				return fmt.Errorf("%s %s answered with an error result", rep.Plugin, role)
			}
			return fmt.Errorf("%s %s failed: %s", rep.Plugin, role, rep.Failure.Message)
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the role to call: filter or act (required)")
	f.StringVar(&eventFile, "event", "", "a JSON file holding the event (- for stdin)")
	f.StringVar(&inputFile, "input", "", "a whole input file, sent verbatim instead of one built from --event")
	f.StringVar(&config, "config", "", "the observer's config for the plugin: JSON, or @FILE")
	f.StringArrayVar(&pluginConfig, "plugin-config", nil, "KEY=VALUE the plugin reads with config_get ([plugins.NAME].config; repeatable)")
	f.StringVar(&observerName, "observer", "cli", "context.observer of the call")
	f.StringVar(&now, "now", "", "context.now of the call, RFC 3339 (default: the current time)")
	f.Int64Var(&memory, "memory-limit", 0, "memory cap in bytes (default: the host's default)")
	f.DurationVar(&limits.Timeout, "timeout", 0, "call timeout (default: the host's default)")
	f.IntVar(&limits.MaxOutputBytes, "max-output", 0, "output cap in bytes (default: the host's default)")
	return cmd
}

// buildRunInput builds the ABI input from the event file, config and flags.
// The event is checked against the ABI's event fields, so that a typo
// ("aftr") is reported instead of silently sending no image.
func buildRunInput(cmd *cobra.Command, role, eventFile, config, observerName, now string) ([]byte, error) {
	raw, err := readArgFile(cmd, eventFile)
	if err != nil {
		return nil, usagef("plugin run: --event: %v", err)
	}
	name := eventFile
	if name == "-" {
		name = "stdin"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var ev abi.Event
	if err := dec.Decode(&ev); err != nil {
		var probe map[string]json.RawMessage
		if json.Unmarshal(raw, &probe) == nil && probe["event"] != nil && probe["op"] == nil {
			return nil, usagef("plugin run: --event %s holds a whole input (it has an \"event\" member): pass it with --input, or pass the event alone", name)
		}
		return nil, usagef("plugin run: --event %s is not an ABI event: %v", name, err)
	}
	// Decoder.More is no test for trailing data: it answers false
	// before a stray "}" or "]".
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return nil, usagef("plugin run: --event %s: trailing data after the event object", name)
	}
	if !ev.Op.Valid() {
		return nil, usagef("plugin run: --event %s: op %q: want INSERT, UPDATE or DELETE", name, ev.Op)
	}
	var cfg json.RawMessage
	if config != "" {
		b := []byte(config)
		if strings.HasPrefix(config, "@") {
			if b, err = os.ReadFile(config[1:]); err != nil {
				return nil, usagef("plugin run: --config: %v", err)
			}
		}
		if !json.Valid(b) {
			return nil, usagef("plugin run: --config %s is not valid JSON", config)
		}
		cfg = compactJSON(b)
	}
	if now == "" {
		now = time.Now().UTC().Format(time.RFC3339Nano)
	} else if _, err := time.Parse(time.RFC3339Nano, now); err != nil {
		return nil, usagef("plugin run: --now %q: want RFC 3339, such as 2026-12-03T10:00:00Z", now)
	}
	// The event is sent as written (numbers exact), not re-encoded.
	return json.Marshal(struct {
		ABI     string          `json:"abi"`
		Context abi.CallContext `json:"context"`
		Event   json.RawMessage `json:"event"`
		Config  json.RawMessage `json:"config,omitempty"`
	}{abi.VersionString, abi.CallContext{Observer: observerName, Plugin: "cli", Role: role, Attempt: 1, Now: now}, compactJSON(raw), cfg})
}

func readArgFile(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(name)
}

// compactJSON compacts valid JSON and returns anything else as a JSON
// string, so that the report can always hold the input.
func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		s, _ := json.Marshal(string(b))
		return s
	}
	return buf.Bytes()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *runReport) write(w io.Writer) {
	switch {
	case r.Failure != nil:
		fmt.Fprintf(w, "%s %s: FAILED (%s, %s)\n  %s\n", r.Plugin, r.Role, r.Failure.Kind, permanence(r.Failure.Permanent), r.Failure.Message)
	case r.Filter != nil && r.Filter.Error == nil:
		verdict := "DROP"
		if r.Filter.Pass {
			verdict = "PASS"
		}
		fmt.Fprintf(w, "%s filter: %s", r.Plugin, verdict)
		if r.Filter.Reason != "" {
			fmt.Fprintf(w, " — %s", r.Filter.Reason)
		}
		fmt.Fprintln(w)
	case r.Act != nil && r.Act.Error == nil:
		fmt.Fprintf(w, "%s act: %d effect(s), not executed\n", r.Plugin, len(r.Act.Effects))
		for i, e := range r.Act.Effects {
			switch {
			case e.HTTP != nil:
				fmt.Fprintf(w, "  %d. http %s %s\n", i+1, e.HTTP.Method, e.HTTP.URL)
				for _, k := range sortedKeys(e.HTTP.Headers) {
					fmt.Fprintf(w, "       %s: %s\n", k, e.HTTP.Headers[k])
				}
				if e.HTTP.Body != "" {
					fmt.Fprintf(w, "       body: %s\n", e.HTTP.Body)
				}
				if len(e.HTTP.BodyJSON) > 0 {
					fmt.Fprintf(w, "       body_json: %s\n", compactJSON(e.HTTP.BodyJSON))
				}
			case e.Log != nil:
				level := e.Log.Level
				if level == "" {
					level = "info"
				}
				fmt.Fprintf(w, "  %d. log %s %q", i+1, level, e.Log.Message)
				for _, k := range sortedKeys(e.Log.Fields) {
					fmt.Fprintf(w, " %s=%s", k, e.Log.Fields[k])
				}
				fmt.Fprintln(w)
			}
		}
	default:
		var e *abi.Error
		if r.Filter != nil {
			e = r.Filter.Error
		} else if r.Act != nil {
			e = r.Act.Error
		}
		if e == nil {
			return
		}
		code := e.Code
		if code == "" {
			code = "no code"
		}
		fmt.Fprintf(w, "%s %s: ERROR RESULT (%s, %s): %s\n", r.Plugin, r.Role, code, permanence(!e.Retryable), e.Message)
	}
	fmt.Fprintf(w, "call %.3f ms (load %.0f ms)\n", r.Timing["call"], r.Timing["load"])
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func permanence(permanent bool) string {
	if permanent {
		return "permanent: the event would be dead-lettered"
	}
	return "retryable: the call would be retried"
}
