// Command min-amount is the Go version of the example filter every guest
// language implements (examples/plugins/vectors/README.md): it keeps events
// whose after.amount is a JSON number at least config.min.
//
// Config: {"min": 9.99} (required).
package main

import (
	"bytes"
	"encoding/json"
	"strconv"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// minimum reads config.min. A missing or non-numeric min is a bad_config
// error result: no event can pass until the operator fixes it, so the host
// dead-letters instead of retrying.
func minimum(in *observer.Input) (float64, error) {
	if len(in.Config) == 0 {
		return 0, observer.Errorf(observer.CodeBadConfig, `config is missing: want {"min": <number>}`)
	}
	var c struct {
		Min any `json:"min"`
	}
	dec := json.NewDecoder(bytes.NewReader(in.Config))
	dec.UseNumber() // a number decodes as json.Number, anything else keeps its JSON type
	if err := dec.Decode(&c); err != nil {
		return 0, observer.Errorf(observer.CodeBadConfig, `config: want {"min": <number>} (%v)`, err)
	}
	num, ok := c.Min.(json.Number)
	if !ok {
		if c.Min == nil {
			return 0, observer.Errorf(observer.CodeBadConfig, `config.min is missing: want {"min": <number>}`)
		}
		return 0, observer.Errorf(observer.CodeBadConfig, "config.min is %T: want a number", c.Min)
	}
	m, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return 0, observer.Errorf(observer.CodeBadConfig, "config.min %s is out of range", num)
	}
	return m, nil
}

func filter(in *observer.Input) (observer.FilterResult, error) {
	threshold, err := minimum(in)
	if err != nil {
		return observer.FilterResult{}, err
	}
	// Lookup reads the row image without decoding it (LazyImages below);
	// an absent after image (a DELETE) or field is simply "not found".
	v, ok := observer.Lookup(in, "after.amount")
	if !ok || v == nil {
		return observer.Drop("no after.amount"), nil
	}
	num, isNum := v.(json.Number) // numbers arrive as their exact JSON text
	if !isNum {
		return observer.Drop("after.amount is not a number"), nil
	}
	// float64 is exact enough for money compared with a threshold; for
	// exact decimal comparison see plugins/field-filter. A number beyond
	// float64's range parses as ±Inf, which still compares correctly.
	amount, _ := strconv.ParseFloat(string(num), 64)
	limit := strconv.FormatFloat(threshold, 'g', -1, 64)
	if amount < threshold {
		return observer.Drop("amount " + string(num) + " < min " + limit), nil
	}
	return observer.Pass("amount " + string(num) + " >= min " + limit), nil
}

func init() {
	observer.Register(observer.Plugin{
		Name:        "min-amount",
		Version:     "1.0.0",
		Description: "keeps events whose after.amount is at least config.min",
		Filter:      filter,
		LazyImages:  true,
	})
}

// A c-shared reactor never runs main: the SDK's exports call the handlers
// registered in init.
func main() {}
