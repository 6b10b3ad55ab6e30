// Command field-filter is a generic filter plugin: it keeps or drops an
// event by comparing one field of it with a configured value.
//
// Config (Input.Config):
//
//	{"field": "after.amount", "op": ">=", "value": 9.99}
//
// op is one of == != < > <= >= exists changed in. See plugins/README.md.
package main

import (
	"github.com/fraiseql/observer/sdk-guest/go"
)

func init() {
	observer.Register(observer.Plugin{
		Name:        "field-filter",
		Version:     "1.0.0",
		Description: "keeps events whose field compares true with a configured value",
		Filter:      newFilterer().filter,
		LazyImages:  true,
	})
}

func main() {}
