package main

import (
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

const benchEvent = `{"id":"pg:1042","position":1042,"source":"pg","entity":"public.payment","op":"UPDATE","key":"17503","before":{"amount":7.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"after":{"amount":11.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"changed_fields":["amount"],"commit_time":"2026-12-03T10:00:00.000000001Z","txid":"7781"}`

// BenchmarkActNative runs the plugin's whole call natively, with a body
// template and with the whole event as the body, against the reference
// implementation (reference_test.go) on eager images.
func BenchmarkActNative(b *testing.B) {
	for _, tc := range []struct{ name, config string }{
		{"template", `{"url":"https://hooks.example.com/p","headers":{"X-Source":"observer"},"body":"{\"id\": {{ event.id }}, \"amount\": {{ after.amount }}, \"note\": \"{{ raw entity }} #{{ raw key }}\"}"}`},
		{"whole-event", `{"url":"https://hooks.example.com/p"}`},
	} {
		for _, impl := range []struct {
			name string
			p    *observer.Plugin
		}{
			{tc.name, &observer.Plugin{Name: "webhook", Act: newActor().act, LazyImages: true}},
			{tc.name + "-reference", &observer.Plugin{Name: "webhook", Act: refAct}},
		} {
			p := impl.p
			b.Run(impl.name, func(b *testing.B) {
				in := []byte(`{"abi":"1.0","context":{"observer":"o","plugin":"webhook","role":"act","attempt":1,"now":"2026-12-03T10:00:01Z"},"event":` + benchEvent + `,"config":` + tc.config + `}`)
				b.ReportAllocs()
				for b.Loop() {
					p.Invoke("act", in)
				}
			})
		}
	}
}
