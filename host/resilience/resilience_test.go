package resilience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestDelayWithoutJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		policy Policy
		want   []time.Duration // for attempts 1, 2, 3, …
	}{
		{"exponential", Policy{Strategy: Exponential, MaxAttempts: 10, InitialDelay: 100 * ms, MaxDelay: time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"linear", Policy{Strategy: Linear, MaxAttempts: 10, InitialDelay: 300 * ms, MaxDelay: time.Second},
			[]time.Duration{300 * ms, 600 * ms, 900 * ms, time.Second, time.Second}},
		{"fixed", Policy{Strategy: Fixed, MaxAttempts: 10, InitialDelay: 250 * ms, MaxDelay: time.Second},
			[]time.Duration{250 * ms, 250 * ms, 250 * ms}},
		{"fixed capped", Policy{Strategy: Fixed, MaxAttempts: 10, InitialDelay: 2 * time.Second, MaxDelay: time.Second},
			[]time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.policy.Delay(i+1, nil); got != want {
					t.Errorf("Delay(%d) = %s, want %s", i+1, got, want)
				}
			}
		})
	}
}

func TestDelayHugeAttemptSaturates(t *testing.T) {
	for _, s := range []Strategy{Exponential, Linear, Fixed} {
		p := Policy{Strategy: s, MaxAttempts: 5, InitialDelay: time.Hour, MaxDelay: 48 * time.Hour}
		for _, attempt := range []int{40, 63, 64, 100, 1 << 30, int(^uint(0) >> 1)} {
			got := p.Delay(attempt, nil)
			if got <= 0 || got > p.MaxDelay {
				t.Errorf("%s Delay(%d) = %s, want in (0, %s]", s, attempt, got, p.MaxDelay)
			}
		}
	}
	p := DefaultPolicy()
	p.Jitter = false
	if got := p.Delay(0, nil); got != p.InitialDelay {
		t.Errorf("Delay(0) = %s, want the first delay %s", got, p.InitialDelay)
	}
}

func TestDelayJitterBounds(t *testing.T) {
	p := DefaultPolicy()
	for attempt := 1; attempt <= 12; attempt++ {
		nj := p
		nj.Jitter = false
		d := nj.Delay(attempt, nil)
		lo := p.Delay(attempt, func() float64 { return 0 })
		hi := p.Delay(attempt, func() float64 { return 0.999999999 })
		if lo != d/2 {
			t.Errorf("attempt %d: jitter low end %s, want d/2 = %s", attempt, lo, d/2)
		}
		if hi > d || hi < d-d/1000 {
			t.Errorf("attempt %d: jitter high end %s, want just below %s", attempt, hi, d)
		}
		// The real random source stays in bounds and actually varies.
		seen := map[time.Duration]bool{}
		for range 200 {
			got := p.Delay(attempt, nil)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d: jittered %s outside [%s, %s]", attempt, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct jittered delays in 200 draws", attempt, len(seen))
		}
	}
	// A broken random source cannot push the delay out of bounds.
	for _, r := range []float64{-1, 1, 7} {
		if got := p.Delay(1, func() float64 { return r }); got != p.InitialDelay/2 {
			t.Errorf("rnd()=%v: got %s, want %s", r, got, p.InitialDelay/2)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Policy)
		wants []string
	}{
		{"bad strategy", func(p *Policy) { p.Strategy = "quadratic" }, []string{`strategy "quadratic"`}},
		{"zero attempts", func(p *Policy) { p.MaxAttempts = 0 }, []string{"max_attempts 0 is out of range"}},
		{"too many attempts", func(p *Policy) { p.MaxAttempts = 5000 }, []string{"max_attempts 5000"}},
		{"zero initial", func(p *Policy) { p.InitialDelay = 0 }, []string{"initial_delay 0s must be positive"}},
		{"initial above max", func(p *Policy) { p.InitialDelay = time.Minute }, []string{"initial_delay 1m0s is greater than max_delay 30s"}},
		{"several", func(p *Policy) { p.Strategy = ""; p.MaxAttempts = -1; p.MaxDelay = 0 },
			[]string{`strategy ""`, "max_attempts -1", "max_delay 0s must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.edit(&p)
			err := p.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

type classified struct{ perm bool }

func (c classified) Error() string   { return fmt.Sprintf("classified(%v)", c.perm) }
func (c classified) Permanent() bool { return c.perm }

func TestPermanent(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", MarkPermanent(base), true},
		{"marked then wrapped twice", fmt.Errorf("effect 0: %w", fmt.Errorf("post: %w", MarkPermanent(base))), true},
		{"custom permanent", fmt.Errorf("x: %w", classified{true}), true},
		{"custom retryable", fmt.Errorf("x: %w", classified{false}), false},
		{"retryable wrapping permanent", fmt.Errorf("a: %w", &wrapper{classified{false}, MarkPermanent(base)}), true},
		{"joined, one permanent", errors.Join(io.EOF, fmt.Errorf("y: %w", MarkPermanent(base))), true},
		{"joined, none permanent", errors.Join(io.EOF, context.DeadlineExceeded), false},
		{"multi %w", fmt.Errorf("%w and %w", io.EOF, classified{true}), true},
		{"text only", errors.New("permanent error"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Permanent(tt.err); got != tt.want {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// wrapper is a retryable classified error that wraps another.
type wrapper struct {
	classified
	inner error
}

func (w *wrapper) Unwrap() error { return w.inner }

func TestMarkPermanent(t *testing.T) {
	if MarkPermanent(nil) != nil {
		t.Fatal("MarkPermanent(nil) != nil")
	}
	err := MarkPermanent(io.ErrUnexpectedEOF)
	if err.Error() != io.ErrUnexpectedEOF.Error() {
		t.Errorf("text changed: %q", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("errors.Is lost the wrapped error")
	}
	var pe *PermanentError
	if !errors.As(fmt.Errorf("w: %w", err), &pe) {
		t.Error("errors.As cannot find *PermanentError")
	}
}

func BenchmarkDelay(b *testing.B) {
	p := DefaultPolicy()
	for i := range b.N {
		_ = p.Delay(i%8+1, nil)
	}
}
