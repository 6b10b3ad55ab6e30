package observer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fraiseql/observer/abi"
)

// FilterFunc decides whether an event continues to the observer's action.
// Returning an error (use Errorf or Retryable for control over retries)
// produces an error result.
type FilterFunc func(in *Input) (FilterResult, error)

// ActFunc turns an event into effects for the host to execute.
type ActFunc func(in *Input) (ActResult, error)

// Plugin describes the plugin and holds its handlers. The roles in the
// manifest are those with a non-nil handler.
type Plugin struct {
	Name         string
	Version      string
	Description  string
	Capabilities Capabilities
	Filter       FilterFunc
	Act          ActFunc
	// LazyImages leaves the row images Event.Before and Event.After nil
	// in the inputs given to the handlers: Lookup finds paths in them by
	// scanning the input's JSON text instead, and DecodeImages builds the
	// two maps for a handler that needs them. The values are the same
	// either way. Set it when the handlers read a few fields through
	// Lookup: building the maps is the largest part of decoding an input.
	LazyImages bool
}

// registered is the plugin of this module. A WebAssembly module holds
// exactly one plugin, set once from init(); the exports read it.
var registered *Plugin

// Register sets the module's plugin. Call it once, from init().
func Register(p Plugin) {
	if registered != nil {
		panic("observer.Register called twice: a module holds one plugin")
	}
	registered = &p
}

// Manifest returns what describe reports for the registered plugin.
func (p *Plugin) Manifest() Manifest {
	m := Manifest{
		ABI:          abi.VersionString,
		Name:         p.Name,
		Version:      p.Version,
		Description:  p.Description,
		Capabilities: p.Capabilities,
		Roles:        []string{},
	}
	if p.Filter != nil {
		m.Roles = append(m.Roles, abi.RoleFilter)
	}
	if p.Act != nil {
		m.Roles = append(m.Roles, abi.RoleAct)
	}
	return m
}

// Describe returns the describe export's JSON output for the registered
// plugin.
func Describe() []byte {
	p := registered
	if p == nil {
		p = &Plugin{Name: "unregistered"}
	}
	b, _ := json.Marshal(p.Manifest())
	return b
}

// Invoke runs the registered plugin's handler for role on a JSON input and
// returns the JSON result, exactly as the export does. Use it to test a
// plugin's logic natively.
func Invoke(role string, input []byte) []byte {
	p := registered
	if p == nil {
		p = &Plugin{}
	}
	return p.Invoke(role, input)
}

// Invoke is the method form of the package-level Invoke.
func (p *Plugin) Invoke(role string, input []byte) []byte {
	return p.invoke(nil, role, string(input))
}

// invoke appends the result for input to dst. The decoded strings share
// input's memory, so the export passes the buffer it read without copying.
func (p *Plugin) invoke(dst []byte, role, input string) []byte {
	in, raw, inErr := decodeInput(input, p.LazyImages)
	if raw != nil {
		registerImages(in, raw)
		defer unregisterImages(in)
	}
	switch role {
	case abi.RoleFilter:
		res := FilterResult{}
		switch {
		case inErr != nil:
			res.Error = inErr
		case p.Filter == nil:
			res.Error = Errorf(CodeNoHandler, "plugin %q has no filter handler", p.Name)
		default:
			r, err := p.Filter(in)
			res = r
			if err != nil {
				res = FilterResult{Error: toABIError(err)}
			}
		}
		res.ABI = abi.VersionString
		if out, ok := appendFilterResult(dst, &res, true); ok {
			return out
		}
		return append(dst, mustMarshal(res)...)
	case abi.RoleAct:
		res := ActResult{}
		switch {
		case inErr != nil:
			res.Error = inErr
		case p.Act == nil:
			res.Error = Errorf(CodeNoHandler, "plugin %q has no act handler", p.Name)
		default:
			r, err := p.Act(in)
			res = r
			if err != nil {
				res = ActResult{Error: toABIError(err)}
			}
		}
		if res.Effects == nil {
			res.Effects = []Effect{}
		}
		res.ABI = abi.VersionString
		if out, ok := appendActResult(dst, &res, true); ok {
			return out
		}
		return append(dst, mustMarshal(res)...)
	}
	return append(dst, mustMarshal(struct {
		ABI   string `json:"abi"`
		Error *Error `json:"error"`
	}{abi.VersionString, Errorf(CodeNoHandler, "unknown role %q", role)})...)
}

// DecodeInput decodes and checks a role input. Numbers in the row images
// stay exact (json.Number). The error is ready to return in a result.
//
// The result is what encoding/json (with UseNumber) would decode, and every
// error message is encoding/json's: a reflection-free decoder handles the
// inputs a host sends and hands anything unusual to encoding/json.
func DecodeInput(b []byte) (*Input, *Error) {
	in, _, err := decodeInput(string(b), false)
	return in, err
}

// decodeInput decodes and checks s; with lazy, the images may be left as
// text (returned) for Lookup to scan.
func decodeInput(s string, lazy bool) (*Input, *rawImages, *Error) {
	in, raw, ok := decodeInputFast(s, lazy)
	if !ok {
		var err *Error
		if in, err = decodeInputStd([]byte(s)); err != nil {
			return nil, nil, err
		}
	}
	if in.ABI != abi.VersionString { // the usual case needs no parsing
		major, _, err := abi.ParseVersion(in.ABI)
		if err != nil {
			return nil, nil, Errorf(CodeBadInput, "input: %v", err)
		}
		if major != abi.Major {
			return nil, nil, Errorf(CodeBadInput, "input is ABI %s but this plugin speaks ABI %d.x", in.ABI, abi.Major)
		}
	}
	if in.Event == nil {
		return nil, nil, Errorf(CodeBadInput, "input has no event")
	}
	return in, raw, nil
}

// decodeInputStd decodes with encoding/json: the reference for the fast
// path and the source of every decoding error message.
func decodeInputStd(b []byte) (*Input, *Error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, Errorf(CodeBadInput, "input is empty: want an ABI %s input object", abi.VersionString)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return nil, Errorf(CodeBadInput, "input is not a valid ABI input object: %v", err)
	}
	// Decoder.More is no test for trailing data: it answers false
	// before a stray "}" or "]".
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, Errorf(CodeBadInput, "input has trailing data after the JSON object")
	}
	return &in, nil
}

func toABIError(err error) *Error {
	var e *abi.Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Message: err.Error()}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// A handler put something unencodable in a result (a NaN, a
		// channel in a map): report it as an error result instead.
		b, _ = json.Marshal(struct {
			ABI   string `json:"abi"`
			Error *Error `json:"error"`
		}{abi.VersionString, &Error{Message: fmt.Sprintf("plugin result cannot be encoded as JSON: %v", err), Code: "bad_result"}})
	}
	return b
}
