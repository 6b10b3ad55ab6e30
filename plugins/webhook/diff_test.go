package main

import (
	"bytes"
	"strconv"
	"testing"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

var events = []string{
	`{"id":"pg:1","position":1,"source":"pg","entity":"public.payment","op":"UPDATE","key":"17503","before":{"amount":7.99,"payment_date":"2022-01-27T15:06:46.28+00:00"},"after":{"amount":11.99,"payment_date":"2022-01-27T15:06:46.28+00:00"},"changed_fields":["amount"],"commit_time":"2026-01-01T00:00:00Z","txid":"7781"}`,
	`{"id":"pg:2","op":"INSERT","entity":"t","key":"k","before":null,"after":{"s":"Zoë \"<b>&</b>\" \u2028 \u0000 \ud800","n":123456789012345678901234567890.5,"o":{"z":1,"a":[true,null,{}]},"e":[],"big":1e999999999}}`,
	`{"id":"pg:3","op":"DELETE","entity":"t","key":"k","before":{"b":1,"a":2,"a":3},"after":null,"tenant":"acme","trace":{"traceparent":"00-x"}}`,
	`{"id":"pg:4","entity":"t","op":"UPDATE","after":{"k\u00e9y":"v","items":[{"sku":"a"},{"sku":"b"}]},"changed_fields":[]}`,
	`{}`,
}

var bodies = []string{
	``, `"x"`, `""`, `"{{ after.amount }}"`, `"{{ raw after.amount }}|{{ raw after.s }}|{{ after.s }}"`, `"{{ event }}"`, `"{{ after }}|{{ before }}"`,
	`"{\"id\": {{ event.id }}, \"a\": {{ after.amount }}, \"was\": {{ before.amount }}, \"o\": {{ after.o }}, \"op\": {{ op }}, \"n\": \"{{ raw entity }} #{{ raw key }}\"}"`,
	`"{{ after.items.1.sku }} {{ after.k\u00e9y }} {{ after.o.a.0 }} {{ after.nope }} {{ raw after.nope }} {{ before.a }} {{ context.now }} {{ changed_fields }} {{ position }} {{ trace }}"`,
	`"{{ after.amount"`, `"a }} b"`, `"{{ raw }}"`, `"{{ a b c }}"`, `"{{ aftr.x }}"`, `"{{ after..x }}"`, `null`, `1`,
}

var configs = []string{
	`null`, `{}`, `[]`, `{"url":"ftp://x/"}`, `{"url":"https://h.example/x","method":"p ut"}`, `{"url":"https://h.example/x","bdoy":"x"}`,
	`{"url":"https://h.example/x","headers":{"a b":"x"}}`, `{"url":"https://h.example/x","headers":{"X":"a\nb"}}`,
	`{"URL":"https://h.example/x"}`, `{"url":"https://h.example/x","headers":{"content-type":"text/plain","X-A":"<&>"}}`,
	`{"url":"http://127.0.0.1:8080/h?a=1&b=<2>","method":"put","headers":{}}`,
}

func TestMatchesReference(t *testing.T) {
	ref := &observer.Plugin{Name: "webhook", Act: refAct}
	got := &observer.Plugin{Name: "webhook", Act: newActor().act, LazyImages: true}
	n := 0
	for _, ev := range events {
		for _, cfg := range configs {
			for _, body := range bodies {
				c := cfg
				if body != "" && len(cfg) > 2 && cfg[0] == '{' {
					c = cfg[:len(cfg)-1] + `,"body":` + body + `}`
				}
				in := []byte(`{"abi":"1.0","context":{"now":"2026-01-01T00:00:00Z"},"event":` + ev + `,"config":` + c + `}`)
				want := ref.Invoke("act", in)
				for pass := 0; pass < 2; pass++ { // the second pass hits the cache
					if out := got.Invoke("act", in); !bytes.Equal(out, want) {
						t.Fatalf("input %s:\ngot  %s\nwant %s", in, out, want)
					}
				}
				n++
			}
		}
	}
	t.Logf("%d inputs, identical output", n)
}

func FuzzMatchesReference(f *testing.F) {
	for i, b := range bodies {
		f.Add(b, events[i%len(events)])
	}
	ref := &observer.Plugin{Name: "webhook", Act: refAct}
	got := &observer.Plugin{Name: "webhook", Act: newActor().act, LazyImages: true}
	f.Fuzz(func(t *testing.T, body, ev string) {
		in := []byte(`{"abi":"1.0","event":` + ev + `,"config":{"url":"https://h.example/x","body":` + strconv.Quote(body) + `}}`)
		if want, out := ref.Invoke("act", in), got.Invoke("act", in); !bytes.Equal(out, want) {
			t.Fatalf("input %s:\ngot  %s\nwant %s", in, out, want)
		}
		in = []byte(`{"abi":"1.0","event":` + ev + `,"config":{"url":"https://h.example/x"}}`)
		if want, out := ref.Invoke("act", in), got.Invoke("act", in); !bytes.Equal(out, want) {
			t.Fatalf("input %s:\ngot  %s\nwant %s", in, out, want)
		}
	})
}
