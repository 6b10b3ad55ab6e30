package conformance

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
)

//go:embed vectors/*.json
var genericVectors embed.FS

// RoleAny marks a vector that runs on every role the plugin declares.
const RoleAny = "any"

// Vector is one conformance case.
type Vector struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Role        string           `json:"role"`
	Config      json.RawMessage  `json:"config,omitempty"`
	Event       json.RawMessage  `json:"event,omitempty"`
	RawInput    *string          `json:"raw_input,omitempty"`
	Context     *abi.CallContext `json:"context,omitempty"`
	Expect      Expect           `json:"expect"`

	// File is where the vector came from ("generic:name.json" or a path).
	File string `json:"-"`
}

// Expect is a vector's expected outcome.
type Expect struct {
	Pass           *bool           `json:"pass,omitempty"`
	ReasonContains string          `json:"reason_contains,omitempty"`
	Effects        json.RawMessage `json:"effects,omitempty"`
	Error          *ExpectError    `json:"error,omitempty"`
	NoTrap         bool            `json:"no_trap,omitempty"`
}

// ExpectError describes an expected error result; empty fields match anything.
type ExpectError struct {
	Code            string `json:"code,omitempty"`
	MessageContains string `json:"message_contains,omitempty"`
	Retryable       *bool  `json:"retryable,omitempty"`
}

// Options tune a run.
type Options struct {
	// VectorDirs hold plugin-specific vectors (*.json), run after the
	// generic ones.
	VectorDirs []string
	// Limits for the plugin under test; zero fields take pluginhost defaults.
	Limits pluginhost.Limits
}

// Result is the outcome of one check.
type Result struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
	File string `json:"file,omitempty"`
	Pass bool   `json:"pass"`
	// Diff lists what differed, as "field: want X, got Y".
	Diff []string `json:"diff,omitempty"`
}

// Report is the outcome of a run. It marshals to JSON as is.
type Report struct {
	Path     string        `json:"path"`
	Plugin   string        `json:"plugin,omitempty"`
	Manifest *abi.Manifest `json:"manifest,omitempty"`
	Results  []Result      `json:"results"`
	Passed   int           `json:"passed"`
	Failed   int           `json:"failed"`
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// Summary is "N passed, N failed".
func (r *Report) Summary() string { return fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed) }

// Write renders the report as text: one line per check, the diff of each
// failure indented under it, then the summary.
func (r *Report) Write(w io.Writer) error {
	var b bytes.Buffer
	name := r.Plugin
	if name == "" {
		name = "(not loaded)"
	}
	fmt.Fprintf(&b, "conformance: %s (%s)\n", name, r.Path)
	for _, res := range r.Results {
		mark := "PASS"
		if !res.Pass {
			mark = "FAIL"
		}
		label := res.Name
		if res.Role != "" {
			label = res.Role + ": " + res.Name
		}
		fmt.Fprintf(&b, "  %s  %s", mark, label)
		if res.File != "" {
			fmt.Fprintf(&b, "  [%s]", res.File)
		}
		b.WriteByte('\n')
		for _, d := range res.Diff {
			fmt.Fprintf(&b, "        %s\n", d)
		}
	}
	fmt.Fprintf(&b, "%s\n", r.Summary())
	_, err := w.Write(b.Bytes())
	return err
}

func (r *Report) add(res Result) {
	if res.Pass {
		r.Passed++
	} else {
		r.Failed++
	}
	r.Results = append(r.Results, res)
}

// Run checks the plugin in wasmPath. The error is for problems with the
// run itself (an unreadable vector); a plugin that fails to load or fails
// vectors gives a Report with failures, not an error.
func Run(ctx context.Context, h *pluginhost.Host, wasmPath string, opts Options) (*Report, error) {
	vectors, err := LoadVectors(opts.VectorDirs...)
	if err != nil {
		return nil, err
	}
	rep := &Report{Path: wasmPath}
	p, err := h.Load(ctx, pluginhost.Spec{Path: wasmPath, Limits: opts.Limits})
	if err != nil {
		rep.add(Result{Name: "load and describe", Diff: []string{err.Error()}})
		return rep, nil
	}
	defer p.Close(ctx)
	m := p.Manifest()
	rep.Plugin, rep.Manifest = p.Name(), &m
	rep.add(checkManifest(m))

	for _, v := range vectors {
		roles := []string{v.Role}
		if v.Role == RoleAny {
			roles = m.Roles
		}
		for _, role := range roles {
			if !m.HasRole(role) {
				continue // a vector for a role this plugin does not play
			}
			rep.add(runVector(ctx, p, v, role))
		}
	}
	return rep, nil
}

func checkManifest(m abi.Manifest) Result {
	res := Result{Name: "describe: manifest"}
	major, _, err := abi.ParseVersion(m.ABI)
	if err != nil || major != abi.Major {
		res.Diff = append(res.Diff, fmt.Sprintf("abi: want %d.x, got %q", abi.Major, m.ABI))
	}
	if m.Name == "" {
		res.Diff = append(res.Diff, "name: want a non-empty name, got none")
	}
	if m.Version == "" {
		res.Diff = append(res.Diff, "version: want a non-empty version, got none")
	}
	if len(m.Roles) == 0 {
		res.Diff = append(res.Diff, "roles: want at least one of filter, act, got none")
	}
	for _, r := range m.Roles {
		if r == abi.RoleAct && len(m.Capabilities.Effects) == 0 {
			res.Diff = append(res.Diff, `capabilities.effects: an act plugin must ask for the effect types it returns, got none`)
		}
	}
	res.Pass = len(res.Diff) == 0
	return res
}

// conformanceContext is the call context of every vector without one.
var conformanceContext = abi.CallContext{Observer: "conformance", Plugin: "under-test", Attempt: 1, Now: "2026-01-01T00:00:00Z"}

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

func runVector(ctx context.Context, p *pluginhost.Plugin, v Vector, role string) Result {
	res := Result{Name: v.Name, Role: role, File: v.File}
	input, err := buildInput(v, role)
	if err != nil {
		res.Diff = []string{fmt.Sprintf("vector: cannot build the input: %v", err)}
		return res
	}
	var (
		guestErr *abi.Error
		pass     *bool
		reason   string
		effects  []abi.Effect
		callErr  error
	)
	switch role {
	case abi.RoleFilter:
		r, err := p.FilterRaw(ctx, input)
		callErr = err
		guestErr, reason = r.Error, r.Reason
		if err == nil {
			pass = &r.Pass
		}
	case abi.RoleAct:
		r, err := p.ActRaw(ctx, input)
		callErr, guestErr, effects = err, r.Error, r.Effects
	default:
		res.Diff = []string{fmt.Sprintf("vector: unknown role %q", role)}
		return res
	}

	var ce *pluginhost.CallError
	if callErr != nil && !errors.As(callErr, &ce) {
		res.Diff = []string{"call: " + callErr.Error()}
		return res
	}
	if ce != nil && !(ce.Kind == pluginhost.KindGuest && guestErr != nil) {
		// Anything but an error result: a trap, a limit, bad output, error_set.
		why := ce.Kind.String()
		switch ce.Kind {
		case pluginhost.KindTimeout, pluginhost.KindMemory, pluginhost.KindOutputTooLarge:
			why = "exceeded a limit (" + why + ")"
		case pluginhost.KindGuest:
			why = "reported the error with error_set or a return code instead of an error result"
		}
		res.Diff = []string{fmt.Sprintf("want %s, got %s: %v", describeExpect(v.Expect), why, ce.Err)}
		return res
	}

	e := v.Expect
	switch {
	case e.Error != nil:
		if guestErr == nil {
			res.Diff = append(res.Diff, fmt.Sprintf("error: want an error result, got a result (%s)", gotSummary(pass, reason, effects)))
			break
		}
		if e.Error.Code != "" && guestErr.Code != e.Error.Code {
			res.Diff = append(res.Diff, fmt.Sprintf("error.code: want %q, got %q (message %q)", e.Error.Code, guestErr.Code, guestErr.Message))
		}
		if e.Error.MessageContains != "" && !strings.Contains(guestErr.Message, e.Error.MessageContains) {
			res.Diff = append(res.Diff, fmt.Sprintf("error.message: want it to contain %q, got %q", e.Error.MessageContains, guestErr.Message))
		}
		if e.Error.Retryable != nil && guestErr.Retryable != *e.Error.Retryable {
			res.Diff = append(res.Diff, fmt.Sprintf("error.retryable: want %v, got %v", *e.Error.Retryable, guestErr.Retryable))
		}
	case e.NoTrap:
		// A valid result or an error result: both reached here.
	default:
		if guestErr != nil {
			res.Diff = append(res.Diff, fmt.Sprintf("want a result, got an error result: code %q: %s", guestErr.Code, guestErr.Message))
			break
		}
		if e.Pass != nil && (pass == nil || *pass != *e.Pass) {
			res.Diff = append(res.Diff, fmt.Sprintf("pass: want %v, got %s", *e.Pass, gotSummary(pass, reason, nil)))
		}
		if e.ReasonContains != "" && !strings.Contains(reason, e.ReasonContains) {
			res.Diff = append(res.Diff, fmt.Sprintf("reason: want it to contain %q, got %q", e.ReasonContains, reason))
		}
		if len(e.Effects) > 0 {
			want, err1 := canonical(e.Effects)
			got, err2 := canonical(effects)
			switch {
			case err1 != nil:
				res.Diff = append(res.Diff, fmt.Sprintf("vector: expect.effects: %v", err1))
			case err2 != nil:
				res.Diff = append(res.Diff, fmt.Sprintf("effects: %v", err2))
			case want != got:
				res.Diff = append(res.Diff, "effects: want "+want, "         got  "+got)
			}
		}
	}
	res.Pass = len(res.Diff) == 0
	return res
}

func describeExpect(e Expect) string {
	switch {
	case e.Error != nil:
		return "an error result"
	case e.NoTrap:
		return "a result or an error result"
	}
	return "a result"
}

func gotSummary(pass *bool, reason string, effects []abi.Effect) string {
	if pass != nil {
		return fmt.Sprintf("pass=%v reason=%q", *pass, reason)
	}
	b, _ := json.Marshal(effects)
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

// LoadVectors returns the generic vectors followed by those in dirs, each
// directory's files in name order. A vector that cannot be parsed is an
// error naming its file.
func LoadVectors(dirs ...string) ([]Vector, error) {
	var out []Vector
	names, err := fs.Glob(genericVectors, "vectors/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := genericVectors.ReadFile(n)
		if err != nil {
			return nil, err
		}
		v, err := parseVector(b, "generic:"+filepath.Base(n))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(d, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			if _, err := os.Stat(d); err != nil {
				return nil, fmt.Errorf("conformance vectors: %w", err)
			}
			return nil, fmt.Errorf("conformance vectors: no *.json files in %s", d)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("conformance vectors: %w", err)
			}
			v, err := parseVector(b, f)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func parseVector(b []byte, file string) (Vector, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v Vector
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("conformance vector %s: %w", file, err)
	}
	v.File = file
	switch {
	case v.Name == "":
		return v, fmt.Errorf("conformance vector %s: \"name\" is required", file)
	case v.Role != abi.RoleFilter && v.Role != abi.RoleAct && v.Role != RoleAny:
		return v, fmt.Errorf("conformance vector %s: role %q is not filter, act or any", file, v.Role)
	case v.RawInput == nil && len(v.Event) == 0:
		return v, fmt.Errorf("conformance vector %s: want \"event\" or \"raw_input\"", file)
	}
	e := v.Expect
	n := 0
	if e.Error != nil {
		n++
	}
	if e.NoTrap {
		n++
	}
	if e.Pass != nil || e.ReasonContains != "" || len(e.Effects) > 0 {
		n++
	}
	if n != 1 {
		return v, fmt.Errorf("conformance vector %s: expect must hold exactly one of a result (pass/reason_contains/effects), \"error\" or \"no_trap\"", file)
	}
	return v, nil
}
