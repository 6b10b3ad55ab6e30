package observer

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// The fast decoder and encoder must be indistinguishable from
// encoding/json: these tests compare them on tricky cases and fuzz them.

const benchInput = `{"abi":"1.0","context":{"observer":"big-payments","plugin":"p","role":"filter","attempt":1,"now":"2026-12-03T10:00:01Z"},"event":{"id":"pg:1042","position":1042,"source":"pg","entity":"public.payment","op":"UPDATE","key":"17503","before":{"amount":7.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"after":{"amount":11.99,"customer_id":341,"payment_date":"2022-01-27T15:06:46.28+00:00","payment_id":17503,"rental_id":1520,"staff_id":2},"changed_fields":["amount"],"commit_time":"2026-12-03T10:00:00.000000001Z","txid":"7781"},"config":{"field":"after.amount","op":">=","value":9.99}}`

const sampleInput = `{"abi":"1.0","context":{"observer":"o","plugin":"p","role":"filter","attempt":2,"now":"2026-01-01T00:00:00Z"},
"event":{"id":"pg:7","position":7,"source":"pg","entity":"public.rental","op":"UPDATE","key":"9",
"before":{"status":"out","address":{"city":"Lyon"}},
"after":{"status":"returned","amount":123456789012345678901.25,"address":{"city":"Paris"},"items":[{"sku":"a"},{"sku":"b"}],"gone":null},
"changed_fields":["status"],"commit_time":"2026-01-01T00:00:00Z"}}`

// fastInputs must take the fast path (and agree with encoding/json).
var fastInputs = []string{
	benchInput,
	sampleInput,
	` {"abi":"1.0","event":{}} `,
	`{"abi":"2.0","event":null}`,
	`{}`,
	`{"abi":null,"context":null,"event":{"id":null,"position":null,"before":null,"after":{},"changed_fields":null,"trace":null}}`,
	`{"abi":"1.0","event":{"changed_fields":[],"after":{"a":[],"b":{},"c":[1,"x",true,false,null,{"d":-0.5e+10}]}}}`,
	`{"abi":"1.0","context":{"attempt":-3,"dry_run":true,"trace":{"traceparent":"00-x","tracestate":"a=b","other":1}},"event":{"trace":{"tracestate":""}}}`,
	`{"abi":"1.0","event":{"after":{"s":"tab\there \"q\" \\ \/ \u00e9 \ud83d\ude80 \ud800 \udc00x \u2028 \b\f\n\r","k\u00e9y":1}}}`,
	`{"abi":"1.0","event":{"after":{"s":"Zoë Ñandú 東京 🚀 \u0000end","bad":"` + "\xff\xfe" + `","a":"` + "a\xe2\x82" + `"}}}`,
	`{"abi":"1.0","event":{"after":{"a":1,"a":2,"n":{"x":1},"n":{"y":2}}}}`,
	`{"abi":"1.0","event":{"after":{"big":123456789012345678901234567890.5,"e":1e999999999,"z":0,"neg":-0,"f":0.001E-5}}}`,
	`{"abi":"1.0","config":null,"event":{}}`,
	`{"abi":"1.0","config": { "a" : [ 1 , 2 ] } ,"event":{}}`,
	`{"abi":"1.0","unknown":{"x":[1,{"y":"\u0041"}]},"event":{"unknown":"x","tenant":"t","txid":"9"},"context":{"zz":1}}`,
	`{"abi":"1.0","event":{},"x":` + strings.Repeat(`[{"a":`, 70) + `1` + strings.Repeat(`}]`, 70) + `,"config":` + strings.Repeat(`[ `, 130) + strings.Repeat(` ]`, 130) + `}`,
	"{\n\t\"abi\" : \"1.0\" ,\r\n \"event\" : { \"position\" : 18446744073709551615 } }",
	`{"abi":"1.0","event":{"after":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}}`,
}

// slowInputs are given to encoding/json (they must still agree).
var slowInputs = []string{
	`{"abi":"1.0","event":{}}]`, `{"abi":"1.0","event":{}}}`, // trailing closers: errors
	``, `   `, "\v", `null`, `[1,2,3]`, `"x"`, `{"abi":"1.0","event":{"id":`, `{"abi":"1.0"} x`, `{"abi":"1.0"}{}`,
	`{"ABI":"1.0","event":{}}`, `{"abi":"1.0","Event":{}}`, `{"abi":"1.0","event":{"ID":"x"}}`, `{"abi":"1.0","event":{"Id":"x","id":"y"}}`,
	`{"abi":"1.0","event":{"id":1}}`, `{"abi":"1.0","event":{"position":-1}}`, `{"abi":"1.0","event":{"position":1.5}}`,
	`{"abi":"1.0","event":{"position":1e3}}`, `{"abi":"1.0","event":{"position":18446744073709551616}}`,
	`{"abi":"1.0","event":{"before":[]}}`, `{"abi":"1.0","event":{"after":"x"}}`, `{"abi":"1.0","event":{"changed_fields":["a",null]}}`,
	`{"abi":"1.0","event":{"changed_fields":"a"}}`, `{"abi":"1.0","context":{"attempt":1.0}}`, `{"abi":"1.0","context":{"dry_run":"yes"}}`,
	`{"abi":"1.0","event":{"id":"a"},"event":{"key":"b"}}`, `{"abi":"1.0","event":{"after":{"a":1}}}` + "\x00",
	`{"abi":"1.0","event":{"after":{"s":"\x01"}}}`, `{"abi":"1.0","event":{"after":{"s":"\q"}}}`, `{"abi":"1.0","event":{"after":{"s":"\u12"}}}`,
	`{"abi":"1.0","event":{"after":{"n":01}}}`, `{"abi":"1.0","event":{"after":{"n":1.}}}`, `{"abi":"1.0","event":{"after":{"n":.5}}}`,
	`{"abi":"1.0","event":{"after":{"n":+1}}}`, `{"abi":"1.0","event":{"after":{"n":1e}}}`, `{"abi":"1.0","event":{"after":{"n":tru}}}`,
	`{"abi":"1.0","event":{"after":{"a":1,}}}`, `{"abi":"1.0","event":{"after":{"a" 1}}}`, `{"abi":1,"event":{}}`,
	`{"abi":"1.0","event":{"after":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}}`,
	`{"abi":"1.0","event":{"after":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}}`,
	`{"abi":"1.0","event":{},"config":` + strings.Repeat(`[`, 513) + strings.Repeat(`]`, 513) + `}`,
	`{"abi":"1.0","event":{"trace":{"TraceParent":"x"}}}`, `{"abi":"1.0","event":{"ſource":"x"}}`,
}

func checkDecode(t *testing.T, s string) (fast bool) {
	t.Helper()
	want, wantErr := decodeInputStd([]byte(s))
	got, _, ok := decodeInputFast(s, false)
	if !ok {
		return false
	}
	if wantErr != nil {
		t.Fatalf("input %q: fast path decoded %+v, encoding/json says %v", s, got, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("input %q:\nfast %s %#v\nstd  %s %#v", s, gj, got.Event, wj, want.Event)
	}
	return true
}

func TestDecodeInputMatchesEncodingJSON(t *testing.T) {
	for _, s := range fastInputs {
		if !checkDecode(t, s) {
			t.Errorf("input %.60q: fast path gave up", s)
		}
	}
	for _, s := range slowInputs {
		if checkDecode(t, s) {
			t.Errorf("input %.60q: fast path decoded what it should hand to encoding/json", s)
		}
		// Whatever path, DecodeInput gives encoding/json's outcome.
		in, err := DecodeInput([]byte(s))
		if err == nil && in.Event == nil {
			t.Errorf("input %.60q: no error and no event", s)
		}
	}
}

func FuzzDecodeInput(f *testing.F) {
	for _, s := range append(fastInputs, slowInputs...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDecode(t, s)
		got, gotErr := DecodeInput([]byte(s))
		want, wantErr := decodeInputStd([]byte(s))
		if wantErr != nil {
			if gotErr == nil || gotErr.Message != wantErr.Message {
				t.Fatalf("input %q: error %v, want %v", s, gotErr, wantErr)
			}
			return
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q: DecodeInput differs from encoding/json", s)
		}
	})
}

// checkEncode compares AppendJSON and AppendJSONNoEscape with encoding/json.
func checkEncode(t *testing.T, v any) {
	t.Helper()
	for _, html := range []bool{true, false} {
		want, wantErr := marshal(v, html)
		got, gotErr := appendJSON([]byte("prefix"), v, html)
		if (wantErr != nil) != (gotErr != nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
			t.Fatalf("encode %#v (html %v): error %v, want %v", v, html, gotErr, wantErr)
		}
		if wantErr == nil && string(got) != "prefix"+string(want) {
			t.Fatalf("encode %#v (html %v):\ngot  %s\nwant prefix%s", v, html, got, want)
		}
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	in, e := DecodeInput([]byte(sampleInput))
	if e != nil {
		t.Fatal(e)
	}
	odd := "<a href='x'>&amp;</a> \u2028\u2029 \x00\x1f\x7f \xff \"\\ é 🚀 abcdefghijklmnop"
	for _, v := range []any{
		nil, true, false, "", odd, json.Number(""), json.Number("12.50"), json.Number("1e999999999"), json.Number("1.2.3"),
		map[string]any(nil), map[string]any{}, []any(nil), []any{}, map[string]string{"b": odd, "a": ""},
		[]string(nil), []string{"x", odd}, map[string]any{"z": 1.5, "y": []any{json.Number("1"), odd, nil, map[string]any{"<": ">"}}},
		math.NaN(), 1e21, 1e-7, 42, struct{ A string }{odd},
		in.Event, *in.Event, &Event{Trace: &TraceContext{Traceparent: odd}, Tenant: "t", TxID: odd, ChangedFields: []string{}},
		(*Event)(nil), FilterResult{}, &FilterResult{ABI: "1.0", Pass: true, Reason: odd, Error: &Error{Message: odd, Code: "c", Retryable: true}},
		(*FilterResult)(nil), ActResult{}, ActResult{Effects: []Effect{}},
		&ActResult{ABI: "1.0", Effects: []Effect{
			HTTP("POST", "https://x/?a=1&b=<2>", map[string]string{"Content-Type": "application/json", "X": odd}, odd),
			{Type: "http", HTTP: &HTTPEffect{Method: "PUT", URL: "u", Headers: map[string]string{}, BodyJSON: json.RawMessage(" {\"a\" : [1, \"<&>\u2028\"] , \"b\":null}\n")}},
			LogLine("", odd, nil), LogLine("warn", "m", map[string]string{"k": odd}), {Type: "x"},
		}, Error: &Error{Message: "m"}},
		ActResult{Effects: []Effect{{Type: "http", HTTP: &HTTPEffect{BodyJSON: json.RawMessage(`{"a":`)}}}},
		ActResult{Effects: []Effect{{Type: "http", HTTP: &HTTPEffect{BodyJSON: json.RawMessage(`1 2`)}}}},
	} {
		checkEncode(t, v)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range fastInputs {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":"<\u2028>"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// As a string, as a body, as a reason, and (if it decodes) as a value.
		checkEncode(t, string(b))
		checkEncode(t, &ActResult{Effects: []Effect{{Type: "http", HTTP: &HTTPEffect{BodyJSON: b, Body: string(b)}}}})
		checkEncode(t, FilterResult{Reason: string(b)})
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			checkEncode(t, v)
		}
		if in, err := DecodeInput(b); err == nil {
			checkEncode(t, in.Event)
		}
	})
}

// TestDecodeInputRejectsTrailingData: anything but white space after the
// input object is an error, a stray closer included.
func TestDecodeInputRejectsTrailingData(t *testing.T) {
	const in = `{"abi":"1.0","event":{"id":"s:1","position":1,"source":"s","entity":"t","op":"INSERT","key":"1","after":{"a":1}}}`
	if _, err := DecodeInput([]byte(in + " \n")); err != nil {
		t.Fatalf("white space after the object: %v", err)
	}
	for _, tail := range []string{" }", "]", " x", ` {}`} {
		if _, err := DecodeInput([]byte(in + tail)); err == nil || !strings.Contains(err.Error(), "trailing") && !strings.Contains(err.Error(), "invalid") {
			t.Errorf("input followed by %q: %v", tail, err)
		}
	}
}
