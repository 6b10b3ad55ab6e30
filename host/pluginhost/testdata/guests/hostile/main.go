// Command hostile is a misbehaving plugin for the plugin host's tests,
// written with the Go guest SDK. Input.Config {"mode": "..."} picks the
// misbehaviour for one call, so a test can check that the next call on the
// same plugin still works.
//
// filter:
//
//	ok         pass
//	loop       spin forever
//	panic      panic (a trap)
//	exit       os.Exit(3)
//	memhog     allocate until memory runs out
//	recurse    recurse without end (Go grows its stack in linear memory)
//	hugeout    return a 2 MiB result
//	retryable  return a retryable error result
//	permanent  return a permanent error result
//	http       call the http_request import, which observer denies
//	sleep      time.Sleep(time.Hour): WASI sleeps return at once, so the
//	           Go scheduler polls poll_oneoff in a loop
//	busywait   spin until time.Since says an hour has passed
//	leak       keep 1 MiB more of the linear memory on every call, never
//	           freeing it, and pass (until the memory limit is reached)
//	clock      pass, with the guest's clock and random bytes as the reason
//	sandbox    pass, with a JSON report of what the guest can see of the
//	           world (files, environment, arguments, clock, randomness)
//
// act (the manifest declares only log effects):
//
//	ok          one log effect
//	badeffect   an effect of an unknown type
//	undeclared  an http effect, which the manifest does not declare
//	nourl       an http effect without a url
//	any filter mode above that does not return
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"time"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

//go:wasmimport extism:host/env http_request
func httpRequest(req, body uint64) uint64

var sink [][]byte
var counter int

func mode(in *observer.Input) string {
	var c struct{ Mode string }
	_ = json.Unmarshal(in.Config, &c)
	return c.Mode
}

//go:noinline
func recurse(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	return recurse(n+1) + int(pad[(n+7)%64])
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// misbehave does what mode says if it is a misbehaviour that does not
// return a result.
func misbehave(mode string) {
	switch mode {
	case "loop":
		for {
			counter++
		}
	case "panic":
		panic("hostile guest panics on purpose")
	case "exit":
		os.Exit(3)
	case "memhog":
		for {
			b := make([]byte, 4<<20)
			b[0] = 1
			sink = append(sink, b)
		}
	case "recurse":
		counter += recurse(0)
	case "http":
		httpRequest(0, 0)
	case "sleep":
		time.Sleep(time.Hour)
	case "busywait":
		start := time.Now()
		for time.Since(start) < time.Hour {
			counter++
		}
	case "leak":
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		sink = append(sink, b)
	}
}

func sandbox() string {
	r := map[string]any{}
	_, err := os.Open("/")
	r["open_root"] = errText(err)
	_, err = os.ReadFile("/etc/passwd")
	r["read_passwd"] = errText(err)
	_, err = os.ReadDir(".")
	r["read_dir"] = errText(err)
	err = os.WriteFile("/tmp/observer-hostile", []byte("x"), 0o644)
	r["write_tmp"] = errText(err)
	r["environ"] = os.Environ()
	r["args"] = os.Args
	_, r["home_set"] = os.LookupEnv("HOME")
	m1 := time.Now()
	m2 := time.Now()
	r["now"] = m1.UTC().Format(time.RFC3339Nano)
	r["mono_delta_ns"] = m2.Sub(m1).Nanoseconds()
	var b [16]byte
	_, _ = rand.Read(b[:])
	r["random"] = hex.EncodeToString(b[:])
	out, _ := json.Marshal(r)
	return string(out)
}

func init() {
	observer.Register(observer.Plugin{
		Name:         "hostile",
		Version:      "0.0.2",
		Capabilities: observer.Capabilities{Effects: []string{"log"}},
		Filter: func(in *observer.Input) (observer.FilterResult, error) {
			m := mode(in)
			misbehave(m)
			switch m {
			case "hugeout":
				return observer.Pass(strings.Repeat("x", 2<<20)), nil
			case "retryable":
				return observer.FilterResult{}, observer.Retryable("not_ready", "lookup not ready yet")
			case "permanent":
				return observer.FilterResult{}, observer.Errorf("bad_amount", "amount is not a number")
			case "clock":
				var r [8]byte
				_, _ = rand.Read(r[:])
				return observer.Pass(time.Now().UTC().Format(time.RFC3339) + " " + hex.EncodeToString(r[:])), nil
			case "sandbox":
				return observer.Pass(sandbox()), nil
			}
			return observer.Pass("mode " + m), nil
		},
		Act: func(in *observer.Input) (observer.ActResult, error) {
			m := mode(in)
			misbehave(m)
			switch m {
			case "badeffect":
				return observer.ActResult{Effects: []observer.Effect{{Type: "kafka"}}}, nil
			case "undeclared":
				return observer.ActResult{Effects: []observer.Effect{observer.HTTP("POST", "http://127.0.0.1:9/x", nil, "{}")}}, nil
			case "nourl":
				return observer.ActResult{Effects: []observer.Effect{{Type: "http", HTTP: &observer.HTTPEffect{Method: "POST"}}}}, nil
			case "", "ok":
				return observer.ActResult{Effects: []observer.Effect{observer.LogLine("info", "hostile act ok", nil)}}, nil
			}
			return observer.ActResult{}, errors.New("unknown act mode " + m)
		},
	})
}

func main() {}
