// Command webhook is an act plugin: it turns each event into one HTTP
// request, returned as an http effect for the host to execute (with
// retries, an Idempotency-Key and an optional signature).
//
// Config (Input.Config):
//
//	{"url": "https://example.com/hook", "method": "POST",
//	 "headers": {"X-Source": "observer"},
//	 "body": "{\"id\": {{ event.id }}, \"amount\": {{ after.amount }}}"}
//
// See plugins/README.md for the template rules.
package main

import observer "github.com/fraiseql/observer/sdk-guest/go"

func init() {
	observer.Register(observer.Plugin{
		Name:         "webhook",
		Version:      "1.0.0",
		Description:  "sends each event to an HTTP endpoint, with a templated body",
		Capabilities: observer.Capabilities{Effects: []string{"http"}},
		Act:          newActor().act,
		LazyImages:   true,
	})
}

func main() {}
