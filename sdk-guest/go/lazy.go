package observer

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// Row images on demand (Plugin.LazyImages).
//
// Building Event.Before and Event.After is the largest part of decoding an
// input: a map per image and an insert per column, most of it for columns
// a filter never reads. With LazyImages the decoder only validates the two
// images and keeps their JSON text; Lookup then finds a path by scanning
// that text, and DecodeImages builds the maps for a handler that wants
// them. The results are the same values as with decoded maps.
//
// The text is found from the *Input through a registry that holds it for
// the duration of the handler call. It is the one piece of mutable
// package state besides the registered plugin; it is guarded because
// native tests may run Invoke concurrently (a guest runs one call at a
// time).

// rawImages is the JSON text of an event's images: "" if the key was
// absent, "null" if null.
type rawImages struct {
	before, after string
}

// onDemand lists the inputs being handled with their images' text: one
// entry in a guest, as many as concurrent native Invoke calls in tests, so
// a slice searched linearly is cheaper than a map.
var onDemand struct {
	sync.Mutex
	calls []onDemandCall
}

type onDemandCall struct {
	in  *Input
	raw *rawImages
}

func registerImages(in *Input, raw *rawImages) {
	onDemand.Lock()
	onDemand.calls = append(onDemand.calls, onDemandCall{in, raw})
	onDemand.Unlock()
}

func unregisterImages(in *Input) {
	onDemand.Lock()
	c := onDemand.calls
	for i := range c {
		if c[i].in == in {
			c[i] = c[len(c)-1]
			c[len(c)-1] = onDemandCall{}
			onDemand.calls = c[:len(c)-1]
			break
		}
	}
	onDemand.Unlock()
}

func imagesOf(in *Input) *rawImages {
	onDemand.Lock()
	defer onDemand.Unlock()
	for _, c := range onDemand.calls {
		if c.in == in {
			return c.raw
		}
	}
	return nil
}

// DecodeImages fills in.Event.Before and in.Event.After for a handler of a
// plugin with LazyImages, which are otherwise nil; afterwards the input is
// exactly what it would have been without LazyImages. It does nothing for
// other inputs, or if called again.
func DecodeImages(in *Input) {
	if in == nil || in.Event == nil {
		return
	}
	raw := imagesOf(in)
	if raw == nil {
		return
	}
	if in.Event.Before == nil {
		in.Event.Before = decodeImage(raw.before)
	}
	if in.Event.After == nil {
		in.Event.After = decodeImage(raw.after)
	}
}

// decodeImage builds the map of a validated image ("" or "null": nil).
func decodeImage(raw string) map[string]any {
	if raw == "" || raw == "null" {
		return nil
	}
	d := &decoder{s: raw}
	m, _ := d.object(1)
	return m
}

// lazyImage returns the JSON text of image root ("after" or "before") of
// an input whose images were left undecoded, if they were and the handler
// has not set the map itself.
func lazyImage(in *Input, root string) (string, bool) {
	e := in.Event
	switch {
	case root == "after" && e.After == nil, root == "before" && e.Before == nil:
	default:
		return "", false
	}
	raw := imagesOf(in)
	if raw == nil {
		return "", false
	}
	if root == "after" {
		return raw.after, true
	}
	return raw.before, true
}

// lookupRaw resolves the dotted path rest inside a validated image's JSON
// text, giving what Lookup gives on the decoded map: the last of duplicate
// keys, arrays by strconv.Atoi index, values decoded as by DecodeInput.
func lookupRaw(raw, rest string) (any, bool) {
	if raw == "" || raw == "null" {
		return nil, false
	}
	d := &decoder{s: raw}
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, ".")
		switch d.peek() {
		case '{':
			members, _ := d.enter()
			found := -1
			for members {
				k, _ := d.key()
				if k == seg {
					found = d.i
				}
				d.skip(1)
				members, _ = d.sep('}')
			}
			if found < 0 {
				return nil, false
			}
			d.i = found
		case '[':
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 {
				return nil, false
			}
			d.i++
			d.ws()
			if d.peek() == ']' {
				return nil, false
			}
			for ; i > 0; i-- {
				d.skip(1)
				if more, _ := d.sep(']'); !more {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}
	switch c := d.peek(); {
	case c == '"':
		s, _ := d.str()
		return s, true
	case c == '-' || '0' <= c && c <= '9':
		n, _ := d.num()
		return json.Number(n), true
	}
	v, _ := d.value(0)
	return v, true
}
