/*
 * observer.h: write observer plugins in C (observer ABI v1, abi/SPEC.md).
 *
 * A plugin is one C file that includes this header, defines its handlers and
 * declares itself with OBSERVER_PLUGIN; observer.c is compiled beside it.
 * Target wasm32-wasi with clang + lld; the SDK needs no libc (build with
 * -ffreestanding -nostdlib) but also works with wasi-libc. README.md has the
 * build commands and a complete example.
 *
 *     static int keep_big(obs_call *c) {
 *         obs_value min = obs_get(obs_config(c), "min");
 *         obs_value amount = obs_get(obs_event(c), "after.amount");
 *         if (min.type != OBS_NUMBER)
 *             return obs_error(c, "bad_config", "config.min: want a number");
 *         if (amount.type != OBS_NUMBER)
 *             return obs_drop(c, "no numeric after.amount");
 *         if (obs_num_cmp(amount, min) >= 0)
 *             return obs_pass(c, "amount %.*s >= %.*s", OBS_TEXT(amount), OBS_TEXT(min));
 *         return obs_drop(c, "amount %.*s < %.*s", OBS_TEXT(amount), OBS_TEXT(min));
 *     }
 *
 *     OBSERVER_PLUGIN(.name = "keep-big", .version = "1.0.0", .filter = keep_big)
 *
 * What the SDK does for every call: it reads the input, checks that it is
 * one valid JSON object of ABI 1.x holding an "event" object (otherwise the
 * call answers with an error result, code "bad_input", and the handler is
 * not called), runs the handler, and writes the result JSON. Nothing a
 * handler receives can make the SDK trap: lookups on missing paths give
 * OBS_MISSING values, allocation failures turn the result into a retryable
 * error result.
 *
 * Memory: everything the SDK hands out (strings, formatted messages, JSON
 * text) lives in a per-call arena that is emptied when the next call
 * starts. Never keep such a pointer across calls; never free it.
 *
 * Not thread-safe (WebAssembly instances are single-threaded; the host
 * serves one call at a time per instance).
 */
#ifndef OBSERVER_H
#define OBSERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this SDK speaks and writes into every result. */
#define OBS_ABI_VERSION "1.0"

/* Error codes used by the SDK itself (SPEC section 5). */
#define OBS_BAD_INPUT "bad_input"   /* the input was not a valid ABI 1.x input */
#define OBS_BAD_CONFIG "bad_config" /* for your own config checks */
#define OBS_NO_HANDLER "no_handler" /* a role the plugin has no handler for */
#define OBS_NO_MEMORY "no_memory"   /* an allocation failed (retryable) */

/* ---------------------------------------------------------------- JSON -- */

typedef enum {
    OBS_MISSING = 0, /* no such value (a lookup that found nothing) */
    OBS_NULL,
    OBS_FALSE,
    OBS_TRUE,
    OBS_NUMBER, /* kept as its JSON text: exact whatever its size */
    OBS_STRING, /* the text includes the quotes and any escapes */
    OBS_ARRAY,
    OBS_OBJECT
} obs_type;

/*
 * A JSON value: its type and its text inside a validated JSON document (the
 * call's input, or a document checked with obs_parse). Values are views: no
 * copy is made and nothing needs freeing. Only the SDK makes them.
 */
typedef struct {
    obs_type type;
    const char *json; /* the value's JSON text; NULL when OBS_MISSING */
    size_t len;       /* its length in bytes */
} obs_value;

/* For printf-style formats: "%.*s" with OBS_TEXT(v) shows v's JSON text. */
#define OBS_TEXT(v) (int)(v).len, ((v).json ? (v).json : "")

/* "missing", "null", "false", "true", "number", "string", "array", "object". */
const char *obs_type_name(obs_type t);

/*
 * obs_get follows a dotted path: object members by name, array elements by
 * index ("after.items.0.sku"). The empty path is v itself. A member named
 * with a dot needs obs_member. Of duplicate keys the last one counts, as in
 * Go's encoding/json. Anything not found, or a path through a non-container,
 * gives OBS_MISSING; a lookup on OBS_MISSING gives OBS_MISSING, so chains
 * need no checks in between.
 */
obs_value obs_get(obs_value v, const char *path);
/* The member of object v named key (compared after decoding escapes). */
obs_value obs_member(obs_value v, const char *key);
obs_value obs_member_n(obs_value v, const char *key, size_t key_len);
/* Element i of array v. */
obs_value obs_at(obs_value v, size_t i);
/* Members of an object or elements of an array; 0 for anything else. */
size_t obs_count(obs_value v);

/*
 * Iterating over an object or array:
 *
 *     obs_iter it = obs_iter_begin(obj);
 *     obs_value key, val;
 *     while (obs_iter_next(&it, &key, &val)) { ... }
 *
 * key is the member name as an OBS_STRING value (OBS_MISSING for arrays);
 * either pointer may be NULL.
 */
typedef struct {
    const char *p, *end;
    bool object;
} obs_iter;
obs_iter obs_iter_begin(obs_value v);
bool obs_iter_next(obs_iter *it, obs_value *key, obs_value *val);

/* Whether v is a string equal to s once decoded. */
bool obs_str_eq(obs_value v, const char *s);
/*
 * Decodes string v into buf (at most cap-1 bytes, then a NUL) and returns
 * the decoded length, which may exceed cap-1 (then the copy is cut, like
 * snprintf). Returns 0 and writes "" if v is not a string. Escapes are
 * decoded to UTF-8; invalid UTF-8 and lone surrogates become U+FFFD, as in
 * Go's encoding/json.
 */
size_t obs_str_copy(obs_value v, char *buf, size_t cap);

/*
 * Exact comparison of two JSON numbers as decimals (no conversion to
 * double: 0.1 + 1e-30 and 1e400 compare correctly): -1, 0 or 1.
 * OBS_CMP_INVALID if either is not an OBS_NUMBER. Exponents are exact up to
 * 4e18 in magnitude and saturate beyond.
 */
#define OBS_CMP_INVALID 2
int obs_num_cmp(obs_value a, obs_value b);
/* obs_num_cmp against a number written as text ("9.99"). */
int obs_num_cmp_text(obs_value a, const char *number);
/* The exact integer value of v (1, -7, 1e3, 2.50e1) if it fits in int64. */
bool obs_num_i64(obs_value v, int64_t *out);
/*
 * v as a double. Exact (correctly rounded) when the digits fit in 53 bits
 * and the exponent is small (11.99, 1e22, 123456.789); otherwise within a
 * few units in the last place without libc, correctly rounded with libc
 * (strtod). Compare with obs_num_cmp when it matters.
 */
bool obs_num_f64(obs_value v, double *out);

/*
 * Validates json[0..len) as one JSON value (RFC 8259; nesting up to
 * OBS_MAX_DEPTH) and makes it a value. On failure returns false and, if err
 * is not NULL, points it at a static description such as "unexpected end
 * of input"; *err_at (if not NULL) gets the byte offset.
 */
#define OBS_MAX_DEPTH 10000
bool obs_parse(const char *json, size_t len, obs_value *out, const char **err, size_t *err_at);

/* ---------------------------------------------------------------- calls -- */

/* One call of an export: its input, its arena and the result being built. */
typedef struct obs_call obs_call;

/* A role handler. Return the value of obs_pass/obs_drop/obs_error/... (0). */
typedef int (*obs_handler)(obs_call *c);

/* The whole input object, and its members "event", "config", "context". */
obs_value obs_input(obs_call *c);
obs_value obs_event(obs_call *c);   /* always an object inside a handler */
obs_value obs_config(obs_call *c);  /* OBS_MISSING when none is configured */
obs_value obs_context(obs_call *c);
/* "filter" or "act": the role being called. */
const char *obs_role(obs_call *c);

/* Filter results. reason is a printf format (see obs_sprintf) or NULL. */
int obs_pass(obs_call *c, const char *reason, ...) __attribute__((format(printf, 2, 3)));
int obs_drop(obs_call *c, const char *reason, ...) __attribute__((format(printf, 2, 3)));

/*
 * Error results, any role (SPEC section 5). obs_error is permanent: the host
 * dead-letters the event at once. obs_retryable asks the host to retry the
 * event later. code is a short machine-readable reason (may be NULL).
 */
int obs_error(obs_call *c, const char *code, const char *message, ...)
    __attribute__((format(printf, 3, 4)));
int obs_retryable(obs_call *c, const char *code, const char *message, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Act effects, executed by the host in the order they are added once the
 * handler returns (and discarded if it reports an error). headers and
 * fields are NULL-terminated lists of name, value pairs:
 *
 *     const char *headers[] = {"content-type", "application/json", NULL};
 *
 * obs_http sends body as is; obs_http_json sends the JSON text json as
 * body_json (the host sets Content-Type: application/json); it must be valid
 * JSON, e.g. from an obs_jw. level is "debug", "info", "warn" or "error".
 */
void obs_http(obs_call *c, const char *method, const char *url, const char *const *headers,
              const char *body, size_t body_len);
void obs_http_json(obs_call *c, const char *method, const char *url, const char *const *headers,
                   const char *json, size_t json_len);
void obs_log_effect(obs_call *c, const char *level, const char *message, const char *const *fields);

/* ----------------------------------------------------- host services -- */

typedef enum { OBS_TRACE = 0, OBS_DEBUG, OBS_INFO, OBS_WARN, OBS_ERROR } obs_level;

/* A log line now, through the host's logger (lines are cut at 4 KiB). */
void obs_log(obs_call *c, obs_level level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether the host would keep a line at level (skip costly formatting). */
bool obs_log_enabled(obs_level level);

/*
 * The operator's plugin-level config value for key ([plugins.NAME].config
 * in observer.toml) through config_get: NUL-terminated in the arena, length
 * in *len if len is not NULL. NULL if the key is not set. The observer's
 * own config is obs_config(c).
 */
const char *obs_config_get(obs_call *c, const char *key, size_t *len);

/* ------------------------------------------------------------- memory -- */

/* n bytes from the call's arena, 8-aligned, or NULL if memory ran out. */
void *obs_alloc(obs_call *c, size_t n);
/*
 * Whether an allocation of this call failed. The SDK then answers with a
 * retryable "no_memory" error result whatever the handler returns, so a
 * handler checks this only to stop early. The SDK's own functions keep
 * working after a failure: strings come back as "", writers stop writing.
 */
bool obs_failed(obs_call *c);

/*
 * printf into the arena. Verbs: %s %.*s %c %d %i %u %x with the length
 * modifiers l ll z j, and %%. No widths, flags or floating point.
 */
const char *obs_sprintf(obs_call *c, const char *format, ...) __attribute__((format(printf, 2, 3)));
const char *obs_vsprintf(obs_call *c, const char *format, va_list ap);
/*
 * String v decoded into the arena, NUL-terminated (a decoded \u0000 ends the
 * C string early: use *len); NULL if v is not a string.
 */
const char *obs_str(obs_call *c, obs_value v, size_t *len);

/* --------------------------------------------------------- JSON writer -- */

/*
 * A JSON writer into the arena. Commas are placed for you; strings are
 * escaped (quotes, backslashes, control characters; invalid UTF-8 becomes
 * U+FFFD).
 *
 *     obs_jw w = obs_jw_new(c);
 *     obs_jw_object(&w);
 *     obs_jw_key(&w, "id");  obs_jw_value(&w, obs_get(obs_event(c), "id"));
 *     obs_jw_key(&w, "n");   obs_jw_int(&w, 3);
 *     obs_jw_end_object(&w);
 *     size_t n; const char *text = obs_jw_text(&w, &n);
 */
typedef struct {
    obs_call *c;
    char *buf;
    size_t len, cap;
} obs_jw;

obs_jw obs_jw_new(obs_call *c);
void obs_jw_object(obs_jw *w);
void obs_jw_end_object(obs_jw *w);
void obs_jw_array(obs_jw *w);
void obs_jw_end_array(obs_jw *w);
void obs_jw_key(obs_jw *w, const char *key);
void obs_jw_string(obs_jw *w, const char *s);
void obs_jw_string_n(obs_jw *w, const char *s, size_t n);
void obs_jw_int(obs_jw *w, int64_t v);
void obs_jw_bool(obs_jw *w, bool v);
void obs_jw_null(obs_jw *w);
/* Copies v's JSON text unchanged (numbers stay exact); null if missing. */
void obs_jw_value(obs_jw *w, obs_value v);
/* Appends json as one value; it must be valid JSON. */
void obs_jw_raw(obs_jw *w, const char *json, size_t n);
/* The text so far, NUL-terminated; its length in *len if len is not NULL. */
const char *obs_jw_text(obs_jw *w, size_t *len);

/* -------------------------------------------------------------- plugin -- */

/*
 * What describe reports, and the handlers. The roles in the manifest are
 * those with a handler. An act plugin lists the effect types it returns in
 * effects; http_hosts (optional) narrows where its http effects may go.
 */
typedef struct {
    const char *name, *version, *description;
    obs_handler filter, act;
    const char *effects[8];     /* "http", "log" */
    const char *http_hosts[16]; /* omitted from the manifest when empty */
    bool log, config;           /* capabilities.log / .config (advisory) */
} obs_plugin;

/*
 * Runs one export for plugin p: role "filter" or "act", or NULL for
 * describe. Returns the export's return value. OBSERVER_PLUGIN calls it.
 */
int32_t obs_run(const obs_plugin *p, const char *role);

/*
 * Declares the module's plugin and defines the exports describe, filter and
 * act (a role without a handler answers with a "no_handler" error result).
 * Use it once, at file scope, with designated initializers of obs_plugin.
 */
#define OBSERVER_PLUGIN(...)                                                                  \
    static const obs_plugin obs__plugin = {__VA_ARGS__};                                      \
    __attribute__((export_name("describe"))) int32_t obs__describe(void) {                   \
        return obs_run(&obs__plugin, (const char *)0);                                        \
    }                                                                                         \
    __attribute__((export_name("filter"))) int32_t obs__filter(void) {                       \
        return obs_run(&obs__plugin, "filter");                                               \
    }                                                                                         \
    __attribute__((export_name("act"))) int32_t obs__act(void) { return obs_run(&obs__plugin, "act"); }

#ifdef __cplusplus
}
#endif
#endif /* OBSERVER_H */
