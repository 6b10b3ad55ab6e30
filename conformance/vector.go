package conformance

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
)

//go:embed vectors/*.json
var genericVectors embed.FS

// RoleAny marks a vector that runs on every role the plugin declares.
const RoleAny = "any"

// Limit names, as in Expect.Limit; they are pluginhost.ErrorKind's strings.
const (
	LimitTimeout = "timeout"
	LimitMemory  = "memory limit"
	LimitOutput  = "output too large"
)

// maxRepeat bounds Vector.Repeat so that a typo cannot stall a CI job.
const maxRepeat = 10000

// Vector is one conformance case.
type Vector struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Role        string           `json:"role"`
	Config      json.RawMessage  `json:"config,omitempty"`
	Event       json.RawMessage  `json:"event,omitempty"`
	RawInput    *string          `json:"raw_input,omitempty"`
	Context     *abi.CallContext `json:"context,omitempty"`
	// Repeat makes the same call this many times in a row on one instance
	// (default 1). Every outcome must be the same: a plugin keeps no state
	// between calls (SPEC §2) and must not leak its way into a limit.
	Repeat int `json:"repeat,omitempty"`
	// Limits override the run's limits for this vector.
	Limits *VectorLimits `json:"limits,omitempty"`
	Expect Expect        `json:"expect"`

	// File is where the vector came from ("generic:name.json" or a path).
	File string `json:"-"`
}

// VectorLimits are per-vector overrides of Options.Limits; zero fields keep
// the run's value.
type VectorLimits struct {
	MemoryBytes    uint64 `json:"memory_bytes,omitempty"`
	Timeout        string `json:"timeout,omitempty"` // a Go duration: "50ms", "2s"
	MaxOutputBytes int    `json:"max_output_bytes,omitempty"`

	timeout time.Duration
}

// apply lays l over base.
func (l *VectorLimits) apply(base pluginhost.Limits) pluginhost.Limits {
	if l == nil {
		return base
	}
	if l.MemoryBytes != 0 {
		base.MemoryBytes = l.MemoryBytes
	}
	if l.timeout != 0 {
		base.Timeout = l.timeout
	}
	if l.MaxOutputBytes != 0 {
		base.MaxOutputBytes = l.MaxOutputBytes
	}
	return base
}

// Expect is a vector's expected outcome: exactly one of a result
// (Pass/ReasonContains/Effects), Error, NoTrap or Limit.
type Expect struct {
	Pass           *bool           `json:"pass,omitempty"`
	ReasonContains string          `json:"reason_contains,omitempty"`
	Effects        json.RawMessage `json:"effects,omitempty"`
	Error          *ExpectError    `json:"error,omitempty"`
	NoTrap         bool            `json:"no_trap,omitempty"`
	// Limit: the call must be stopped by this limit ("timeout", "memory
	// limit", "output too large") rather than trap or return.
	Limit string `json:"limit,omitempty"`
}

// ExpectError describes an expected error result; empty fields match anything.
type ExpectError struct {
	Code            string `json:"code,omitempty"`
	MessageContains string `json:"message_contains,omitempty"`
	Retryable       *bool  `json:"retryable,omitempty"`
}

func (e Expect) String() string {
	switch {
	case e.Error != nil:
		return "an error result"
	case e.NoTrap:
		return "a result or an error result"
	case e.Limit != "":
		return "the " + e.Limit + " limit to stop the call"
	}
	return "a result"
}

// LoadVectors returns the generic vectors followed by those in dirs, each
// directory's files in name order. A vector that cannot be parsed is an
// error naming its file.
func LoadVectors(dirs ...string) ([]Vector, error) {
	out, err := GenericVectors()
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		vs, err := LoadDir(d)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

// GenericVectors returns the vectors every plugin is run against, in name
// order (conformance/vectors/, embedded in the binary).
func GenericVectors() ([]Vector, error) {
	names, err := fs.Glob(genericVectors, "vectors/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Vector, 0, len(names))
	for _, n := range names {
		b, err := genericVectors.ReadFile(n)
		if err != nil {
			return nil, err
		}
		v, err := ParseVector(b, "generic:"+filepath.Base(n))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// LoadDir reads every *.json vector in dir, in name order. A directory
// without any is an error: a mistyped --vectors path must not pass
// silently.
func LoadDir(dir string) ([]Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("conformance vectors %s: %w", dir, err)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("conformance vectors: %w", err)
		}
		return nil, fmt.Errorf("conformance vectors: no *.json files in %s", dir)
	}
	sort.Strings(files)
	out := make([]Vector, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("conformance vectors: %w", err)
		}
		v, err := ParseVector(b, f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ParseVector parses and checks one vector file; file names it in errors.
func ParseVector(b []byte, file string) (Vector, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v Vector
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("conformance vector %s: %w", file, err)
	}
	// Decoder.More is no test for trailing data: it answers false
	// before a stray "}" or "]".
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return v, fmt.Errorf("conformance vector %s: trailing data after the vector object", file)
	}
	v.File = file
	fail := func(format string, args ...any) (Vector, error) {
		return v, fmt.Errorf("conformance vector %s: "+format, append([]any{file}, args...)...)
	}
	switch {
	case v.Name == "":
		return fail(`"name" is required`)
	case v.Role != abi.RoleFilter && v.Role != abi.RoleAct && v.Role != RoleAny:
		return fail("role %q is not filter, act or any", v.Role)
	case v.RawInput == nil && len(v.Event) == 0:
		return fail(`want "event" or "raw_input"`)
	case v.RawInput != nil && (len(v.Event) > 0 || len(v.Config) > 0 || v.Context != nil):
		return fail(`"raw_input" is sent verbatim: it cannot be combined with "event", "config" or "context"`)
	case v.Repeat < 0 || v.Repeat > maxRepeat:
		return fail("repeat %d: want 1 to %d", v.Repeat, maxRepeat)
	}
	if v.Limits != nil && v.Limits.Timeout != "" {
		d, err := time.ParseDuration(v.Limits.Timeout)
		if err != nil || d <= 0 {
			return fail("limits.timeout %q: want a positive duration such as \"100ms\"", v.Limits.Timeout)
		}
		v.Limits.timeout = d
	}
	if v.Limits != nil && v.Limits.MaxOutputBytes < 0 {
		return fail("limits.max_output_bytes %d is negative", v.Limits.MaxOutputBytes)
	}
	e := v.Expect
	n := 0
	if e.Error != nil {
		n++
	}
	if e.NoTrap {
		n++
	}
	if e.Limit != "" {
		n++
		switch e.Limit {
		case LimitTimeout, LimitMemory, LimitOutput:
		default:
			return fail("expect.limit %q: want %q, %q or %q", e.Limit, LimitTimeout, LimitMemory, LimitOutput)
		}
	}
	if e.Pass != nil || e.ReasonContains != "" || len(e.Effects) > 0 {
		n++
		if len(e.Effects) > 0 && v.Role != abi.RoleAct {
			return fail(`expect.effects needs "role": "act"`)
		}
		if (e.Pass != nil || e.ReasonContains != "") && v.Role != abi.RoleFilter {
			return fail(`expect.pass and expect.reason_contains need "role": "filter"`)
		}
		if len(e.Effects) > 0 {
			var effects []abi.Effect
			if err := json.Unmarshal(e.Effects, &effects); err != nil {
				return fail("expect.effects: want a list of effects: %v", err)
			}
		}
	}
	if n != 1 {
		return fail(`expect must hold exactly one of a result (pass/reason_contains/effects), "error", "no_trap" or "limit"`)
	}
	return v, nil
}
