/*
 * extism-style: the min-amount filter written the way a plugin for Extism's
 * C PDK is written: the Extism kernel imports under their PDK names
 * (extism_input_length, extism_input_load_u64, extism_alloc, extism_store_u64,
 * extism_output_set ...), exports `int32_t name(void)` returning 0, libc for
 * everything else, and nothing from observer but the ABI's JSON and a
 * `describe` export. It proves that a plugin built like that loads and
 * passes the conformance suite.
 *
 * Behaviour (examples/plugins/vectors/README.md, min-amount): passes when
 * event.after.amount is a JSON number >= config.min; otherwise drops with a
 * reason mentioning amount; a missing or non-numeric config.min is an error
 * result with code bad_config. Unlike the observer SDK this compares the
 * numbers as doubles (strtod), as a typical Extism plugin would: exact
 * enough for money amounts with few digits, not for 30-digit decimals.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The imports as Extism's C PDK header declares them. With the PDK at hand,
 * `#define EXTISM_IMPLEMENTATION` + `#include "extism-pdk.h"` replaces this
 * block (the PDK's names and signatures are the same).
 */
#define EXTISM_ENV_MODULE "extism:host/env"
#define EXTISM_IMPORT_ENV(b) __attribute__((import_module(EXTISM_ENV_MODULE), import_name(b)))
#define EXTISM_EXPORT_AS(name) __attribute__((export_name(name)))
#define EXTISM_EXPORTED_FUNCTION(name) EXTISM_EXPORT_AS(#name) name(void)
typedef uint64_t ExtismHandle;

EXTISM_IMPORT_ENV("input_length") extern uint64_t extism_input_length(void);
EXTISM_IMPORT_ENV("input_load_u8") extern uint8_t extism_input_load_u8(uint64_t offs);
EXTISM_IMPORT_ENV("input_load_u64") extern uint64_t extism_input_load_u64(uint64_t offs);
EXTISM_IMPORT_ENV("alloc") extern ExtismHandle extism_alloc(uint64_t n);
EXTISM_IMPORT_ENV("store_u8") extern void extism_store_u8(ExtismHandle p, uint8_t v);
EXTISM_IMPORT_ENV("store_u64") extern void extism_store_u64(ExtismHandle p, uint64_t v);
EXTISM_IMPORT_ENV("output_set") extern void extism_output_set(ExtismHandle p, uint64_t n);
EXTISM_IMPORT_ENV("error_set") extern void extism_error_set(ExtismHandle p);
EXTISM_IMPORT_ENV("log_debug") extern void extism_log_debug(ExtismHandle p);

/* Reads the whole input into a malloc'd, NUL-terminated buffer. */
static char *extism_load_input_dup(size_t *len) {
    uint64_t n = extism_input_length();
    char *buf = malloc(n + 1);
    if (!buf) return NULL;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = extism_input_load_u64(i);
        memcpy(buf + i, &v, 8);
    }
    for (; i < n; i++) buf[i] = (char)extism_input_load_u8(i);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Copies n bytes into a new block of Extism memory. */
static ExtismHandle extism_alloc_buf(const void *src, uint64_t n) {
    ExtismHandle h = extism_alloc(n);
    if (!h) return 0;
    const uint8_t *s = src;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        extism_store_u64(h + i, v);
    }
    for (; i < n; i++) extism_store_u8(h + i, s[i]);
    return h;
}

static int32_t output_sz(const char *s) {
    size_t n = strlen(s);
    ExtismHandle h = extism_alloc_buf(s, n);
    if (!h) {
        const char *msg = "extism-style: no memory for the output";
        extism_error_set(extism_alloc_buf(msg, strlen(msg)));
        return 1;
    }
    extism_output_set(h, n);
    return 0;
}

static void log_debug(const char *s) {
    size_t n = strlen(s);
    if (n) extism_log_debug(extism_alloc_buf(s, n)); /* the host frees it */
}

/*
 * A small recursive-descent JSON reader: enough to validate the input and
 * find members by name. A span is a value's text in the input.
 */
typedef struct {
    const char *p; /* NULL: not found */
    size_t n;
} span;

typedef struct {
    const char *s;
    size_t n, i;
    int depth;
} parser;

enum { MAX_DEPTH = 512 };

static void ws(parser *p) {
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i]) p->i++;
}

static bool lit(parser *p, const char *word) {
    size_t l = strlen(word);
    if (p->n - p->i < l || memcmp(p->s + p->i, word, l) != 0) return false;
    p->i += l;
    return true;
}

static bool string(parser *p) {
    if (p->i >= p->n || p->s[p->i] != '"') return false;
    for (p->i++; p->i < p->n; p->i++) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (++p->i >= p->n) return false;
            c = (unsigned char)p->s[p->i];
            if (c == 'u') {
                for (int k = 0; k < 4; k++)
                    if (++p->i >= p->n || !strchr("0123456789abcdefABCDEF", p->s[p->i]) || !p->s[p->i])
                        return false;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return false;
            }
        }
    }
    return false;
}

static bool digits(parser *p) {
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    return p->i > start;
}

static bool number(parser *p) {
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i < p->n && p->s[p->i] == '0')
        p->i++;
    else if (!digits(p))
        return false;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!digits(p)) return false;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!digits(p)) return false;
    }
    return true;
}

static bool value(parser *p);

static bool container(parser *p, char close, bool object) {
    if (++p->depth > MAX_DEPTH) return false;
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return true;
    }
    for (;;) {
        if (object) {
            if (!string(p)) return false;
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return false;
            p->i++;
        }
        if (!value(p)) return false;
        ws(p);
        if (p->i >= p->n) return false;
        if (p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return true;
        }
        if (p->s[p->i] != ',') return false;
        p->i++;
        ws(p);
    }
}

static bool value(parser *p) {
    ws(p);
    if (p->i >= p->n) return false;
    switch (p->s[p->i]) {
    case '{': return container(p, '}', true);
    case '[': return container(p, ']', false);
    case '"': return string(p);
    case 't': return lit(p, "true");
    case 'f': return lit(p, "false");
    case 'n': return lit(p, "null");
    default: return number(p);
    }
}

/* The member named key of the object in v (the last one if repeated). */
static span member(span v, const char *key) {
    span found = {NULL, 0};
    if (!v.p || v.p[0] != '{') return found;
    parser p = {v.p, v.n, 1, 0};
    size_t klen = strlen(key);
    ws(&p);
    while (p.i < p.n && p.s[p.i] == '"') {
        size_t k = p.i;
        string(&p);
        bool match = p.i - k - 2 == klen && memcmp(p.s + k + 1, key, klen) == 0;
        ws(&p);
        p.i++; /* ':' */
        ws(&p);
        size_t start = p.i;
        value(&p);
        if (match) found = (span){p.s + start, p.i - start};
        ws(&p);
        if (p.i >= p.n || p.s[p.i] != ',') break;
        p.i++;
        ws(&p);
    }
    return found;
}

static bool is_number(span v) {
    if (!v.p) return false;
    parser p = {v.p, v.n, 0, 0};
    return number(&p) && p.i == v.n;
}

static int32_t error_result(const char *code, const char *message) {
    char out[512];
    snprintf(out, sizeof out, "{\"abi\":\"1.0\",\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
    return output_sz(out);
}

static int32_t filter_result(bool pass, const char *reason) {
    char out[1024];
    snprintf(out, sizeof out, "{\"abi\":\"1.0\",\"pass\":%s,\"reason\":\"%s\"}", pass ? "true" : "false", reason);
    return output_sz(out);
}

int32_t EXTISM_EXPORTED_FUNCTION(describe) {
    return output_sz("{\"abi\":\"1.0\",\"name\":\"extism-style\",\"version\":\"1.0.0\",\"roles\":[\"filter\"],"
                     "\"description\":\"min-amount written like an Extism C PDK plugin\"}");
}

int32_t EXTISM_EXPORTED_FUNCTION(filter) {
    size_t n;
    char *input = extism_load_input_dup(&n);
    if (!input) return error_result("no_memory", "cannot allocate the input");

    parser p = {input, n, 0, 0};
    bool ok = value(&p);
    ws(&p);
    if (!ok || p.i != n) {
        free(input);
        return error_result("bad_input", n == 0 ? "input is empty" : "input is not valid JSON");
    }
    span root = {input, n};
    while (root.n && strchr(" \t\r\n", *root.p)) root.p++, root.n--;
    span abi = member(root, "abi");
    if (!abi.p || abi.n < 4 || memcmp(abi.p, "\"1.", 3) != 0) {
        free(input);
        return error_result("bad_input", "input is not an ABI 1.x input object");
    }

    span min = member(member(root, "config"), "min");
    if (!is_number(min)) {
        free(input);
        return error_result("bad_config", "config.min: want a number");
    }
    span event = member(root, "event");
    span after = member(event, "after");
    span amount = member(after, "amount");

    char reason[300];
    bool pass = false;
    if (!after.p || after.p[0] != '{') {
        snprintf(reason, sizeof reason, "no after image, so no amount");
    } else if (!amount.p) {
        snprintf(reason, sizeof reason, "after has no amount");
    } else if (!is_number(amount)) {
        snprintf(reason, sizeof reason, "after.amount is not a number");
    } else {
        double a = strtod(amount.p, NULL), m = strtod(min.p, NULL);
        pass = a >= m;
        /* Numbers are JSON-safe inside a JSON string: no escaping needed. */
        snprintf(reason, sizeof reason, "after.amount = %.*s %s %.*s", (int)(amount.n > 100 ? 100 : amount.n),
                 amount.p, pass ? ">=" : "<", (int)(min.n > 100 ? 100 : min.n), min.p);
    }
    log_debug(reason);
    free(input);
    return filter_result(pass, reason);
}
