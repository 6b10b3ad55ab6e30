package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
)

// Options tune a run.
type Options struct {
	// VectorDirs hold plugin-specific vectors (*.json), run after the
	// generic ones.
	VectorDirs []string
	// Limits for the plugin under test; zero fields take pluginhost defaults.
	Limits pluginhost.Limits
	// PluginConfig is what the plugin reads with config_get (the
	// operator's [plugins.NAME].config in observer.toml).
	PluginConfig map[string]string
}

// Result is the outcome of one check.
type Result struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
	File string `json:"file,omitempty"`
	Pass bool   `json:"pass"`
	// Got summarises what the plugin did: "result pass=true", "error
	// result code=bad_input", "trap", ...
	Got string `json:"got,omitempty"`
	// Diff lists what differed, as "field: want X, got Y".
	Diff []string `json:"diff,omitempty"`
	// DurationUS is the time the check's calls took, in microseconds.
	DurationUS int64 `json:"duration_us,omitempty"`
}

// Report is the outcome of a run. It marshals to JSON as is (the shape of
// `observer plugin test --json`).
type Report struct {
	Path     string        `json:"path"`
	Plugin   string        `json:"plugin,omitempty"`
	Manifest *abi.Manifest `json:"manifest,omitempty"`
	// HostABI is the ABI version of the host that ran the suite.
	HostABI string `json:"host_abi"`
	// Notes are remarks that are not failures, such as a plugin written
	// for a newer ABI minor being tested as a plugin of this one.
	Notes   []string `json:"notes,omitempty"`
	Results []Result `json:"results"`
	Passed  int      `json:"passed"`
	Failed  int      `json:"failed"`
	// DurationMS is the wall time of the whole run.
	DurationMS int64 `json:"duration_ms"`
}

// OK reports whether every check passed (and at least one ran).
func (r *Report) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// Summary is "N passed, N failed".
func (r *Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed)
}

// MarshalJSON adds "ok" (OK()) and "summary" (Summary()) to the report's
// fields, so that a CI job needs no arithmetic.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
	}{(*plain)(r), r.OK(), r.Summary()})
}

// Write renders the report as text: one line per check, the diff of each
// failure indented under it, then the summary.
func (r *Report) Write(w io.Writer) error {
	var b bytes.Buffer
	name := r.Plugin
	if name == "" {
		name = "(not loaded)"
	}
	fmt.Fprintf(&b, "conformance: %s (%s)\n", name, r.Path)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
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
	res.Pass = len(res.Diff) == 0
	if res.Pass {
		r.Passed++
	} else {
		r.Failed++
	}
	r.Results = append(r.Results, res)
}

func (r *Report) finish(start time.Time) {
	r.DurationMS = time.Since(start).Milliseconds()
}

// Run checks the plugin in wasmPath: the module loads (imports, exports,
// describe, ABI version), the manifest is complete, every vector of every
// declared role gives its expected outcome within the limits, every result
// obeys SPEC §4, and the same vectors sent as ABI 1.x inputs carrying
// fields the plugin cannot know give the same outcomes (SPEC §7).
//
// The error is for problems with the run itself (an unreadable vector); a
// plugin that fails to load or fails vectors gives a Report with failures,
// not an error. Run loads the plugin into h (once per distinct vector
// limits) and closes it before returning.
func Run(ctx context.Context, h *pluginhost.Host, wasmPath string, opts Options) (*Report, error) {
	start := time.Now()
	vectors, err := LoadVectors(opts.VectorDirs...)
	if err != nil {
		return nil, err
	}
	rep := &Report{Path: wasmPath, HostABI: abi.VersionString}
	defer rep.finish(start)

	l := &loader{h: h, path: wasmPath, base: opts.Limits, config: opts.PluginConfig, plugins: map[pluginhost.Limits]*pluginhost.Plugin{}}
	defer l.close(context.WithoutCancel(ctx))
	p, err := l.get(ctx, nil)
	if err != nil {
		rep.add(Result{Name: "load and describe", Got: "refused", Diff: []string{err.Error()}})
		return rep, nil
	}
	m := p.Manifest()
	rep.Plugin, rep.Manifest = p.Name(), &m
	res, notes := checkManifest(m)
	rep.Notes = notes
	rep.add(res)

	// One forward-compatibility check per role, fed by every vector.
	future := map[string]*futureCheck{}
	for _, role := range m.Roles {
		future[role] = &futureCheck{Result: Result{Name: fmt.Sprintf("ABI %s inputs with unknown fields give the same outcomes", futureVersion), Role: role}}
	}
	for _, v := range vectors {
		roles := []string{v.Role}
		if v.Role == RoleAny {
			roles = m.Roles
		}
		for _, role := range roles {
			if !m.HasRole(role) {
				continue // a vector for a role this plugin does not play
			}
			res, base := runVector(ctx, l, v, role)
			rep.add(res)
			if fr := future[role]; base != nil && futureEligible(v) {
				checkFuture(ctx, p, v, role, base, fr)
			}
		}
	}
	for _, role := range m.Roles {
		if fr := future[role]; fr.n > 0 {
			fr.Got = fmt.Sprintf("%d vectors resent", fr.n)
			if len(fr.Diff) > maxFutureDiffs {
				n := len(fr.Diff) - maxFutureDiffs
				fr.Diff = append(fr.Diff[:maxFutureDiffs], fmt.Sprintf("... and %d more vectors", n))
			}
			rep.add(fr.Result)
		}
	}
	return rep, nil
}

// maxFutureDiffs caps the vectors listed by a failed forward-compatibility
// check: a plugin that rejects 1.1 inputs usually rejects all of them.
const maxFutureDiffs = 5

// loader keeps one loaded plugin per distinct set of limits.
type loader struct {
	h       *pluginhost.Host
	path    string
	base    pluginhost.Limits
	config  map[string]string
	plugins map[pluginhost.Limits]*pluginhost.Plugin
}

func (l *loader) get(ctx context.Context, vl *VectorLimits) (*pluginhost.Plugin, error) {
	lim := vl.apply(l.base)
	if p, ok := l.plugins[lim]; ok {
		return p, nil
	}
	p, err := l.h.Load(ctx, pluginhost.Spec{Path: l.path, Limits: lim, Config: l.config})
	if err != nil {
		return nil, err
	}
	l.plugins[lim] = p
	return p, nil
}

func (l *loader) close(ctx context.Context) {
	for _, p := range l.plugins {
		_ = p.Close(ctx)
	}
}

// checkManifest checks what SPEC §3 asks of a manifest, beyond what the
// host already refuses at load.
func checkManifest(m abi.Manifest) (Result, []string) {
	res := Result{Name: "describe: manifest", Got: fmt.Sprintf("abi %s, roles %v", m.ABI, m.Roles)}
	var notes []string
	major, minor, err := abi.ParseVersion(m.ABI)
	if err != nil || major != abi.Major {
		res.Diff = append(res.Diff, fmt.Sprintf("abi: want %d.x, got %q", abi.Major, m.ABI))
	}
	newer := err == nil && major == abi.Major && minor > abi.Minor
	if newer {
		notes = append(notes, fmt.Sprintf("the plugin asks for ABI %s, newer than this host's %s: it was loaded and tested as an ABI %s plugin (SPEC §7); roles, effects and fields of the newer minor were not tested", m.ABI, abi.VersionString, abi.VersionString))
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
	if m.HasRole(abi.RoleAct) && len(m.Capabilities.Effects) == 0 {
		res.Diff = append(res.Diff, `capabilities.effects: an act plugin must ask for the effect types it returns, got none`)
	}
	for _, e := range m.Capabilities.Effects {
		if e != abi.EffectHTTP && e != abi.EffectLog && !newer {
			res.Diff = append(res.Diff, fmt.Sprintf("capabilities.effects: %q is not an effect type of ABI %s (http, log)", e, abi.VersionString))
		}
	}
	for i, hst := range m.Capabilities.HTTPHosts {
		if hst == "" {
			res.Diff = append(res.Diff, fmt.Sprintf("capabilities.http_hosts[%d]: want a host name, got an empty string", i))
		}
	}
	return res, notes
}
