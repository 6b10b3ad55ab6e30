package main

// The webhook as first written (encoding/json, strings.Builder): the
// reference that the optimized plugin must match byte for byte.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	observer "github.com/fraiseql/observer/sdk-guest/go"
)

func refAct(in *observer.Input) (observer.ActResult, error) {
	c, err := refParseConfig(in.Config)
	if err != nil {
		return observer.ActResult{}, err
	}
	headers := map[string]string{}
	for k, v := range c.Headers {
		headers[k] = v
	}
	eff := observer.Effect{Type: "http", HTTP: &observer.HTTPEffect{Method: c.Method, URL: c.URL, Headers: headers}}
	if c.Body == nil {
		// No refTemplate: the body is the whole event.
		b, err := json.Marshal(in.Event)
		if err != nil {
			return observer.ActResult{}, observer.Errorf("bad_event", "event cannot be encoded as JSON: %v", err)
		}
		eff.HTTP.BodyJSON = b
	} else {
		tpl, err := refParseTemplate(*c.Body)
		if err != nil {
			return observer.ActResult{}, observer.Errorf(observer.CodeBadConfig, "config.body: %v", err)
		}
		body, err := tpl.render(in)
		if err != nil {
			return observer.ActResult{}, observer.Errorf("render", "config.body: %v", err)
		}
		eff.HTTP.Body = body
		if !refHasHeader(headers, "Content-Type") {
			headers["Content-Type"] = "application/json"
		}
	}
	if len(headers) == 0 {
		eff.HTTP.Headers = nil
	}
	return observer.ActResult{Effects: []observer.Effect{eff}}, nil
}

func refParseConfig(raw json.RawMessage) (*config, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, observer.Errorf(observer.CodeBadConfig, `config is missing: want at least {"url": "https://..."}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		return nil, observer.Errorf(observer.CodeBadConfig, "config: %v (known keys: url, method, headers, body)", err)
	}
	if c.URL == "" {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, observer.Errorf(observer.CodeBadConfig, "config.url %q is not an absolute http or https URL", c.URL)
	}
	if c.Method == "" {
		c.Method = "POST"
	}
	c.Method = strings.ToUpper(c.Method)
	for _, r := range c.Method {
		if r < 'A' || r > 'Z' {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.method %q is not an HTTP method", c.Method)
		}
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n\t") {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(c.Headers[k], "\r\n") {
			return nil, observer.Errorf(observer.CodeBadConfig, "config.headers.%s: value contains a line break", k)
		}
	}
	return &c, nil
}

func refHasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// refTemplate is a body with {{ path }} and {{ raw path }} placeholders.
type refTemplate struct {
	parts []refPart
}

type refPart struct {
	text string // literal text, or
	path string // a path into the input
	raw  bool
}

func refParseTemplate(s string) (*refTemplate, error) {
	t := &refTemplate{}
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return nil, fmt.Errorf("%q has a \"}}\" with no \"{{\"", s)
			}
			t.parts = append(t.parts, refPart{text: s})
			return t, nil
		}
		if strings.Contains(s[:i], "}}") {
			return nil, fmt.Errorf("%q has a \"}}\" with no \"{{\"", s[:i])
		}
		t.parts = append(t.parts, refPart{text: s[:i]})
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return nil, fmt.Errorf("placeholder \"{{%s\" is not closed with \"}}\"", s)
		}
		expr := strings.Fields(s[:j])
		p := refPart{}
		switch {
		case len(expr) == 1:
			p.path = expr[0]
		case len(expr) == 2 && expr[0] == "raw":
			p.path, p.raw = expr[1], true
		default:
			return nil, fmt.Errorf("placeholder \"{{%s}}\" must be {{ path }} or {{ raw path }}", s[:j])
		}
		if err := observer.CheckPath(p.path); err != nil {
			return nil, fmt.Errorf("placeholder \"{{%s}}\": %v", s[:j], err)
		}
		t.parts = append(t.parts, p)
		s = s[j+2:]
	}
}

// render substitutes every placeholder. {{ path }} renders the value as a
// JSON literal (strings quoted and escaped, absent values as null);
// {{ raw path }} renders strings without quotes, other values as JSON and
// absent or null values as nothing.
func (t *refTemplate) render(in *observer.Input) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.path == "" {
			b.WriteString(p.text)
			continue
		}
		v, ok := observer.Lookup(in, p.path)
		if p.raw {
			if s, isStr := v.(string); isStr {
				b.WriteString(s)
				continue
			}
			if !ok || v == nil {
				continue
			}
		}
		if !ok {
			v = nil
		}
		var j bytes.Buffer
		enc := json.NewEncoder(&j)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", fmt.Errorf("{{ %s }}: %v", p.path, err)
		}
		b.Write(bytes.TrimSuffix(j.Bytes(), []byte("\n")))
	}
	return b.String(), nil
}
