package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fraiseql/observer/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Plugin is a loaded module with a pool of instances. It is safe for
// concurrent use: each call takes an idle instance (or creates one, up to
// Limits.MaxInstances, or waits), and gives it back afterwards unless the
// call trapped, timed out or hit a limit, in which case the instance is
// closed and a fresh one is made on demand.
type Plugin struct {
	h        *Host
	name     string
	path     string
	limits   Limits
	config   map[string]string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	// interrupt is how calls are stopped: InterruptInstrument if the
	// module was rewritten, else InterruptContext.
	interrupt InterruptMode
	exports   map[string]api.FunctionDefinition
	hasInit   bool
	// hasStart: the instrumented module exports its start function as
	// instrument.StartExportName, to be called after instantiation.
	hasStart bool
	// nameFromFile: Spec.Name was empty, so the manifest's name replaces
	// the file name once describe has run.
	nameFromFile bool
	manifest     abi.Manifest
	log          *slog.Logger

	idle  chan *instance // idle instances
	slots chan struct{}  // one token per live instance
	done  chan struct{}  // closed by Close

	closeOnce sync.Once

	// live holds every instance not yet closed, so that Close can
	// interrupt calls in flight (instrumented modules do not notice that
	// their module was closed).
	liveMu sync.Mutex
	live   map[*instance]struct{}

	created, discarded atomic.Uint64
	// linearBytes and kernelBytes total the capacity of the linear and
	// kernel memories of the instances not yet closed.
	linearBytes, kernelBytes atomic.Int64
}

// PoolStats describes a plugin's instances and the memory they hold.
type PoolStats struct {
	// Live counts the instances not yet closed, idle or serving a call;
	// never more than Limits.MaxInstances.
	Live int
	// Idle counts the instances waiting in the pool.
	Idle int
	// Created counts the instances made since Load, the first included
	// (not those whose start function or _initialize failed).
	Created uint64
	// Discarded counts the instances closed because a call trapped, timed
	// out, hit a limit or was canceled (their state is unknown); each is
	// replaced on demand by a fresh one.
	Discarded uint64
	// LinearMemoryBytes is the capacity of the live instances' linear
	// memories, KernelMemoryBytes that of their kernel memories (as of
	// their last call). Neither counts the WebAssembly call stacks, which
	// wazero keeps outside both (see the package comment, "Hostile
	// plugins").
	LinearMemoryBytes int64
	KernelMemoryBytes int64
}

// Stats returns the plugin's instance counts and memory. It is safe to
// call at any time, also during calls.
func (p *Plugin) Stats() PoolStats {
	p.liveMu.Lock()
	live := len(p.live)
	p.liveMu.Unlock()
	return PoolStats{
		Live: live, Idle: len(p.idle),
		Created: p.created.Load(), Discarded: p.discarded.Load(),
		LinearMemoryBytes: p.linearBytes.Load(), KernelMemoryBytes: p.kernelBytes.Load(),
	}
}

// Name returns the plugin's name (Spec.Name, or the file name).
func (p *Plugin) Name() string { return p.name }

// Manifest returns what the plugin's describe export reported.
func (p *Plugin) Manifest() abi.Manifest { return p.manifest }

// Path returns the module's file.
func (p *Plugin) Path() string { return p.path }

// Limits returns the limits in force (defaults filled in).
func (p *Plugin) Limits() Limits { return p.limits }

// Interrupt returns how this plugin's calls are stopped:
// InterruptInstrument if its module was instrumented, InterruptContext if
// the host is configured so or the module could not be instrumented.
func (p *Plugin) Interrupt() InterruptMode { return p.interrupt }

func (p *Plugin) callError(export string, kind ErrorKind, err error) *CallError {
	return &CallError{Plugin: p.name, Export: export, Kind: kind, Err: err}
}

// Close stops calls in flight and releases the plugin's instances and runtime.
func (p *Plugin) Close(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() {
		close(p.done)
		p.liveMu.Lock()
		for in := range p.live {
			in.interrupt(stateClosed)
		}
		p.liveMu.Unlock()
		err = p.rt.Close(ctx) // closes every instance, idle or busy
		if p.h != nil {
			p.h.forget(p)
		}
	})
	return err
}

// acquire returns an instance for one call.
func (p *Plugin) acquire(ctx context.Context, export string) (*instance, *CallError) {
	select {
	case <-p.done:
		return nil, p.callError(export, KindCanceled, ErrClosed)
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			var ce *CallError
			if errors.As(err, &ce) {
				return nil, ce
			}
			return nil, p.callError(export, KindTrap, err)
		}
		return in, nil
	case <-ctx.Done():
		return nil, p.callError(export, KindCanceled, context.Cause(ctx))
	case <-p.done:
		return nil, p.callError(export, KindCanceled, ErrClosed)
	}
}

// release returns a healthy instance to the pool and discards any other.
func (p *Plugin) release(in *instance) {
	in.accountKernel()
	healthy := in.healthy()
	if healthy {
		select {
		case <-p.done:
		default:
			p.idle <- in // never blocks: at most MaxInstances exist
			return
		}
	} else {
		p.discarded.Add(1)
	}
	in.close()
	<-p.slots
}

// Call runs an export on input and returns a copy of its output. The
// export takes no parameters and returns an i32, 0 for success (the
// Extism convention). Errors are *CallError.
func (p *Plugin) Call(ctx context.Context, export string, input []byte) ([]byte, error) {
	in, cerr := p.acquire(ctx, export)
	if cerr != nil {
		return nil, cerr
	}
	out, cerr := in.invoke(ctx, export, input)
	var res []byte
	if cerr == nil {
		res = bytes.Clone(out)
	}
	p.release(in)
	if cerr != nil {
		return nil, cerr
	}
	return res, nil
}

// callJSON encodes v as the input of export (or sends raw if v is nil),
// calls it, and decodes the output with decode before the instance goes
// back to the pool.
func (p *Plugin) callJSON(ctx context.Context, export string, v any, raw []byte, decode func([]byte) *CallError) *CallError {
	in, cerr := p.acquire(ctx, export)
	if cerr != nil {
		return cerr
	}
	defer p.release(in)
	input := raw
	if v != nil {
		in.encBuf.Reset()
		if err := in.enc.Encode(v); err != nil {
			return p.callError(export, KindBadOutput, fmt.Errorf("encode the input: %w", err))
		}
		input = in.encBuf.Bytes()
	}
	out, cerr := in.invoke(ctx, export, input)
	if cerr != nil {
		return cerr
	}
	return decode(out)
}

// withABI returns in with its ABI field set.
func withABI(in *abi.Input) *abi.Input {
	if in.ABI != "" {
		return in
	}
	c := *in
	c.ABI = abi.VersionString
	return &c
}

// Filter calls the filter role. A guest-reported error is returned both in
// the result and as a *CallError of KindGuest.
func (p *Plugin) Filter(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
	return p.filter(ctx, withABI(in), nil)
}

// FilterRaw is Filter with the input given as bytes, sent as is (the
// conformance runner uses it to send malformed input).
func (p *Plugin) FilterRaw(ctx context.Context, input []byte) (abi.FilterResult, error) {
	return p.filter(ctx, nil, input)
}

func (p *Plugin) filter(ctx context.Context, in *abi.Input, raw []byte) (abi.FilterResult, error) {
	var res abi.FilterResult
	var v any
	if in != nil {
		v = in
	}
	cerr := p.callJSON(ctx, abi.RoleFilter, v, raw, func(out []byte) *CallError {
		r, kind, err := decodeFilterResult(out)
		res = r
		if err != nil {
			return p.callError(abi.RoleFilter, kind, err)
		}
		return nil
	})
	if cerr != nil {
		return res, cerr
	}
	return res, nil
}

// Act calls the act role and checks the effects it returns: each must be
// of a known type with its member set, and of a type the manifest asks for
// in capabilities.effects.
func (p *Plugin) Act(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
	return p.act(ctx, withABI(in), nil)
}

// ActRaw is Act with the input given as bytes, sent as is.
func (p *Plugin) ActRaw(ctx context.Context, input []byte) (abi.ActResult, error) {
	return p.act(ctx, nil, input)
}

func (p *Plugin) act(ctx context.Context, in *abi.Input, raw []byte) (abi.ActResult, error) {
	var res abi.ActResult
	var v any
	if in != nil {
		v = in
	}
	cerr := p.callJSON(ctx, abi.RoleAct, v, raw, func(out []byte) *CallError {
		r, kind, err := decodeActResult(out, p.manifest.Capabilities.Effects)
		res = r
		if err != nil {
			return p.callError(abi.RoleAct, kind, err)
		}
		return nil
	})
	if cerr != nil {
		return res, cerr
	}
	return res, nil
}

// decodeFilterResult turns a filter export's output into its result. On
// failure the kind is KindGuest for an error result (returned in the
// result too) and KindBadOutput for anything else: output that is not one
// JSON object, a result of another ABI major, or one with neither "pass"
// nor "error". It never panics, whatever out holds (FuzzDecodeResult).
func decodeFilterResult(out []byte) (abi.FilterResult, ErrorKind, error) {
	var raw struct {
		ABI    string     `json:"abi"`
		Pass   *bool      `json:"pass"`
		Reason string     `json:"reason"`
		Error  *abi.Error `json:"error"`
	}
	if err := decodeResult(out, &raw); err != nil {
		return abi.FilterResult{}, KindBadOutput, err
	}
	if err := checkABI(raw.ABI); err != nil {
		return abi.FilterResult{}, KindBadOutput, err
	}
	res := abi.FilterResult{ABI: raw.ABI, Reason: raw.Reason, Error: raw.Error}
	if raw.Error != nil {
		if raw.Error.Message == "" {
			raw.Error.Message = "(no message)"
		}
		return res, KindGuest, raw.Error
	}
	if raw.Pass == nil {
		return res, KindBadOutput, errors.New(`filter result has neither "pass" nor "error"`)
	}
	res.Pass = *raw.Pass
	return res, 0, nil
}

// decodeActResult turns an act export's output into its result and checks
// each effect: of a known type with its member set, and of a type in
// declared (the manifest's capabilities.effects). Failures are classified
// as in decodeFilterResult.
func decodeActResult(out []byte, declared []string) (abi.ActResult, ErrorKind, error) {
	var raw struct {
		ABI     string        `json:"abi"`
		Effects *[]abi.Effect `json:"effects"`
		Error   *abi.Error    `json:"error"`
	}
	if err := decodeResult(out, &raw); err != nil {
		return abi.ActResult{}, KindBadOutput, err
	}
	if err := checkABI(raw.ABI); err != nil {
		return abi.ActResult{}, KindBadOutput, err
	}
	res := abi.ActResult{ABI: raw.ABI, Error: raw.Error}
	if raw.Error != nil {
		if raw.Error.Message == "" {
			raw.Error.Message = "(no message)"
		}
		return res, KindGuest, raw.Error
	}
	if raw.Effects == nil {
		return res, KindBadOutput, errors.New(`act result has neither "effects" nor "error"`)
	}
	res.Effects = *raw.Effects
	for i, e := range res.Effects {
		if err := checkEffect(e, declared); err != nil {
			return res, KindBadOutput, fmt.Errorf("effects[%d]: %w", i, err)
		}
	}
	return res, 0, nil
}

func decodeResult(out []byte, v any) error {
	if len(bytes.TrimSpace(out)) == 0 {
		return errors.New("the export set no output; want a JSON result object")
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("output is not a JSON result object: %v (output starts %q)", err, head(out))
	}
	// Anything but white space after the object is trailing data.
	// (Decoder.More is no test: it answers false before a stray "}".)
	if len(bytes.TrimSpace(out[dec.InputOffset():])) > 0 {
		return fmt.Errorf("output has trailing data after the JSON object (output starts %q)", head(out))
	}
	return nil
}

func head(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// checkABI accepts a result with no "abi" field or one of this major.
func checkABI(v string) error {
	if v == "" {
		return nil
	}
	major, _, err := abi.ParseVersion(v)
	if err != nil {
		return fmt.Errorf("result: %w", err)
	}
	if major != abi.Major {
		return fmt.Errorf("result is ABI %s; this host speaks ABI %d.x", v, abi.Major)
	}
	return nil
}

func checkEffect(e abi.Effect, declared []string) error {
	switch e.Type {
	case abi.EffectHTTP:
		if e.HTTP == nil {
			return errors.New(`type "http" without an "http" member`)
		}
		if e.HTTP.URL == "" {
			return errors.New("http effect has no url")
		}
		if e.HTTP.Body != "" && len(e.HTTP.BodyJSON) > 0 {
			return errors.New("http effect sets both body and body_json")
		}
	case abi.EffectLog:
		if e.Log == nil {
			return errors.New(`type "log" without a "log" member`)
		}
	default:
		return fmt.Errorf("unknown effect type %q (this host knows http and log)", e.Type)
	}
	if !slices.Contains(declared, e.Type) {
		return fmt.Errorf("a %q effect, but the manifest does not ask for it in capabilities.effects %q", e.Type, declared)
	}
	return nil
}

// describe calls the describe export on a first instance, checks the
// manifest and keeps the instance in the pool.
func (p *Plugin) describe(ctx context.Context) error {
	in, cerr := p.acquire(ctx, abi.ExportDescribe)
	if cerr != nil {
		return cerr
	}
	defer p.release(in)
	out, cerr := in.invoke(ctx, abi.ExportDescribe, nil)
	if cerr != nil {
		return cerr
	}
	var m abi.Manifest
	if len(bytes.TrimSpace(out)) == 0 {
		return errors.New("describe set no output; want the manifest JSON")
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return fmt.Errorf("describe output is not a manifest: %v (output starts %q)", err, head(out))
	}
	major, minor, err := abi.ParseVersion(m.ABI)
	if err != nil {
		return fmt.Errorf("describe: manifest %w", err)
	}
	if major != abi.Major {
		return fmt.Errorf("the plugin speaks ABI %s; this host speaks ABI %s and refuses any other major version", m.ABI, abi.VersionString)
	}
	newer := minor > abi.Minor
	if newer {
		p.log.Warn("plugin asks for a newer ABI minor than this host; loading it as "+abi.VersionString+": features of the newer minor are not available",
			slog.String("plugin", p.name), slog.String("path", p.path), slog.String("plugin_abi", m.ABI), slog.String("host_abi", abi.VersionString))
	}
	if len(m.Roles) == 0 {
		return errors.New("the manifest declares no roles")
	}
	var roles []string
	for _, r := range m.Roles {
		switch r {
		case abi.RoleFilter, abi.RoleAct:
		default:
			if newer {
				continue // a role of the newer minor: not offered by this host
			}
			return fmt.Errorf("the manifest declares unknown role %q (ABI %s roles: filter, act)", r, abi.VersionString)
		}
		if _, err := in.fn(r); err != nil {
			return fmt.Errorf("the manifest declares role %q but: %w", r, err)
		}
		roles = append(roles, r)
	}
	m.Roles = roles
	if p.nameFromFile && m.Name != "" {
		p.name = m.Name
	}
	p.manifest = m
	return nil
}
