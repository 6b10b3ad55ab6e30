package main

import (
	"bytes"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// benchInput is what the host sends for a Pagila payment UPDATE (the input
// of host/pluginhost's BenchmarkFilter).
const benchInput = `{"abi":"1.0","context":{"observer":"big-payments","plugin":"p","role":"filter","attempt":1,"now":"2026-12-03T10:00:01Z"},"event":{"id":"pg:1042","position":1042,"source":"pg","entity":"public.payment","op":"UPDATE","key":"17503","before":{"amount":7.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"after":{"amount":11.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"changed_fields":["amount"],"commit_time":"2026-12-03T10:00:00.000000001Z","txid":"7781"},"config":{"field":"after.amount","op":">=","value":9.99}}`

// BenchmarkFilterNative runs the plugin's whole call (decode, filter,
// encode) natively, as the export does inside the sandbox.
func BenchmarkFilterNative(b *testing.B) {
	p := &observer.Plugin{Name: "field-filter", Filter: newFilterer().filter, LazyImages: true}
	in := []byte(benchInput)
	want := []byte(`{"abi":"1.0","pass":true,"reason":"after.amount = 11.99 \u003e= 9.99"}`)
	if out := p.Invoke("filter", in); !bytes.Equal(out, want) {
		b.Fatalf("output %s, want %s", out, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Invoke("filter", in)
	}
}
