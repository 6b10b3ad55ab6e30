package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
)

// conformanceContext is the call context of every vector without one.
var conformanceContext = abi.CallContext{Observer: "conformance", Plugin: "under-test", Attempt: 1, Now: "2026-01-01T00:00:00Z"}

// futureVersion is the ABI version of the forward-compatibility inputs: the
// next minor, which a plugin of this major must accept (SPEC §4.1, §7).
var futureVersion = fmt.Sprintf("%d.%d", abi.Major, abi.Minor+1)

// outcome is what one call did.
type outcome struct {
	// callErr is set for anything but a result or an error result: a
	// trap, a limit, bad output, error_set.
	callErr  *pluginhost.CallError
	otherErr error
	guestErr *abi.Error
	pass     *bool
	reason   string
	effects  []abi.Effect
}

// String is a one-line summary, also used as the Result's Got.
func (o *outcome) String() string {
	switch {
	case o.otherErr != nil:
		return "call failed: " + o.otherErr.Error()
	case o.guestErr != nil:
		s := "error result"
		if o.guestErr.Code != "" {
			s += " code=" + o.guestErr.Code
		}
		if o.guestErr.Retryable {
			s += " retryable"
		}
		return s
	case o.callErr != nil:
		if o.callErr.Kind == pluginhost.KindGuest {
			return "error_set or non-zero return"
		}
		return o.callErr.Kind.String()
	case o.pass != nil:
		return fmt.Sprintf("result pass=%v", *o.pass)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "result effects=%d", len(o.effects))
	for _, e := range o.effects {
		b.WriteString(" " + e.Type)
		if e.HTTP != nil {
			b.WriteString("(" + e.HTTP.Method + " " + e.HTTP.URL + ")")
		}
	}
	return b.String()
}

// returned reports whether the plugin gave a result or an error result,
// the only acceptable ways to answer (SPEC §5).
func (o *outcome) returned() bool { return o.otherErr == nil && o.callErr == nil || o.guestErr != nil }

// exact renders everything the plugin answered, for repeat comparisons.
func (o *outcome) exact() string {
	b, _ := json.Marshal(struct {
		S       string
		Reason  string
		Message string
		Effects []abi.Effect
	}{o.String(), o.reason, errMessage(o), o.effects})
	return string(b)
}

func errMessage(o *outcome) string {
	if o.guestErr != nil {
		return o.guestErr.Message
	}
	if o.callErr != nil {
		return o.callErr.Error()
	}
	return ""
}

func call(ctx context.Context, p *pluginhost.Plugin, role string, input []byte) *outcome {
	o := &outcome{}
	var err error
	switch role {
	case abi.RoleFilter:
		var r abi.FilterResult
		r, err = p.FilterRaw(ctx, input)
		o.guestErr, o.reason = r.Error, r.Reason
		if err == nil {
			o.pass = &r.Pass
		}
	case abi.RoleAct:
		var r abi.ActResult
		r, err = p.ActRaw(ctx, input)
		o.guestErr, o.effects = r.Error, r.Effects
	}
	var ce *pluginhost.CallError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		o.callErr = ce
		if ce.Kind != pluginhost.KindGuest {
			o.guestErr = nil // only an error result counts as one
		}
	default:
		o.otherErr = err
	}
	return o
}

func buildInput(v Vector, role string) ([]byte, error) {
	if v.RawInput != nil {
		return []byte(*v.RawInput), nil
	}
	cc := conformanceContext
	if v.Context != nil {
		cc = *v.Context
	}
	cc.Role = role
	in := struct {
		ABI     string          `json:"abi"`
		Context abi.CallContext `json:"context"`
		Event   json.RawMessage `json:"event"`
		Config  json.RawMessage `json:"config,omitempty"`
	}{abi.VersionString, cc, v.Event, v.Config}
	if len(in.Event) == 0 {
		in.Event = json.RawMessage("null")
	}
	return json.Marshal(in)
}

// runVector runs v on role and returns its Result and, if the plugin
// answered with a result or an error result, the outcome (for the
// forward-compatibility check).
func runVector(ctx context.Context, l *loader, v Vector, role string) (Result, *outcome) {
	res := Result{Name: v.Name, Role: role, File: v.File}
	input, err := buildInput(v, role)
	if err != nil {
		res.Diff = []string{fmt.Sprintf("vector: cannot build the input: %v", err)}
		return res, nil
	}
	p, err := l.get(ctx, v.Limits)
	if err != nil {
		res.Diff = []string{fmt.Sprintf("vector limits: the plugin does not load with them: %v", err)}
		return res, nil
	}
	start := time.Now()
	o := call(ctx, p, role, input)
	res.Got = o.String()
	// Repeat on the same instance: the pool hands back the idle one.
	for i := 2; i <= v.Repeat && o.returned(); i++ {
		o2 := call(ctx, p, role, input)
		if o2.exact() != o.exact() {
			res.Diff = append(res.Diff, fmt.Sprintf("repeat: call %d of %d differs from call 1 (a plugin keeps no state between calls, SPEC §2)", i, v.Repeat),
				"         call 1: "+o.exact(), fmt.Sprintf("         call %d: %s", i, o2.exact()))
			break
		}
	}
	res.DurationUS = time.Since(start).Microseconds()
	res.Diff = append(res.Diff, compare(v.Expect, o)...)
	if !o.returned() {
		return res, nil
	}
	res.Diff = append(res.Diff, validate(o)...)
	return res, o
}

// compare checks an outcome against a vector's expectation.
func compare(e Expect, o *outcome) []string {
	if o.otherErr != nil {
		return []string{"call: " + o.otherErr.Error()}
	}
	if e.Limit != "" {
		if o.callErr != nil && o.callErr.Kind.String() == e.Limit {
			return nil
		}
		return []string{fmt.Sprintf("want %s, got %s", e, o)}
	}
	if !o.returned() {
		why := o.callErr.Kind.String()
		switch o.callErr.Kind {
		case pluginhost.KindTimeout, pluginhost.KindMemory, pluginhost.KindOutputTooLarge:
			why = "exceeded a limit (" + why + ")"
		case pluginhost.KindGuest:
			why = "reported the error with error_set or a return code instead of an error result"
		}
		return []string{fmt.Sprintf("want %s, got %s: %v", e, why, o.callErr.Err)}
	}
	var diff []string
	g := o.guestErr
	switch {
	case e.Error != nil:
		if g == nil {
			return []string{fmt.Sprintf("error: want an error result, got a result (%s)", gotSummary(o))}
		}
		if e.Error.Code != "" && g.Code != e.Error.Code {
			diff = append(diff, fmt.Sprintf("error.code: want %q, got %q (message %q)", e.Error.Code, g.Code, g.Message))
		}
		if e.Error.MessageContains != "" && !strings.Contains(g.Message, e.Error.MessageContains) {
			diff = append(diff, fmt.Sprintf("error.message: want it to contain %q, got %q", e.Error.MessageContains, g.Message))
		}
		if e.Error.Retryable != nil && g.Retryable != *e.Error.Retryable {
			diff = append(diff, fmt.Sprintf("error.retryable: want %v, got %v", *e.Error.Retryable, g.Retryable))
		}
	case e.NoTrap:
		// A valid result or an error result: both reached here.
	default:
		if g != nil {
			return []string{fmt.Sprintf("want a result, got an error result: code %q: %s", g.Code, g.Message)}
		}
		if e.Pass != nil && (o.pass == nil || *o.pass != *e.Pass) {
			diff = append(diff, fmt.Sprintf("pass: want %v, got %s", *e.Pass, gotSummary(o)))
		}
		if e.ReasonContains != "" && !strings.Contains(o.reason, e.ReasonContains) {
			diff = append(diff, fmt.Sprintf("reason: want it to contain %q, got %q", e.ReasonContains, o.reason))
		}
		if len(e.Effects) > 0 {
			want, err1 := canonical(e.Effects)
			got, err2 := canonical(o.effects)
			switch {
			case err1 != nil:
				diff = append(diff, fmt.Sprintf("vector: expect.effects: %v", err1))
			case err2 != nil:
				diff = append(diff, fmt.Sprintf("effects: %v", err2))
			case want != got:
				diff = append(diff, "effects: want "+want, "         got  "+got)
			}
		}
	}
	return diff
}

func gotSummary(o *outcome) string {
	if o.pass != nil {
		return fmt.Sprintf("pass=%v reason=%q", *o.pass, o.reason)
	}
	b, _ := json.Marshal(o.effects)
	return "effects " + string(b)
}

// canonical renders v as JSON with sorted keys (embedded JSON such as
// body_json included), so effects compare regardless of key order.
func canonical(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "", err
	}
	out, err := json.Marshal(x)
	return string(out), err
}

// validate checks a result against the rules of SPEC §4.3 that the host
// does not enforce at call time, so that a plugin passing the suite
// returns only effects the executors can carry out.
func validate(o *outcome) []string {
	var diff []string
	for i, e := range o.effects {
		at := fmt.Sprintf("effects[%d]", i)
		switch {
		case e.HTTP != nil:
			at += ".http"
			h := e.HTTP
			if !isToken(h.Method) {
				diff = append(diff, fmt.Sprintf("%s.method: want an HTTP method such as \"POST\", got %q", at, h.Method))
			}
			if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				diff = append(diff, fmt.Sprintf("%s.url: want an absolute http:// or https:// URL, got %q", at, h.URL))
			}
			for k, val := range h.Headers {
				if !isToken(k) {
					diff = append(diff, fmt.Sprintf("%s.headers: %q is not a valid header name", at, k))
				}
				if strings.ContainsAny(val, "\r\n") {
					diff = append(diff, fmt.Sprintf("%s.headers[%q]: a header value cannot hold CR or LF", at, k))
				}
			}
		case e.Log != nil:
			at += ".log"
			switch e.Log.Level {
			case "", "debug", "info", "warn", "error":
			default:
				diff = append(diff, fmt.Sprintf("%s.level: want debug, info, warn or error, got %q", at, e.Log.Level))
			}
		}
		if e.HTTP != nil && e.Log != nil {
			diff = append(diff, fmt.Sprintf("effects[%d]: sets both \"http\" and \"log\"; an effect sets exactly the member its type names", i))
		}
	}
	return diff
}

// isToken reports whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// futureEligible: vectors whose input the runner builds (not raw inputs)
// and that run under the run's own limits.
func futureEligible(v Vector) bool {
	return v.RawInput == nil && v.Limits == nil && v.Expect.Limit == ""
}

// futureInput is v's input as a host of the next minor could send it: a
// newer "abi" and fields this ABI does not define at the top level, in the
// context and in the event, holding look-alikes of real fields (a plugin
// that searches the text instead of parsing it trips on them).
func futureInput(v Vector, role string) ([]byte, error) {
	cc := conformanceContext
	if v.Context != nil {
		cc = *v.Context
	}
	cc.Role = role
	ctxJSON, err := json.Marshal(cc)
	if err != nil {
		return nil, err
	}
	ctxJSON, err = withField(ctxJSON, "x_future_context", `{"role":"decoy","now":"1999-01-01T00:00:00Z","attempt":99}`)
	if err != nil {
		return nil, err
	}
	event := v.Event
	if len(event) == 0 {
		event = json.RawMessage("null")
	}
	if ev, err := withField(event, "x_future_event", `{"op":"DELETE","after":{"amount":-1,"id":"decoy"},"changed_fields":["decoy"],"list":[[],[{}],null,1e400]}`); err == nil {
		event = ev
	}
	var b bytes.Buffer
	b.WriteString(`{"x_future_first":{"abi":"9.9","event":{"op":"DELETE","after":null},"config":{"decoy":true},"text":"}{\"pass\":false"},`)
	fmt.Fprintf(&b, `"abi":%q,"context":%s,"event":%s`, futureVersion, ctxJSON, event)
	if len(v.Config) > 0 {
		b.WriteString(`,"config":`)
		b.Write(v.Config)
	}
	b.WriteString(`,"x_future_last":[1.5e300,"\u00e9\ud83d\ude80",{"effects":[{"type":"decoy"}]}]}`)
	return b.Bytes(), nil
}

// withField adds name: value to the JSON object obj; obj that is not an
// object is an error (null events stay null).
func withField(obj []byte, name, value string) ([]byte, error) {
	t := bytes.TrimSpace(obj)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return nil, errors.New("not an object")
	}
	var b bytes.Buffer
	b.Write(t[:len(t)-1])
	if len(bytes.TrimSpace(t[1:len(t)-1])) > 0 {
		b.WriteByte(',')
	}
	fmt.Fprintf(&b, "%q:%s}", name, value)
	return b.Bytes(), nil
}

// shape is what must not change when an input gains unknown fields: the
// kind of answer, the decision, the error code, the effects' types and
// targets. Reasons and bodies may differ (a plugin may echo the event).
func shape(o *outcome) string {
	s := o.String()
	for _, e := range o.effects {
		if e.HTTP != nil {
			s += " " + e.HTTP.Method + " " + e.HTTP.URL
		}
	}
	return s
}

// futureCheck accumulates the forward-compatibility check of one role.
type futureCheck struct {
	Result
	n int // vectors resent
}

// checkFuture sends v's input as an ABI futureVersion input and records a
// diff in fr if the outcome's shape differs from base.
func checkFuture(ctx context.Context, p *pluginhost.Plugin, v Vector, role string, base *outcome, fr *futureCheck) {
	input, err := futureInput(v, role)
	if err != nil {
		fr.Diff = append(fr.Diff, fmt.Sprintf("%s: cannot build the input: %v", v.Name, err))
		return
	}
	start := time.Now()
	o := call(ctx, p, role, input)
	fr.DurationUS += time.Since(start).Microseconds()
	fr.n++
	if shape(o) != shape(base) {
		fr.Diff = append(fr.Diff, fmt.Sprintf("%q [%s]: as ABI %s input got %s; as ABI %s input %s (SPEC §4.1: unknown fields MUST be ignored)",
			v.Name, v.File, abi.VersionString, shape(base), futureVersion, describeOutcome(o)))
	}
}

func describeOutcome(o *outcome) string {
	s := shape(o)
	if o.guestErr != nil {
		s += fmt.Sprintf(" (%q)", o.guestErr.Message)
	} else if o.callErr != nil {
		s += fmt.Sprintf(" (%v)", o.callErr.Err)
	}
	return s
}
