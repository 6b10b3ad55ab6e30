// Command notify is the Go version of the example action every guest
// language implements (examples/plugins/vectors/README.md): one http effect
// per event, a POST of {"event": ID, "entity": ENTITY, "op": OP} to
// config.url.
//
// Config: {"url": "https://hooks.example.com/notify"} (required).
package main

import (
	"encoding/json"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

// body fixes the key order of the posted JSON (a map would sort its keys).
type body struct {
	Event  string             `json:"event"`
	Entity string             `json:"entity"`
	Op     observer.Operation `json:"op"`
}

func act(in *observer.Input) (observer.ActResult, error) {
	var c struct {
		URL string `json:"url"`
	}
	if len(in.Config) > 0 {
		if err := json.Unmarshal(in.Config, &c); err != nil {
			return observer.ActResult{}, observer.Errorf(observer.CodeBadConfig, "config.url: want a string (config %s: %v)", in.Config, err)
		}
	}
	if c.URL == "" {
		return observer.ActResult{}, observer.Errorf(observer.CodeBadConfig, `config.url is missing: want {"url": "https://..."}`)
	}
	ev := in.Event
	b, err := json.Marshal(body{Event: ev.ID, Entity: ev.Entity, Op: ev.Op})
	if err != nil {
		return observer.ActResult{}, observer.Errorf("bad_event", "encode the body: %v", err)
	}
	return observer.ActResult{Effects: []observer.Effect{
		observer.HTTP("POST", c.URL, map[string]string{"content-type": "application/json"}, string(b)),
	}}, nil
}

func init() {
	observer.Register(observer.Plugin{
		Name:         "notify",
		Version:      "1.0.0",
		Description:  "posts the event id, entity and op to config.url",
		Capabilities: observer.Capabilities{Effects: []string{"http"}},
		Act:          act,
		LazyImages:   true, // the handler reads no row image
	})
}

func main() {}
