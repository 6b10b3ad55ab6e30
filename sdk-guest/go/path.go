package observer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Lookup resolves a dotted path against the input and reports whether it
// names a value. Paths start at one of these roots:
//
//	after.<field>...     the after image (nil on DELETE)
//	before.<field>...    the before image (nil on INSERT)
//	event.<field>...     any event field by its JSON name: event.id, event.entity, event.after.x
//	context.<field>      the call context: context.now, context.observer, context.attempt ...
//	id, position, source, entity, op, key, tenant, commit_time, txid, changed_fields
//	                     event fields, as a shorthand for event.<field>
//
// Below the root, a segment is an object key or, for arrays, a decimal
// index: "after.items.0.sku". Keys containing dots cannot be addressed.
// Numbers come back as json.Number, objects as map[string]any and arrays
// as []any, exactly as decoded from the input. A JSON null that is present
// gives (nil, true); an absent key or a nil image gives (nil, false).
func Lookup(in *Input, path string) (any, bool) {
	if in == nil {
		return nil, false
	}
	root, rest, _ := strings.Cut(strings.TrimSpace(path), ".")
	var v any
	var ok bool
	switch root {
	case "event":
		if in.Event == nil {
			return nil, false
		}
		if rest == "" {
			DecodeImages(in)
			return toGeneric(in.Event)
		}
		root, rest, _ = strings.Cut(rest, ".")
		if raw, lazy := lazyImage(in, root); lazy {
			return lookupRaw(raw, rest)
		}
		v, ok = eventField(in.Event, root)
	case "context":
		if rest == "" {
			return toGeneric(&in.Context)
		}
		root, rest, _ = strings.Cut(rest, ".")
		v, ok = contextField(&in.Context, root)
	default:
		if in.Event == nil {
			return nil, false
		}
		if raw, lazy := lazyImage(in, root); lazy {
			return lookupRaw(raw, rest)
		}
		v, ok = eventField(in.Event, root)
	}
	if !ok {
		return nil, false
	}
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, ".")
		switch x := v.(type) {
		case map[string]any:
			v, ok = x[seg]
			if !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func eventField(e *Event, name string) (any, bool) {
	switch name {
	case "after":
		if e.After == nil {
			return nil, false
		}
		return e.After, true
	case "before":
		if e.Before == nil {
			return nil, false
		}
		return e.Before, true
	case "id":
		return e.ID, true
	case "position":
		return json.Number(strconv.FormatUint(e.Position, 10)), true
	case "source":
		return e.Source, true
	case "entity":
		return e.Entity, true
	case "op":
		return string(e.Op), true
	case "key":
		return e.Key, true
	case "tenant":
		return e.Tenant, true
	case "commit_time":
		return e.CommitTime, true
	case "txid":
		return e.TxID, true
	case "changed_fields":
		out := make([]any, len(e.ChangedFields))
		for i, f := range e.ChangedFields {
			out[i] = f
		}
		return out, true
	case "trace":
		if e.Trace == nil {
			return nil, false
		}
		return toGeneric(e.Trace)
	}
	return nil, false
}

func contextField(c *CallContext, name string) (any, bool) {
	switch name {
	case "observer":
		return c.Observer, true
	case "plugin":
		return c.Plugin, true
	case "role":
		return c.Role, true
	case "attempt":
		return json.Number(strconv.Itoa(c.Attempt)), true
	case "dry_run":
		return c.DryRun, true
	case "now":
		return c.Now, true
	case "trace":
		if c.Trace == nil {
			return nil, false
		}
		return toGeneric(c.Trace)
	}
	return nil, false
}

// toGeneric renders v as the generic JSON form (maps, slices, json.Number).
func toGeneric(v any) (any, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, false
	}
	return out, true
}

// pathRoots are the names a path may start with.
var pathRoots = map[string]bool{
	"after": true, "before": true, "event": true, "context": true,
	"id": true, "position": true, "source": true, "entity": true, "op": true, "key": true,
	"tenant": true, "commit_time": true, "txid": true, "changed_fields": true, "trace": true,
}

// CheckPath reports whether path is well formed and starts at a known root
// (see Lookup), so that a plugin can reject a misspelt path in its
// configuration instead of treating it as absent on every event.
func CheckPath(path string) error {
	p := strings.TrimSpace(path)
	if p == "" {
		return fmt.Errorf("path is empty")
	}
	root, _, _ := strings.Cut(p, ".")
	if !pathRoots[root] {
		return fmt.Errorf("path %q starts with %q; want one of after, before, event, context, id, position, source, entity, op, key, tenant, commit_time, txid, changed_fields, trace", path, root)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("path %q has an empty segment", path)
		}
	}
	return nil
}
