package observer

import (
	"testing"

	"github.com/fraiseql/observer/abi"
)

// Native benchmarks of the SDK's per-call work on the ~700-byte input of
// host/pluginhost's BenchmarkFilter: decoding (fast path against the
// encoding/json reference) and a whole filter call with a trivial handler.

func BenchmarkDecodeInput(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := decodeInputFast(benchInput, false); !ok {
				b.Fatal("fast path gave up")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		raw := []byte(benchInput)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeInputStd(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkInvokeFilter(b *testing.B) {
	p := &Plugin{Name: "t", Filter: func(in *Input) (FilterResult, error) {
		return Pass("after.amount = 11.99 >= 9.99"), nil
	}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = p.invoke(buf[:0], abi.RoleFilter, benchInput)
	}
}
