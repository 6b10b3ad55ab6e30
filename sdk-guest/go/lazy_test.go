package observer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
)

var lazyPaths = []string{
	"after", "before", "after.status", "after.amount", "after.address", "after.address.city", "before.address.city",
	"after.items", "after.items.0", "after.items.1.sku", "after.items.2.sku", "after.items.+1.sku", "after.items.-1", "after.items.x",
	"after.gone", "after.gone.x", "after.nope", "after.status.x", "event", "event.after", "event.after.amount", "event.before.status",
	"event.id", "id", "op", "changed_fields.0", "context.now", "after.k\u00e9y", "after.dup", "after.dup.b", "after.", "after..x",
	" after.status ", "after.a.b.c.d",
}

var lazyInputs = []string{
	sampleInput,
	benchInput,
	`{"abi":"1.0","event":{"before":null,"after":{"k\u00e9y":"\u00e9\ud83d\ude80","dup":{"a":1},"dup":{"b":[{}]},"gone":null,"a":{"b":{"c":{"d":[true]}}}}}}`,
	`{"abi":"1.0","event":{"after":{"items":[]}}}`,
	`{"abi":"1.0","event":{"op":"DELETE"}}`,
	`{"abi":"1.0","event":{"after":{"a":` + strings.Repeat(`{"b":[`, 80) + strings.Repeat(`]}`, 80) + `,"status":1}}}`,
	`{"abi":"1.0","event":{"after":{}, "before":{"address":[1]}}}`,
	// Handed to encoding/json (duplicate key): images decoded as maps.
	`{"abi":"1.0","event":{"after":{"status":"x"},"id":"a","id":"b"}}`,
}

// lookups runs every path through Lookup inside a handler of p and, last,
// returns the event after DecodeImages.
func lookups(t *testing.T, lazy bool, input string) (got []any, ev Event) {
	t.Helper()
	p := &Plugin{Name: "t", LazyImages: lazy, Filter: func(in *Input) (FilterResult, error) {
		for _, path := range lazyPaths {
			v, ok := Lookup(in, path)
			got = append(got, v, ok)
		}
		DecodeImages(in)
		ev = *in.Event
		return Pass(""), nil
	}}
	if out := p.Invoke(abi.RoleFilter, []byte(input)); !strings.Contains(string(out), `"pass":true`) {
		t.Fatalf("input %s: %s", input, out)
	}
	return got, ev
}

func TestLazyImagesMatchDecoded(t *testing.T) {
	for _, input := range lazyInputs {
		want, wantEv := lookups(t, false, input)
		got, gotEv := lookups(t, true, input)
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("input %.50q, Lookup(%q) %s = %#v, want %#v", input, lazyPaths[i/2], []string{"value", "ok"}[i%2], got[i], want[i])
			}
		}
		if !reflect.DeepEqual(gotEv, wantEv) {
			t.Errorf("input %.50q: DecodeImages gives %+v, want %+v", input, gotEv, wantEv)
		}
	}
	// The registry is empty after the calls.
	if n := len(onDemand.calls); n != 0 {
		t.Errorf("%d inputs still registered", n)
	}
}

func FuzzLazyImages(f *testing.F) {
	for _, s := range lazyInputs {
		f.Add(s, "after.status")
	}
	f.Fuzz(func(t *testing.T, input, path string) {
		var got, want []any
		for _, lazy := range []bool{false, true} {
			p := &Plugin{Name: "t", LazyImages: lazy, Filter: func(in *Input) (FilterResult, error) {
				v, ok := Lookup(in, path)
				DecodeImages(in)
				r := []any{v, ok, *in.Event}
				if lazy {
					got = r
				} else {
					want = r
				}
				return Pass(""), nil
			}}
			p.Invoke(abi.RoleFilter, []byte(input))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q, path %q: lazy %#v, decoded %#v", input, path, got, want)
		}
	})
}

// TestLazyImagesConcurrent: native tests may Invoke from many goroutines;
// each handler must see its own input's images.
func TestLazyImagesConcurrent(t *testing.T) {
	p := &Plugin{Name: "t", LazyImages: true, Filter: func(in *Input) (FilterResult, error) {
		v, _ := Lookup(in, "after.n")
		if v != in.Event.Key {
			return FilterResult{}, Errorf("mixed", "after.n %v in the call for key %s", v, in.Event.Key)
		}
		return Pass(""), nil
	}}
	done := make(chan string)
	for g := 0; g < 8; g++ {
		go func() {
			var bad string
			for i := 0; i < 200; i++ {
				k := strings.Repeat("k", g+1)
				out := string(p.Invoke(abi.RoleFilter, []byte(`{"abi":"1.0","event":{"key":"`+k+`","after":{"n":"`+k+`"}}}`)))
				if !strings.Contains(out, `"pass":true`) {
					bad = out
				}
			}
			done <- bad
		}()
	}
	for g := 0; g < 8; g++ {
		if bad := <-done; bad != "" {
			t.Error(bad)
		}
	}
}
