// Package wat_test checks the hand-written WebAssembly text modules: the
// template minimal.wat, and the JSON scanner and decimal comparison of the
// WAT example plugins (examples/plugins/wat), which conformance vectors
// exercise only on a few inputs. Each module is assembled from source with
// wabt's wat2wasm and run in the real host; results are compared with Go's
// own reading of the same input.
//
// wat2wasm must be installed (`make toolchain-wat`); the tests are skipped
// without it, and fail under CI.
package wat_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/pluginhost"
	"github.com/fraiseql/observer/internal/testenv"
)

// load assembles the .wat file at path (relative to the repository root)
// and loads it into a new host.
func load(t testing.TB, path string) *pluginhost.Plugin {
	t.Helper()
	root := testenv.RepoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		testenv.Missing(t, "wat2wasm (make toolchain-wat; Debian package wabt)", err)
		return nil
	}
	sum := sha256.Sum256(src)
	out := filepath.Join(root, ".cache", "testwasm", "wat-"+strings.ReplaceAll(filepath.Base(path), ".wat", "")+"-"+hex.EncodeToString(sum[:8])+".wasm")
	if _, err := os.Stat(out); err != nil {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
		if b, err := exec.Command(tool, filepath.Join(root, path), "-o", tmp).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", path, err, b)
		}
		if err := os.Rename(tmp, out); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	h, err := pluginhost.New(ctx, pluginhost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	p, err := h.Load(ctx, pluginhost.Spec{Path: out})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return p
}

const (
	minimalWat   = "sdk-guest/wat/minimal.wat"
	minAmountWat = "examples/plugins/wat/min-amount/min-amount.wat"
	notifyWat    = "examples/plugins/wat/notify/notify.wat"
)

type outcome struct {
	pass    bool
	reason  string
	effects []abi.Effect
	err     *abi.Error
}

// call runs role on the raw input; anything but a result or an error
// result (a trap, bad output) fails the test.
func call(t testing.TB, p *pluginhost.Plugin, role string, in []byte) outcome {
	t.Helper()
	var (
		o   outcome
		err error
	)
	if role == abi.RoleFilter {
		var r abi.FilterResult
		r, err = p.FilterRaw(context.Background(), in)
		o.pass, o.reason, o.err = r.Pass, r.Reason, r.Error
	} else {
		var r abi.ActResult
		r, err = p.ActRaw(context.Background(), in)
		o.effects, o.err = r.Effects, r.Error
	}
	var ce *pluginhost.CallError
	if err != nil && !(errors.As(err, &ce) && ce.Kind == pluginhost.KindGuest && o.err != nil) {
		t.Fatalf("%s on %.300q: want a result or an error result, got %v", role, in, err)
	}
	return o
}

func TestMinimal(t *testing.T) {
	p := load(t, minimalWat)
	want := abi.Manifest{ABI: "1.0", Name: "minimal", Version: "1.0.0", Roles: []string{"filter"}}
	if got := p.Manifest(); !reflect.DeepEqual(got, want) {
		t.Errorf("manifest: got %+v, want %+v", got, want)
	}
	o := call(t, p, abi.RoleFilter, []byte(`{"abi":"1.0","event":{"id":"pg:1"}}`))
	if o.err != nil || !o.pass || o.reason != "minimal passes everything" {
		t.Errorf("filter: got %+v (err %+v)", o, o.err)
	}
}

// TestInputErrors: both examples answer every malformed input with a
// bad_input error result that says what is wrong.
func TestInputErrors(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct{ name, input, message string }{
		{"empty", "", "input is empty"},
		{"blank", " \n\t\r", "input is empty"},
		{"truncated", `{"abi":"1.0","event":{"id":`, "input is not valid JSON: error at byte 27"},
		{"trailing data", `{"abi":"1.0","event":{}} x`, "input is not valid JSON: error at byte 25"},
		{"NUL after the value", "{\"abi\":\"1.0\",\"event\":{}}\x00", "input is not valid JSON: error at byte 24"},
		{"control character", "{\"abi\":\"1.0\",\"event\":{\"id\":\"a\tb\"}}", "error at byte 29"},
		{"bad escape", `{"abi":"1.0","event":{"id":"\x"}}`, "error at byte 28"},
		{"bad unicode escape", `{"abi":"1.0","event":{"id":"\u12g4"}}`, "error at byte 28"},
		{"leading zero", `{"abi":"1.0","event":{"n":01}}`, "error at byte 27"},
		{"bare minus", `{"abi":"1.0","event":{"n":-}}`, "error at byte 26"},
		{"fraction without digits", `{"abi":"1.0","event":{"n":1.}}`, "error at byte 26"},
		{"bad literal", `{"abi":"1.0","event":{"n":tru}}`, "error at byte 26"},
		{"missing colon", `{"abi" "1.0"}`, "error at byte 7"},
		{"array", `[1,2]`, "input is not a JSON object"},
		{"no abi", `{"event":{}}`, "input has no abi version string"},
		{"abi number", `{"abi":1,"event":{}}`, "input has no abi version string"},
		{"other major", `{"abi":"2.0","event":{}}`, "input is not ABI 1.x"},
		{"major 10", `{"abi":"10.0","event":{}}`, "input is not ABI 1.x"},
		{"last abi wins", `{"abi":"1.0","abi":"0.9","event":{}}`, "input is not ABI 1.x"},
		{"null event", `{"abi":"1.0","event":null}`, "input has no event object"},
		{"too deep", `{"abi":"1.0","event":{"a":` + deep(4096) + `}}`, "input is not valid JSON"},
	}
	for _, m := range []struct{ path, role string }{{minAmountWat, abi.RoleFilter}, {notifyWat, abi.RoleAct}} {
		p := load(t, m.path)
		for _, tc := range cases {
			t.Run(filepath.Base(m.path)+"/"+tc.name, func(t *testing.T) {
				o := call(t, p, m.role, []byte(tc.input))
				if o.err == nil || o.err.Code != "bad_input" || !strings.Contains(o.err.Message, tc.message) {
					t.Errorf("want a bad_input error result containing %q, got %+v (err %+v)", tc.message, o, o.err)
				}
			})
		}
		t.Run(filepath.Base(m.path)+"/deep but allowed", func(t *testing.T) {
			o := call(t, p, m.role, []byte(`{"abi":"1.0","event":{"a":`+deep(4094)+`}}`))
			if o.err != nil && o.err.Code == "bad_input" {
				t.Errorf("4096 levels: want the input accepted, got %+v", *o.err)
			}
		})
	}
}

func TestMinAmount(t *testing.T) {
	p := load(t, minAmountWat)
	long := "1" + strings.Repeat("0", 70) + ".5"
	for _, tc := range []struct{ amount, min string }{
		{"11.99", "9.99"}, {"9.99", "11.99"}, {"11.99", "11.990"}, {"11.99", "11"}, {"-7.5", "-5"}, {"-5", "-7.5"},
		{"-0", "0"}, {"0.0e5", "-0.000"}, {"1e2", "100"}, {"1E+2", "100.0001"}, {"0.001", "1e-3"},
		{"123456789012345678901234567890.5", "123456789012345678901234567890.4999999"},
		{"1e999999999", "1e999999998"}, {"-1e999999999", "1"}, {"1e-999999999", "0"}, {"0", "1e-999999999"},
		{"9223372036854775807", "9223372036854775808"}, {"0.1", "0.10000000000000000001"}, {"00.5e1", "5"},
		{long, long}, {long, "1e71"},
	} {
		for _, pair := range [][2]string{{tc.amount, tc.min}, {tc.min, tc.amount}} {
			if !numberRE.MatchString(pair[0]) || !numberRE.MatchString(pair[1]) {
				continue // 00.5e1 is not JSON: covered as a malformed input below
			}
			t.Run(pair[0]+">="+pair[1], func(t *testing.T) {
				in := fmt.Sprintf(`{"abi":"1.0","config":{"min":%s},"event":{"after":{"amount":%s}}}`, pair[1], pair[0])
				checkMinAmount(t, p, []byte(in))
			})
		}
	}
	for _, tc := range []struct{ name, input, reason, code string }{
		{"no config", `{"abi":"1.0","event":{"after":{"amount":1}}}`, "", "bad_config"},
		{"string min", `{"abi":"1.0","config":{"min":"1"},"event":{"after":{"amount":1}}}`, "", "bad_config"},
		{"config not an object", `{"abi":"1.0","config":[1],"event":{"after":{"amount":1}}}`, "", "bad_config"},
		{"null after", `{"abi":"1.0","config":{"min":1},"event":{"after":null}}`, "no after image, so no amount", ""},
		{"no amount", `{"abi":"1.0","config":{"min":1},"event":{"after":{"amounts":1}}}`, "after has no amount", ""},
		{"string amount", `{"abi":"1.0","config":{"min":1},"event":{"after":{"amount":"2"}}}`, "after.amount is not a number", ""},
		{"amount in before only", `{"abi":"1.0","config":{"min":1},"event":{"before":{"amount":2},"after":{}}}`, "after has no amount", ""},
		{"last amount wins", `{"abi":"1.0","config":{"min":1},"event":{"after":{"amount":2,"amount":0.5}}}`, "after.amount = 0.5 < 1", ""},
		{"nested keys named alike", `{"abi":"1.0","config":{"min":1},"event":{"x":{"after":{"amount":9}},"after":{"y":{"amount":9},"amount":0}}}`, "after.amount = 0 < 1", ""},
		{"escaped strings skipped", `{"abi":"1.0","config":{"min":1},"event":{"s":"\"}\\","after":{"k\"":"]","amount":3}}}`, "after.amount = 3 >= 1", ""},
		{"every escape", `{"abi":"1.0","config":{"min":1},"event":{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\ude80","after":{"amount":1}}}`, "after.amount = 1 >= 1", ""},
		{"not JSON number", `{"abi":"1.0","config":{"min":1},"event":{"after":{"amount":00.5e1}}}`, "", "bad_input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := call(t, p, abi.RoleFilter, []byte(tc.input))
			if tc.code != "" {
				if o.err == nil || o.err.Code != tc.code {
					t.Fatalf("want error code %q, got %+v (err %+v)", tc.code, o, o.err)
				}
				return
			}
			if o.err != nil || o.reason != tc.reason || o.pass != strings.Contains(tc.reason, ">=") {
				t.Errorf("want reason %q, got %+v (err %+v)", tc.reason, o, o.err)
			}
		})
	}
}

var numberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// rat is the exact value of a JSON number, if it is zero or its exponent
// is small enough to compute with.
func rat(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if strings.Trim(s[:i], "-0.") == "" {
			return new(big.Rat), true
		}
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > 9999 || e < -9999 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// cut is how min-amount shows a number in a reason.
func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// checkMinAmount runs min-amount on in and compares its answer with the
// oracle: Go's reading of in, by the rules of the plugin.
func checkMinAmount(t testing.TB, p *pluginhost.Plugin, in []byte) {
	t.Helper()
	o := call(t, p, abi.RoleFilter, in)
	want, code, exact := expectMinAmount(in)
	switch {
	case !exact:
		// \u escapes: keys and the abi are compared as raw bytes, Go
		// decodes them. Only "no trap" is promised (call checked it).
	case code != "":
		if o.err == nil || o.err.Code != code {
			t.Fatalf("input %q: want a %s error result, got %+v (err %+v)", in, code, o, o.err)
		}
	default:
		if o.err != nil || o.pass != want.pass || o.reason != want.reason {
			t.Fatalf("input %q:\n got pass=%v reason=%q (err %+v)\nwant pass=%v reason=%q", in, o.pass, o.reason, o.err, want.pass, want.reason)
		}
	}
}

// expectMinAmount is the oracle: what min-amount answers to in, or the
// error code it answers with. exact is false when in holds \u escapes,
// which the plugin does not decode in keys or in the abi version.
func expectMinAmount(in []byte) (want outcome, code string, exact bool) {
	if !json.Valid(in) || depth(in) > 4096 {
		return want, "bad_input", true
	}
	exact = !strings.Contains(string(in), `\u`)
	var root map[string]json.RawMessage
	if json.Unmarshal(in, &root) != nil {
		return want, "bad_input", exact
	}
	if !regexp.MustCompile(`^"1\.[0-9]`).Match(root["abi"]) || !isObject(root["event"]) {
		return want, "bad_input", exact
	}
	min := member(root["config"], "min")
	if !isNumber(min) {
		return want, "bad_config", exact
	}
	after := member(root["event"], "after")
	amount := member(after, "amount")
	switch {
	case !isObject(after):
		want.reason = "no after image, so no amount"
	case amount == nil:
		want.reason = "after has no amount"
	case !isNumber(amount):
		want.reason = "after.amount is not a number"
	default:
		a, ok1 := rat(string(amount))
		m, ok2 := rat(string(min))
		if !ok1 || !ok2 {
			return want, "", false // exponents too large for the oracle
		}
		want.pass = a.Cmp(m) >= 0
		op := " < "
		if want.pass {
			op = " >= "
		}
		want.reason = "after.amount = " + cut(string(amount)) + op + cut(string(min))
	}
	return want, "", exact
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// member is the raw value of key in the object raw (the last of
// duplicates), or nil.
func member(raw json.RawMessage, key string) json.RawMessage {
	var m map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m[key]
}

// depth is the deepest nesting of brackets in valid JSON text.
func depth(b []byte) int {
	d, most, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}

func TestNotify(t *testing.T) {
	p := load(t, notifyWat)
	for _, tc := range []struct{ name, id, entity, op string }{
		{"plain", `"pg:1042"`, `"public.payment"`, `"INSERT"`},
		{"escapes", `"a\"b\\c\/d\n"`, `"t\u00e9st"`, `"\ud83d\ude80"`},
		{"unicode", `"Zoë 東京 🚀"`, `"e"`, `"DELETE"`},
		{"empty", `""`, `""`, `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fmt.Sprintf(`{"abi":"1.0","config":{"url":"https://h.example/p?q=\"1\""},"event":{"id":%s,"entity":%s,"op":%s}}`, tc.id, tc.entity, tc.op)
			o := call(t, p, abi.RoleAct, []byte(in))
			if o.err != nil || len(o.effects) != 1 || o.effects[0].HTTP == nil {
				t.Fatalf("want one http effect, got %+v (err %+v)", o, o.err)
			}
			h := o.effects[0].HTTP
			wantBody := `{"event":` + tc.id + `,"entity":` + tc.entity + `,"op":` + tc.op + `}`
			if h.Method != "POST" || h.URL != `https://h.example/p?q="1"` || h.Body != wantBody ||
				!reflect.DeepEqual(h.Headers, map[string]string{"content-type": "application/json"}) {
				t.Errorf("got %+v, want POST with body %s", *h, wantBody)
			}
			var body, event map[string]string
			if err := json.Unmarshal([]byte(h.Body), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if err := json.Unmarshal([]byte(fmt.Sprintf(`{"event":%s,"entity":%s,"op":%s}`, tc.id, tc.entity, tc.op)), &event); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(body, event) {
				t.Errorf("body decodes to %v, want %v", body, event)
			}
		})
	}
	for _, tc := range []struct{ name, input, code string }{
		{"no url", `{"abi":"1.0","config":{},"event":{"id":"1","entity":"e","op":"INSERT"}}`, "bad_config"},
		{"empty url", `{"abi":"1.0","config":{"url":""},"event":{"id":"1","entity":"e","op":"INSERT"}}`, "bad_config"},
		{"url not a string", `{"abi":"1.0","config":{"url":1},"event":{"id":"1","entity":"e","op":"INSERT"}}`, "bad_config"},
		{"id not a string", `{"abi":"1.0","config":{"url":"u"},"event":{"id":1,"entity":"e","op":"INSERT"}}`, "bad_input"},
		{"no op", `{"abi":"1.0","config":{"url":"u"},"event":{"id":"1","entity":"e"}}`, "bad_input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := call(t, p, abi.RoleAct, []byte(tc.input))
			if o.err == nil || o.err.Code != tc.code {
				t.Errorf("want error code %q, got %+v (err %+v)", tc.code, o, o.err)
			}
		})
	}
}

// FuzzScanner feeds both WAT examples inputs with an arbitrary fragment
// where the amount goes: min-amount must answer exactly as the oracle
// reads the input (validation, lookups, decimal comparison), notify must
// reject exactly the malformed ones; neither may trap.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`11.99`, `-0.5e-3`, `"x"`, `null`, `{"a":[1,{"b":"}"}]}`, `1,"amount":2`, `1}},"abi":"2.0","x":{"y":1`,
		`1}},"config":{"min":"1"},"x":{"y":1`, `123456789012345678901234567890e-29`, `1.`, `01`, `"\u0041"`, "\"\xff\"", `[[[[]]]]`,
		`1,"amount":{}`, `true`, `1}},"event":{"after":null},"z":{"q":0`} {
		f.Add(s)
	}
	min := load(f, minAmountWat)
	notify := load(f, notifyWat)
	f.Fuzz(func(t *testing.T, frag string) {
		in := []byte(`{"abi":"1.0","config":{"min":1.5,"url":"http://h/"},"event":{"id":"1","entity":"e","op":"INSERT","after":{"amount":` + frag + `}}}`)
		checkMinAmount(t, min, in)
		o := call(t, notify, abi.RoleAct, in)
		if _, code, exact := expectMinAmount(in); exact && code == "bad_input" && (o.err == nil || o.err.Code != "bad_input") {
			t.Fatalf("notify on %q: want a bad_input error result, got %+v (err %+v)", in, o, o.err)
		}
	})
}
