// Package condition is the FraiseQL condition language: a small boolean
// expression over one change event, used by an observer to pick the events
// it acts on before any plugin runs.
//
// Lifecycle: a condition is compiled once, at config load, by Parse (a
// syntax error there stops the load, pointing at the column); the engine
// then calls Eval for every routed event. Eval walks the compiled tree with
// no allocation for events decoded with event.DecodeImage, so it is cheap
// enough to run per event per observer. An *Expr is immutable and safe for
// concurrent use; a nil *Expr matches everything.
//
//	e, err := condition.Parse(`after.amount >= 9.99 && field_changed('status')`)
//	ok, err := e.Eval(ev)
//
// # Grammar
//
//	expr    = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | compare
//	compare = operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand ]
//	operand = literal | path | call | "(" expr ")"
//	literal = number | string | "true" | "false" | "null"
//	number  = [ "-" ] digits [ "." digits ] [ ("e" | "E") [ "+" | "-" ] digits ]
//	string  = "'" … "'" | `"` … `"`    (escapes \\ \' \" \n \r \t \uXXXX)
//	path    = name { "." (name | digits) }
//	call    = function "(" string [ "," expr ] ")"
//
// "!" binds looser than a comparison: !after.a == 1 means !(after.a == 1).
// Comparisons do not chain (a < b < c is an error: write a < b && b < c).
// Conditions are at most MaxLen bytes and nest at most MaxDepth levels.
//
// # Paths
//
//   - after.x, before.x: column x of the new / old row image. Further
//     segments walk nested JSON objects (after.address.city); an all-digit
//     segment also indexes arrays (after.items.0.sku). before and after
//     alone are the whole image (after == null is true for a DELETE).
//   - entity, op, key, tenant, source: the event's own fields, as strings.
//     op is "INSERT", "UPDATE" or "DELETE" (case matters). tenant is null
//     when the event has none.
//   - any other bare name x means after.x, as in FraiseQL (total > 1000).
//     A column named like an event field is reached as after.key etc.
//
// A path that does not exist (missing column, missing image, index out of
// range, a step into a non-object) evaluates to null, without error.
//
// # Values and comparison
//
// Values are null, booleans, numbers, strings, objects and arrays. == and
// != compare kind and value: values of different kinds are never equal, so
// the string '5' is not the number 5, and only null (or a missing path)
// equals null. Numbers compare exactly as decimals, whatever their
// spelling: row images keep numbers as json.Number text, and 9.99, 9.990
// and 999e-2 are equal, 0.10000000000000000001 > 0.1 holds, and integers beyond
// 2^53 stay exact; nothing goes through float64. Objects and arrays compare
// deeply.
//
// < <= > >= order two numbers numerically or two strings bytewise (which
// orders ISO 8601 timestamps correctly). For any other pair, a string
// against a number, or anything against null, the comparison is false,
// not an error: a row of an unexpected shape simply does not match,
// rather than sending the event to the dead-letter queue.
//
// In a boolean position (an operand of && || !, or the whole condition)
// only the boolean true is true; a path holding 1, "yes" or null is false.
//
// # Functions
//
// The field argument is a quoted column name or dotted path relative to the
// row image ('amount', 'address.city'), never prefixed with after./before.
//
//   - has_field('x'): x exists in the after image, or in the before image
//     for a DELETE, even if its value is null.
//   - field_changed('x'): x is listed in the event's changed_fields (exact
//     match of the whole argument), or the values at x in the before and
//     after images differ (a missing value counts as null). So for an
//     INSERT or DELETE every non-null field counts as changed. An UPDATE
//     that lacks one of its images relies on changed_fields alone.
//   - field_changed_to('x', v): field_changed('x') && after.x == v.
//   - field_changed_from('x', v): field_changed('x') && before.x == v.
//
// Errors from Parse are *SyntaxError values naming the condition, the
// column (and line, for a condition spanning lines) and what was expected.
package condition
