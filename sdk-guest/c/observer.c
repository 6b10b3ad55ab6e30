/*
 * observer.c: the observer C SDK (see observer.h and README.md).
 *
 * Sections: the Extism kernel imports; memory (the per-call arena, and the
 * few libc functions a freestanding build needs); the JSON reader; the JSON
 * writer and printf; calls, results and effects; the exports' driver.
 *
 * Build modes. With -ffreestanding (__STDC_HOSTED__ == 0) the SDK uses no
 * libc at all: the arena grows linear memory with memory.grow and memcpy &
 * co. are defined here. With wasi-libc (hosted) the arena takes its chunks
 * from malloc, so that it never fights dlmalloc over memory.grow. Define
 * OBS_USE_LIBC to 0 or 1 to choose explicitly.
 */
#include "observer.h"

#ifndef OBS_USE_LIBC
#define OBS_USE_LIBC __STDC_HOSTED__
#endif

#if OBS_USE_LIBC
#include <stdlib.h>
#include <string.h>
#endif

/* ------------------------------------------------ Extism kernel imports -- */

/*
 * The Extism kernel (abi/SPEC.md 1.1). Pointers are offsets into the host's
 * kernel memory, not into this module's memory; bytes move through
 * load/store calls, eight at a time.
 */
#define OBS_IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))

OBS_IMPORT("input_length") extern uint64_t obs__input_length(void);
OBS_IMPORT("input_load_u8") extern uint32_t obs__input_load_u8(uint64_t i);
OBS_IMPORT("input_load_u64") extern uint64_t obs__input_load_u64(uint64_t i);
OBS_IMPORT("alloc") extern uint64_t obs__kalloc(uint64_t n);
OBS_IMPORT("free") extern void obs__kfree(uint64_t p);
OBS_IMPORT("length") extern uint64_t obs__klength(uint64_t p);
OBS_IMPORT("load_u8") extern uint32_t obs__load_u8(uint64_t p);
OBS_IMPORT("load_u64") extern uint64_t obs__load_u64(uint64_t p);
OBS_IMPORT("store_u8") extern void obs__store_u8(uint64_t p, uint32_t v);
OBS_IMPORT("store_u64") extern void obs__store_u64(uint64_t p, uint64_t v);
OBS_IMPORT("output_set") extern void obs__output_set(uint64_t p, uint64_t n);
OBS_IMPORT("error_set") extern void obs__error_set(uint64_t p);
OBS_IMPORT("config_get") extern uint64_t obs__config_get(uint64_t key);
OBS_IMPORT("log_trace") extern void obs__log_trace(uint64_t p);
OBS_IMPORT("log_debug") extern void obs__log_debug(uint64_t p);
OBS_IMPORT("log_info") extern void obs__log_info(uint64_t p);
OBS_IMPORT("log_warn") extern void obs__log_warn(uint64_t p);
OBS_IMPORT("log_error") extern void obs__log_error(uint64_t p);
OBS_IMPORT("get_log_level") extern int32_t obs__get_log_level(void);

/* Copies b into a new kernel block: its offset, or 0 (empty, or refused). */
static uint64_t kstore(const char *b, size_t n) {
    if (n == 0) return 0;
    uint64_t p = obs__kalloc(n);
    if (p == 0) return 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        __builtin_memcpy(&v, b + i, 8);
        obs__store_u64(p + i, v);
    }
    for (; i < n; i++) obs__store_u8(p + i, (uint8_t)b[i]);
    return p;
}

/* Copies kernel block p (n bytes) to dst. */
static void kload(uint64_t p, char *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = obs__load_u64(p + i);
        __builtin_memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = (char)obs__load_u8(p + i);
}

/* -------------------------------------------------------------- memory -- */

#if !OBS_USE_LIBC
/*
 * The compiler may emit calls to these even in freestanding code (struct
 * copies, zeroing). -ffreestanding keeps it from turning the loops below
 * back into calls to themselves.
 */
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}
void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}
void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}
#define obs__memcpy memcpy
#define obs__memcmp memcmp
#else
#define obs__memcpy memcpy
#define obs__memcmp memcmp
#endif

static size_t obs__strlen(const char *s) {
    size_t n = 0;
    if (!s) return 0;
    while (s[n]) n++;
    return n;
}

/*
 * The arena: a chain of chunks, bump-allocated, emptied at the start of
 * every call and kept for the next one, so a warm instance allocates
 * nothing. Chunks come from memory.grow (freestanding) or malloc (libc).
 */
typedef struct obs__chunk {
    struct obs__chunk *next;
    size_t cap, used;
    size_t pad; /* keeps the data 8-aligned: the header is 16 bytes */
} obs__chunk;

#define OBS_CHUNK_MIN (64u << 10)
#define OBS_HDR sizeof(obs__chunk)

static obs__chunk *arena_first, *arena_cur;
static bool arena_failed;

static char *chunk_data(obs__chunk *k) { return (char *)k + OBS_HDR; }

/* A new chunk of at least n data bytes, or NULL. */
static obs__chunk *chunk_new(size_t n) {
    size_t want = n + OBS_HDR;
    if (want < n) return NULL;
    if (want < OBS_CHUNK_MIN) want = OBS_CHUNK_MIN;
#if OBS_USE_LIBC
    obs__chunk *k = malloc(want);
    if (!k) return NULL;
#else
    size_t pages = want / 65536 + (want % 65536 != 0);
    size_t old = __builtin_wasm_memory_grow(0, pages);
    if (old == (size_t)-1) return NULL;
    obs__chunk *k = (obs__chunk *)(old * 65536);
    want = pages * 65536;
#endif
    k->next = 0;
    k->cap = want - OBS_HDR;
    k->used = 0;
    return k;
}

static void arena_reset(void) {
    arena_failed = false;
    if (!arena_first) {
#if !OBS_USE_LIBC
        /* The rest of the initial memory, after the static data, is free. */
        extern unsigned char __heap_base;
        size_t base = ((size_t)&__heap_base + 7) & ~(size_t)7;
        size_t end = __builtin_wasm_memory_size(0) * 65536;
        if (end > base && end - base >= OBS_HDR + 4096) {
            obs__chunk *k = (obs__chunk *)base;
            k->next = 0;
            k->cap = end - base - OBS_HDR;
            k->used = 0;
            arena_first = k;
        }
#endif
    }
    arena_cur = arena_first;
    if (arena_cur) arena_cur->used = 0;
}

static void *arena_alloc(size_t n) {
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    obs__chunk *k = arena_cur;
    if (k && k->cap - k->used >= n) {
        void *p = chunk_data(k) + k->used;
        k->used += n;
        return p;
    }
    /* Chunks kept from earlier calls first, then a new one. */
    while (k && k->next) {
        k = k->next;
        k->used = 0;
        arena_cur = k;
        if (k->cap >= n) {
            k->used = n;
            return chunk_data(k);
        }
    }
    obs__chunk *fresh = chunk_new(n);
    if (!fresh) {
        arena_failed = true;
        return 0;
    }
    if (k)
        k->next = fresh;
    else
        arena_first = fresh;
    arena_cur = fresh;
    fresh->used = n;
    return chunk_data(fresh);
}

/* Grows the block p of oldcap bytes to newcap: in place when p is the last
 * allocation and its chunk has room, else by copying. */
static void *arena_grow(void *p, size_t oldcap, size_t newcap) {
    oldcap = (oldcap + 7) & ~(size_t)7;
    newcap = (newcap + 7) & ~(size_t)7;
    obs__chunk *k = arena_cur;
    if (p && k && (char *)p + oldcap == chunk_data(k) + k->used &&
        k->cap - (k->used - oldcap) >= newcap) {
        k->used = k->used - oldcap + newcap;
        return p;
    }
    void *q = arena_alloc(newcap);
    if (q && p) obs__memcpy(q, p, oldcap);
    return q;
}

/* --------------------------------------------------------- JSON reader -- */

typedef const unsigned char *bytes;

static bool is_ws(unsigned c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(unsigned c) { return c - '0' < 10u; }
static int hexval(unsigned c) {
    if (c - '0' < 10u) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u) return (int)(c - 'a' + 10);
    return -1;
}

static size_t skip_ws(bytes s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* Validating scans return the index after what they scanned, or 0 with
 * *why and *at set. */
static size_t scan_string(bytes s, size_t n, size_t i, const char **why, size_t *at) {
    for (i++; i < n;) {
        unsigned c = s[i];
        if (c == '"') return i + 1;
        if (c == '\\') {
            if (i + 1 >= n) break;
            c = s[i + 1];
            if (c == 'u') {
                if (i + 6 > n) break;
                for (size_t j = i + 2; j < i + 6; j++)
                    if (hexval(s[j]) < 0) {
                        *why = "invalid \\u escape in a string";
                        *at = i;
                        return 0;
                    }
                i += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                i += 2;
            } else {
                *why = "invalid escape in a string";
                *at = i;
                return 0;
            }
        } else if (c < 0x20) {
            *why = "control character in a string";
            *at = i;
            return 0;
        } else {
            i++;
        }
    }
    *why = "unexpected end of input in a string";
    *at = n;
    return 0;
}

static size_t scan_number(bytes s, size_t n, size_t i, const char **why, size_t *at) {
    size_t start = i;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && is_digit(s[i])) {
        while (i < n && is_digit(s[i])) i++;
    } else {
        goto bad;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) goto bad;
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !is_digit(s[i])) goto bad;
        while (i < n && is_digit(s[i])) i++;
    }
    return i;
bad:
    *why = "invalid number";
    *at = start;
    return 0;
}

static bool has_lit(bytes s, size_t n, size_t i, const char *lit, size_t l) {
    return n - i >= l && obs__memcmp(s + i, lit, l) == 0;
}

/*
 * Validates s[0..n) as one JSON value without recursion: the kind of each
 * open container is one bit of a stack, so hostile nesting costs no call
 * stack and stops at OBS_MAX_DEPTH with an error.
 */
static bool validate(bytes s, size_t n, const char **why, size_t *at) {
    enum { VALUE, AFTER, MEMBER } state = VALUE;
    unsigned char stack[(OBS_MAX_DEPTH + 7) / 8];
    size_t depth = 0;
    size_t i = skip_ws(s, n, 0);
#define FAIL(pos, msg) \
    do {               \
        *why = (msg);  \
        *at = (pos);   \
        return false;  \
    } while (0)
    for (;;) {
        switch (state) {
        case VALUE:
            if (i >= n) FAIL(i, "unexpected end of input");
            switch (s[i]) {
            case '{':
            case '[': {
                bool obj = s[i] == '{';
                if (depth == OBS_MAX_DEPTH) FAIL(i, "nested deeper than 10000 levels");
                if (obj)
                    stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
                else
                    stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
                depth++;
                i = skip_ws(s, n, i + 1);
                if (i < n && s[i] == (obj ? '}' : ']')) {
                    depth--;
                    i++;
                    state = AFTER;
                } else {
                    state = obj ? MEMBER : VALUE;
                }
                continue;
            }
            case '"':
                if (!(i = scan_string(s, n, i, why, at))) return false;
                break;
            case 't':
                if (!has_lit(s, n, i, "true", 4)) FAIL(i, "invalid literal");
                i += 4;
                break;
            case 'f':
                if (!has_lit(s, n, i, "false", 5)) FAIL(i, "invalid literal");
                i += 5;
                break;
            case 'n':
                if (!has_lit(s, n, i, "null", 4)) FAIL(i, "invalid literal");
                i += 4;
                break;
            default:
                if (s[i] != '-' && !is_digit(s[i])) FAIL(i, "invalid character");
                if (!(i = scan_number(s, n, i, why, at))) return false;
            }
            state = AFTER;
            continue;
        case AFTER:
            i = skip_ws(s, n, i);
            if (depth == 0) {
                if (i != n) FAIL(i, "data after the JSON value");
                return true;
            }
            if (i >= n) FAIL(i, "unexpected end of input");
            {
                bool obj = stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1;
                if (s[i] == ',') {
                    i = skip_ws(s, n, i + 1);
                    state = obj ? MEMBER : VALUE;
                } else if (s[i] == (obj ? '}' : ']')) {
                    depth--;
                    i++;
                } else {
                    FAIL(i, obj ? "want ',' or '}' after an object member"
                                : "want ',' or ']' after an array element");
                }
            }
            continue;
        case MEMBER:
            if (i >= n) FAIL(i, "unexpected end of input");
            if (s[i] != '"') FAIL(i, "want a string as object key");
            if (!(i = scan_string(s, n, i, why, at))) return false;
            i = skip_ws(s, n, i);
            if (i >= n || s[i] != ':') FAIL(i, "want ':' after an object key");
            i = skip_ws(s, n, i + 1);
            state = VALUE;
            continue;
        }
    }
#undef FAIL
}

/* Fast scans over text already validated. */
static size_t string_end(bytes s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t value_end(bytes s, size_t n, size_t i) {
    unsigned c = s[i];
    if (c == '"') return string_end(s, n, i);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            c = s[i];
            if (c == '"') {
                i = string_end(s, n, i) - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return n;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) i++;
    return i;
}

static obs_type type_of(unsigned c) {
    switch (c) {
    case '{': return OBS_OBJECT;
    case '[': return OBS_ARRAY;
    case '"': return OBS_STRING;
    case 't': return OBS_TRUE;
    case 'f': return OBS_FALSE;
    case 'n': return OBS_NULL;
    default: return OBS_NUMBER;
    }
}

static obs_value make_value(bytes s, size_t start, size_t end) {
    obs_value v = {type_of(s[start]), (const char *)s + start, end - start};
    return v;
}

static const obs_value missing = {OBS_MISSING, 0, 0};

const char *obs_type_name(obs_type t) {
    static const char *const names[] = {"missing", "null",   "false", "true",
                                        "number",  "string", "array", "object"};
    return (unsigned)t < 8 ? names[t] : "invalid";
}

bool obs_parse(const char *json, size_t len, obs_value *out, const char **err, size_t *err_at) {
    const char *why = 0;
    size_t at = 0;
    bytes s = (bytes)json;
    if (!json) len = 0;
    if (!validate(s, len, &why, &at)) {
        if (err) *err = why;
        if (err_at) *err_at = at;
        if (out) *out = missing;
        return false;
    }
    size_t i = skip_ws(s, len, 0);
    if (out) *out = make_value(s, i, value_end(s, len, i));
    return true;
}

/*
 * Decodes the next character of a JSON string body at *pp (before end) into
 * out as UTF-8 and returns its length (1-4). Invalid UTF-8 bytes and lone
 * surrogates become U+FFFD, as Go's encoding/json does.
 */
static size_t put_utf8(unsigned char *out, uint32_t r) {
    if (r < 0x80) {
        out[0] = (unsigned char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (unsigned char)(0xC0 | r >> 6);
        out[1] = (unsigned char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (unsigned char)(0xE0 | r >> 12);
        out[1] = (unsigned char)(0x80 | (r >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | r >> 18);
    out[1] = (unsigned char)(0x80 | (r >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (r >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (r & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (before end), or 0 if invalid. */
static size_t utf8_len(bytes s, bytes end) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

static uint32_t hex4(bytes p) {
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

static size_t decode_next(bytes *pp, bytes end, unsigned char out[4]) {
    bytes p = *pp;
    unsigned c = *p;
    if (c != '\\') {
        size_t l = utf8_len(p, end);
        if (l == 0) {
            *pp = p + 1;
            return put_utf8(out, 0xFFFD);
        }
        for (size_t i = 0; i < l; i++) out[i] = p[i];
        *pp = p + l;
        return l;
    }
    c = p[1];
    *pp = p + 2;
    switch (c) {
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': break;
    default: out[0] = (unsigned char)c; return 1; /* " \ / */
    }
    uint32_t r = hex4(p + 2);
    *pp = p + 6;
    if (r >= 0xD800 && r < 0xDC00) {
        if (end - (p + 6) >= 6 && p[6] == '\\' && p[7] == 'u') {
            uint32_t r2 = hex4(p + 8);
            if (r2 >= 0xDC00 && r2 < 0xE000) {
                *pp = p + 12;
                return put_utf8(out, 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00));
            }
        }
        r = 0xFFFD;
    } else if (r >= 0xDC00 && r < 0xE000) {
        r = 0xFFFD;
    }
    return put_utf8(out, r);
}

/* Whether the raw string body [p, end) decodes to key[0..klen). */
static bool body_eq(bytes p, bytes end, const char *key, size_t klen) {
    bytes k = (bytes)key;
    size_t j = 0;
    while (p < end) {
        unsigned char buf[4];
        if (*p != '\\' && *p < 0x80) { /* the common case, byte for byte */
            if (j >= klen || k[j] != *p) return false;
            j++;
            p++;
            continue;
        }
        size_t l = decode_next(&p, end, buf);
        if (klen - j < l || obs__memcmp(k + j, buf, l) != 0) return false;
        j += l;
    }
    return j == klen;
}

obs_value obs_member_n(obs_value v, const char *key, size_t klen) {
    if (v.type != OBS_OBJECT) return missing;
    bytes s = (bytes)v.json;
    size_t n = v.len;
    obs_value found = missing;
    size_t i = skip_ws(s, n, 1);
    while (i < n && s[i] == '"') {
        size_t kend = string_end(s, n, i);
        size_t vs = skip_ws(s, n, skip_ws(s, n, kend) + 1);
        size_t ve = value_end(s, n, vs);
        if (body_eq(s + i + 1, s + kend - 1, key, klen)) found = make_value(s, vs, ve);
        i = skip_ws(s, n, ve);
        if (i >= n || s[i] != ',') break;
        i = skip_ws(s, n, i + 1);
    }
    return found;
}

obs_value obs_member(obs_value v, const char *key) { return obs_member_n(v, key, obs__strlen(key)); }

obs_iter obs_iter_begin(obs_value v) {
    obs_iter it = {0, 0, false};
    if (v.type == OBS_OBJECT || v.type == OBS_ARRAY) {
        it.p = v.json + 1;
        it.end = v.json + v.len - 1;
        it.object = v.type == OBS_OBJECT;
    }
    return it;
}

bool obs_iter_next(obs_iter *it, obs_value *key, obs_value *val) {
    if (!it->p) return false;
    bytes s = (bytes)it->p;
    size_t n = (size_t)(it->end - it->p);
    size_t i = skip_ws(s, n, 0);
    if (i < n && s[i] == ',') i = skip_ws(s, n, i + 1);
    if (i >= n) {
        it->p = 0;
        return false;
    }
    obs_value k = missing;
    if (it->object) {
        size_t kend = string_end(s, n, i);
        k = make_value(s, i, kend);
        i = skip_ws(s, n, skip_ws(s, n, kend) + 1);
    }
    size_t ve = value_end(s, n, i);
    if (key) *key = k;
    if (val) *val = make_value(s, i, ve);
    it->p += ve;
    return true;
}

obs_value obs_at(obs_value v, size_t idx) {
    if (v.type != OBS_ARRAY) return missing;
    obs_iter it = obs_iter_begin(v);
    obs_value e;
    for (size_t i = 0; obs_iter_next(&it, 0, &e); i++)
        if (i == idx) return e;
    return missing;
}

size_t obs_count(obs_value v) {
    obs_iter it = obs_iter_begin(v);
    size_t n = 0;
    while (obs_iter_next(&it, 0, 0)) n++;
    return n;
}

obs_value obs_get(obs_value v, const char *path) {
    if (!path) return v;
    const char *seg = path;
    while (*path && v.type != OBS_MISSING) {
        while (*path && *path != '.') path++;
        size_t l = (size_t)(path - seg);
        if (v.type == OBS_OBJECT) {
            v = obs_member_n(v, seg, l);
        } else if (v.type == OBS_ARRAY && l > 0 && l < 10) {
            size_t idx = 0, j = 0;
            for (; j < l && is_digit((unsigned char)seg[j]); j++) idx = idx * 10 + (size_t)(seg[j] - '0');
            v = j == l ? obs_at(v, idx) : missing;
        } else {
            v = missing;
        }
        if (*path == '.') {
            path++;
            seg = path;
            if (!*path) v = obs_member_n(v, "", 0); /* a trailing dot names the member "" */
        }
    }
    return v;
}

bool obs_str_eq(obs_value v, const char *s) {
    if (v.type != OBS_STRING) return false;
    return body_eq((bytes)v.json + 1, (bytes)v.json + v.len - 1, s, obs__strlen(s));
}

size_t obs_str_copy(obs_value v, char *buf, size_t cap) {
    size_t n = 0;
    if (v.type == OBS_STRING) {
        bytes p = (bytes)v.json + 1, end = (bytes)v.json + v.len - 1;
        while (p < end) {
            unsigned char tmp[4];
            size_t l = decode_next(&p, end, tmp);
            for (size_t i = 0; i < l; i++, n++)
                if (n + 1 < cap) buf[n] = (char)tmp[i];
        }
    }
    if (cap > 0) buf[n < cap ? n : cap - 1] = 0;
    return n;
}

/*
 * Numbers. A JSON number is sign, integer digits, fraction digits and an
 * exponent. Its significant digits D (integer then fraction digits, leading
 * zeros dropped) and the exponent K with value = 0.D x 10^K compare
 * exactly: first the signs, then K, then D digit by digit.
 */
typedef struct {
    bool neg, zero;
    bytes ip, fp;   /* integer and fraction digits */
    size_t il, fl;
    size_t lz;      /* leading zeros of the digits */
    int64_t k;      /* value = 0.D x 10^k */
} obs__num;

/* Exponents are read up to 4e18 and saturate beyond (no JSON producer
 * writes those); with at most 2^32 digits, k stays within int64. */
#define OBS_EXP_CLAMP 400000000000000000LL

static bool num_decompose(obs_value v, obs__num *x) {
    if (v.type != OBS_NUMBER) return false;
    bytes s = (bytes)v.json, end = s + v.len;
    x->neg = s < end && *s == '-';
    if (x->neg) s++;
    x->ip = s;
    while (s < end && is_digit(*s)) s++;
    x->il = (size_t)(s - x->ip);
    x->fp = s;
    x->fl = 0;
    if (s < end && *s == '.') {
        x->fp = ++s;
        while (s < end && is_digit(*s)) s++;
        x->fl = (size_t)(s - x->fp);
    }
    int64_t e = 0;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        bool eneg = s < end && *s == '-';
        if (s < end && (*s == '+' || *s == '-')) s++;
        for (; s < end && is_digit(*s); s++)
            if (e < OBS_EXP_CLAMP) e = e * 10 + (*s - '0');
        if (eneg) e = -e;
    }
    size_t lz = 0, total = x->il + x->fl;
    while (lz < total && (lz < x->il ? x->ip[lz] : x->fp[lz - x->il]) == '0') lz++;
    x->lz = lz;
    x->zero = lz == total;
    x->k = (int64_t)x->il - (int64_t)lz + e;
    return true;
}

/* Significant digit j (0-based) of x, '0' past the end. */
static unsigned num_digit(const obs__num *x, size_t j) {
    j += x->lz;
    if (j < x->il) return x->ip[j];
    j -= x->il;
    return j < x->fl ? x->fp[j] : '0';
}

static size_t num_sig(const obs__num *x) { return x->il + x->fl - x->lz; }

static int num_cmp(const obs__num *a, const obs__num *b) {
    int sa = a->zero ? 0 : a->neg ? -1 : 1;
    int sb = b->zero ? 0 : b->neg ? -1 : 1;
    if (sa != sb) return sa < sb ? -1 : 1;
    if (sa == 0) return 0;
    int mag = 0;
    if (a->k != b->k) {
        mag = a->k < b->k ? -1 : 1;
    } else {
        size_t na = num_sig(a), nb = num_sig(b), n = na > nb ? na : nb;
        for (size_t j = 0; j < n && mag == 0; j++) {
            unsigned da = num_digit(a, j), db = num_digit(b, j);
            if (da != db) mag = da < db ? -1 : 1;
        }
    }
    return sa < 0 ? -mag : mag;
}

int obs_num_cmp(obs_value a, obs_value b) {
    obs__num x, y;
    if (!num_decompose(a, &x) || !num_decompose(b, &y)) return OBS_CMP_INVALID;
    return num_cmp(&x, &y);
}

int obs_num_cmp_text(obs_value a, const char *number) {
    const char *why;
    size_t at, n = obs__strlen(number);
    if (n == 0 || scan_number((bytes)number, n, 0, &why, &at) != n) return OBS_CMP_INVALID;
    obs_value b = {OBS_NUMBER, number, n};
    return obs_num_cmp(a, b);
}

bool obs_num_i64(obs_value v, int64_t *out) {
    obs__num x;
    if (!num_decompose(v, &x)) return false;
    if (x.zero) {
        *out = 0;
        return true;
    }
    if (x.k <= 0 || x.k > 19) return false;
    for (size_t j = (size_t)x.k; j < num_sig(&x); j++)
        if (num_digit(&x, j) != '0') return false; /* not an integer */
    uint64_t m = 0;
    for (size_t j = 0; j < (size_t)x.k; j++) {
        unsigned d = num_digit(&x, j) - '0';
        if (m > (UINT64_MAX - d) / 10) return false;
        m = m * 10 + d;
    }
    if (x.neg) {
        if (m > (uint64_t)INT64_MAX + 1) return false;
        *out = (int64_t)(0 - m);
    } else {
        if (m > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)m;
    }
    return true;
}

static double pow10_exact(int e) { /* 10^e for 0 <= e <= 22: exact in a double */
    static const double p[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    return p[e];
}

bool obs_num_f64(obs_value v, double *out) {
    obs__num x;
    if (!num_decompose(v, &x)) return false;
    if (x.zero) {
        *out = x.neg ? -0.0 : 0.0;
        return true;
    }
    size_t sig = num_sig(&x), take = sig < 19 ? sig : 19;
    uint64_t m = 0;
    for (size_t j = 0; j < take; j++) m = m * 10 + (num_digit(&x, j) - '0');
    int64_t e = x.k - (int64_t)take; /* value ~ m x 10^e */
    double d;
    if (sig <= 19 && m <= (1ull << 53) && e >= -22 && e <= 22) {
        /* Clinger's fast path: both operands exact, one rounding. */
        d = e >= 0 ? (double)m * pow10_exact((int)e) : (double)m / pow10_exact((int)-e);
    } else {
#if OBS_USE_LIBC
        char buf[256];
        if (v.len < sizeof buf) {
            obs__memcpy(buf, v.json, v.len);
            buf[v.len] = 0;
            *out = strtod(buf, 0);
            return true;
        }
#endif
        if (x.k > 310) {
            d = __builtin_inf();
        } else if (x.k < -345) {
            d = 0;
        } else {
            /* m x 10^e by binary powers of ten: a few ulps at worst. */
            static const double big[] = {1e1, 1e2, 1e4, 1e8, 1e16, 1e32, 1e64, 1e128, 1e256};
            int64_t ae = e < 0 ? -e : e;
            double scale = 1;
            d = (double)m;
            for (int b = 0; ae && b < 9; b++, ae >>= 1)
                if (ae & 1) scale *= big[b];
            if (e < 0) {
                /* Divide in two steps so that scale does not overflow to inf. */
                if (scale == __builtin_inf()) {
                    d /= 1e256;
                    scale = 1;
                    ae = -e - 256;
                    for (int b = 0; ae && b < 9; b++, ae >>= 1)
                        if (ae & 1) scale *= big[b];
                }
                d /= scale;
            } else {
                d *= scale;
            }
        }
    }
    *out = x.neg ? -d : d;
    return true;
}

/* --------------------------------------------------------- JSON writer -- */

static void call_failed(void);

/* Makes room for extra more bytes plus a NUL. */
static bool jw_reserve(obs_jw *w, size_t extra) {
    if (w->len + extra + 1 <= w->cap) return true;
    if (!w->buf && w->cap) return false; /* failed before */
    size_t cap = w->cap ? w->cap * 2 : 256;
    if (cap < w->len + extra + 1) cap = w->len + extra + 1;
    char *b = arena_grow(w->buf, w->cap, cap);
    if (!b) {
        w->buf = 0;
        w->cap = 1; /* marks the writer as failed */
        w->len = 0;
        call_failed();
        return false;
    }
    w->buf = b;
    w->cap = (cap + 7) & ~(size_t)7;
    return true;
}

static void jw_put(obs_jw *w, const char *s, size_t n) {
    if (!jw_reserve(w, n)) return;
    obs__memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void jw_byte(obs_jw *w, char c) {
    if (!jw_reserve(w, 1)) return;
    w->buf[w->len++] = c;
}

/* A comma before a value unless it opens a container or follows a key. */
static void jw_sep(obs_jw *w) {
    if (w->len == 0 || !w->buf) return;
    char last = w->buf[w->len - 1];
    if (last != '{' && last != '[' && last != ':') jw_byte(w, ',');
}

static void jw_escaped(obs_jw *w, const char *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    bytes s = (bytes)str, end = s + n;
    if (!jw_reserve(w, n + 2)) return;
    jw_byte(w, '"');
    while (s < end) {
        bytes run = s;
        while (s < end && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
        jw_put(w, (const char *)run, (size_t)(s - run));
        if (s >= end) break;
        unsigned c = *s;
        if (c >= 0x80) {
            size_t l = utf8_len(s, end);
            if (l == 0) {
                jw_put(w, "\\ufffd", 6);
                s++;
            } else {
                jw_put(w, (const char *)s, l);
                s += l;
            }
            continue;
        }
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            jw_put(w, esc, 6);
            s++;
            continue;
        }
        jw_put(w, esc, 2);
        s++;
    }
    jw_byte(w, '"');
}

obs_jw obs_jw_new(obs_call *c) {
    obs_jw w = {c, 0, 0, 0};
    return w;
}
void obs_jw_object(obs_jw *w) {
    jw_sep(w);
    jw_byte(w, '{');
}
void obs_jw_end_object(obs_jw *w) { jw_byte(w, '}'); }
void obs_jw_array(obs_jw *w) {
    jw_sep(w);
    jw_byte(w, '[');
}
void obs_jw_end_array(obs_jw *w) { jw_byte(w, ']'); }
void obs_jw_key(obs_jw *w, const char *key) {
    jw_sep(w);
    jw_escaped(w, key ? key : "", obs__strlen(key));
    jw_byte(w, ':');
}
void obs_jw_string_n(obs_jw *w, const char *s, size_t n) {
    jw_sep(w);
    jw_escaped(w, s ? s : "", s ? n : 0);
}
void obs_jw_string(obs_jw *w, const char *s) { obs_jw_string_n(w, s, obs__strlen(s)); }

static size_t fmt_u64(char *out, uint64_t v) { /* out has 20 bytes */
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

void obs_jw_int(obs_jw *w, int64_t v) {
    char buf[21];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        buf[n++] = '-';
        u = 0 - u;
    }
    n += fmt_u64(buf + n, u);
    jw_sep(w);
    jw_put(w, buf, n);
}
void obs_jw_bool(obs_jw *w, bool v) {
    jw_sep(w);
    jw_put(w, v ? "true" : "false", v ? 4 : 5);
}
void obs_jw_null(obs_jw *w) {
    jw_sep(w);
    jw_put(w, "null", 4);
}
void obs_jw_raw(obs_jw *w, const char *json, size_t n) {
    jw_sep(w);
    jw_put(w, json, n);
}
void obs_jw_value(obs_jw *w, obs_value v) {
    if (v.type == OBS_MISSING)
        obs_jw_null(w);
    else
        obs_jw_raw(w, v.json, v.len);
}
const char *obs_jw_text(obs_jw *w, size_t *len) {
    if (!w->buf || !jw_reserve(w, 0)) {
        if (len) *len = 0;
        return "";
    }
    w->buf[w->len] = 0;
    if (len) *len = w->len;
    return w->buf;
}

/* printf into a writer: %s %.*s %c %d %i %u %x, modifiers l ll z j, %%. */
static void jw_vformat(obs_jw *w, const char *f, va_list ap) {
    while (f && *f) {
        const char *run = f;
        while (*f && *f != '%') f++;
        jw_put(w, run, (size_t)(f - run));
        if (!*f) break;
        const char *spec = f++;
        int prec = -1;
        if (f[0] == '.' && f[1] == '*') {
            prec = va_arg(ap, int);
            f += 2;
        }
        int size = 0; /* 0 int, 1 long, 2 long long, 3 size_t, 4 intmax_t */
        if (*f == 'l') {
            size = 1;
            if (*++f == 'l') {
                size = 2;
                f++;
            }
        } else if (*f == 'z') {
            size = 3;
            f++;
        } else if (*f == 'j') {
            size = 4;
            f++;
        }
        char conv = *f ? *f++ : 0;
        char num[24];
        uint64_t u;
        bool neg = false;
        switch (conv) {
        case '%': jw_byte(w, '%'); continue;
        case 'c': jw_byte(w, (char)va_arg(ap, int)); continue;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            size_t n = 0;
            while ((prec < 0 || n < (size_t)prec) && s[n]) n++;
            jw_put(w, s, n);
            continue;
        }
        case 'd':
        case 'i': {
            int64_t v;
            switch (size) {
            case 1: v = va_arg(ap, long); break;
            case 2: v = va_arg(ap, long long); break;
            case 3: v = (int64_t)va_arg(ap, size_t); break;
            case 4: v = va_arg(ap, intmax_t); break;
            default: v = va_arg(ap, int);
            }
            neg = v < 0;
            u = neg ? 0 - (uint64_t)v : (uint64_t)v;
            break;
        }
        case 'u':
        case 'x':
            switch (size) {
            case 1: u = va_arg(ap, unsigned long); break;
            case 2: u = va_arg(ap, unsigned long long); break;
            case 3: u = va_arg(ap, size_t); break;
            case 4: u = (uint64_t)va_arg(ap, intmax_t); break;
            default: u = va_arg(ap, unsigned);
            }
            break;
        default: /* not a verb we know: show it as written */
            jw_put(w, spec, (size_t)(f - spec));
            continue;
        }
        size_t n = 0;
        if (neg) num[n++] = '-';
        if (conv == 'x') {
            char tmp[16];
            size_t t = 0;
            do {
                tmp[t++] = "0123456789abcdef"[u & 15];
                u >>= 4;
            } while (u);
            while (t) num[n++] = tmp[--t];
        } else {
            n += fmt_u64(num + n, u);
        }
        jw_put(w, num, n);
    }
}

const char *obs_vsprintf(obs_call *c, const char *format, va_list ap) {
    obs_jw w = obs_jw_new(c);
    jw_vformat(&w, format, ap);
    return obs_jw_text(&w, 0);
}

const char *obs_sprintf(obs_call *c, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    const char *s = obs_vsprintf(c, format, ap);
    va_end(ap);
    return s;
}

/* --------------------------------------------------------------- calls -- */

struct obs_call {
    const obs_plugin *plugin;
    const char *role;
    bool filter_role;
    obs_value input, event, config, context;
    int decision; /* 0 none, 1 pass, 2 drop */
    const char *reason;
    bool has_error, retryable;
    const char *err_code, *err_msg;
    obs_jw effects; /* the effect objects, comma-separated */
};

/* The call being served: an instance serves one call at a time. */
static obs_call current;

static void call_failed(void) { arena_failed = true; }

bool obs_failed(obs_call *c) {
    (void)c;
    return arena_failed;
}

void *obs_alloc(obs_call *c, size_t n) {
    (void)c;
    return arena_alloc(n);
}

obs_value obs_input(obs_call *c) { return c->input; }
obs_value obs_event(obs_call *c) { return c->event; }
obs_value obs_config(obs_call *c) { return c->config; }
obs_value obs_context(obs_call *c) { return c->context; }
const char *obs_role(obs_call *c) { return c->role; }

const char *obs_str(obs_call *c, obs_value v, size_t *len) {
    (void)c;
    if (v.type != OBS_STRING) {
        if (len) *len = 0;
        return 0;
    }
    size_t n = obs_str_copy(v, 0, 0); /* measures */
    char *buf = arena_alloc(n + 1);
    if (!buf) {
        if (len) *len = 0;
        return "";
    }
    obs_str_copy(v, buf, n + 1);
    if (len) *len = n;
    return buf;
}

/* The first error wins: it is the cause, later ones are consequences. */
static int set_error(obs_call *c, bool retryable, const char *code, const char *msg) {
    if (c->has_error) return 0;
    c->has_error = true;
    c->retryable = retryable;
    c->err_code = code;
    c->err_msg = msg;
    return 0;
}

int obs_error(obs_call *c, const char *code, const char *message, ...) {
    va_list ap;
    va_start(ap, message);
    const char *m = obs_vsprintf(c, message, ap);
    va_end(ap);
    return set_error(c, false, code, m);
}

int obs_retryable(obs_call *c, const char *code, const char *message, ...) {
    va_list ap;
    va_start(ap, message);
    const char *m = obs_vsprintf(c, message, ap);
    va_end(ap);
    return set_error(c, true, code, m);
}

static int misuse(obs_call *c, const char *what) {
    return set_error(c, false, "bad_plugin",
                     obs_sprintf(c, "%s called in the %s handler", what, c->role ? c->role : "describe"));
}

static int decide(obs_call *c, int decision, const char *fmt, va_list ap) {
    if (!c->filter_role) return misuse(c, decision == 1 ? "obs_pass" : "obs_drop");
    c->decision = decision;
    c->reason = fmt ? obs_vsprintf(c, fmt, ap) : 0;
    return 0;
}

int obs_pass(obs_call *c, const char *reason, ...) {
    va_list ap;
    va_start(ap, reason);
    int r = decide(c, 1, reason, ap);
    va_end(ap);
    return r;
}

int obs_drop(obs_call *c, const char *reason, ...) {
    va_list ap;
    va_start(ap, reason);
    int r = decide(c, 2, reason, ap);
    va_end(ap);
    return r;
}

static void jw_pairs(obs_jw *w, const char *key, const char *const *pairs) {
    if (!pairs || !pairs[0]) return;
    obs_jw_key(w, key);
    obs_jw_object(w);
    for (size_t i = 0; pairs[i]; i += 2) {
        obs_jw_key(w, pairs[i]);
        obs_jw_string(w, pairs[i + 1] ? pairs[i + 1] : "");
        if (!pairs[i + 1]) break;
    }
    obs_jw_end_object(w);
}

static void http_effect(obs_call *c, const char *method, const char *url, const char *const *headers,
                        const char *body, size_t body_len, bool json) {
    if (c->filter_role) {
        misuse(c, json ? "obs_http_json" : "obs_http");
        return;
    }
    if (json) {
        const char *why;
        size_t at;
        if (!validate((bytes)body, body ? body_len : 0, &why, &at)) {
            set_error(c, false, "bad_plugin",
                      obs_sprintf(c, "obs_http_json: the body is not valid JSON: %s at byte %zu", why, at));
            return;
        }
    }
    obs_jw *w = &c->effects;
    obs_jw_object(w);
    obs_jw_key(w, "type");
    obs_jw_string(w, "http");
    obs_jw_key(w, "http");
    obs_jw_object(w);
    obs_jw_key(w, "method");
    obs_jw_string(w, method);
    obs_jw_key(w, "url");
    obs_jw_string(w, url);
    jw_pairs(w, "headers", headers);
    if (json) {
        obs_jw_key(w, "body_json");
        obs_jw_raw(w, body, body_len);
    } else if (body && body_len) {
        obs_jw_key(w, "body");
        obs_jw_string_n(w, body, body_len);
    }
    obs_jw_end_object(w);
    obs_jw_end_object(w);
}

void obs_http(obs_call *c, const char *method, const char *url, const char *const *headers,
              const char *body, size_t body_len) {
    http_effect(c, method, url, headers, body, body_len, false);
}

void obs_http_json(obs_call *c, const char *method, const char *url, const char *const *headers,
                   const char *json, size_t json_len) {
    http_effect(c, method, url, headers, json, json_len, true);
}

void obs_log_effect(obs_call *c, const char *level, const char *message, const char *const *fields) {
    if (c->filter_role) {
        misuse(c, "obs_log_effect");
        return;
    }
    obs_jw *w = &c->effects;
    obs_jw_object(w);
    obs_jw_key(w, "type");
    obs_jw_string(w, "log");
    obs_jw_key(w, "log");
    obs_jw_object(w);
    if (level) {
        obs_jw_key(w, "level");
        obs_jw_string(w, level);
    }
    obs_jw_key(w, "message");
    obs_jw_string(w, message);
    jw_pairs(w, "fields", fields);
    obs_jw_end_object(w);
    obs_jw_end_object(w);
}

/* ------------------------------------------------------- host services -- */

bool obs_log_enabled(obs_level level) { return (int32_t)level >= obs__get_log_level(); }

void obs_log(obs_call *c, obs_level level, const char *format, ...) {
    if (!obs_log_enabled(level)) return;
    obs_jw w = obs_jw_new(c);
    va_list ap;
    va_start(ap, format);
    jw_vformat(&w, format, ap);
    va_end(ap);
    size_t n;
    const char *s = obs_jw_text(&w, &n);
    uint64_t p = kstore(s, n); /* the log import frees it */
    if (p == 0) return;        /* empty line, or kernel memory full */
    switch (level) {
    case OBS_TRACE: obs__log_trace(p); break;
    case OBS_DEBUG: obs__log_debug(p); break;
    case OBS_INFO: obs__log_info(p); break;
    case OBS_WARN: obs__log_warn(p); break;
    default: obs__log_error(p); break;
    }
}

const char *obs_config_get(obs_call *c, const char *key, size_t *len) {
    (void)c;
    if (len) *len = 0;
    uint64_t k = kstore(key, obs__strlen(key));
    if (k == 0) return 0;
    uint64_t v = obs__config_get(k);
    obs__kfree(k);
    if (v == 0) return 0;
    size_t n = (size_t)obs__klength(v);
    char *buf = arena_alloc(n + 1);
    if (buf) {
        kload(v, buf, n);
        buf[n] = 0;
    }
    obs__kfree(v);
    if (!buf) return 0;
    if (len) *len = n;
    return buf;
}

/* -------------------------------------------------------------- driver -- */

/* Copies the call's input into the arena, NUL-terminated. */
static char *read_input(size_t *len) {
    uint64_t n64 = obs__input_length();
    size_t n = (size_t)n64;
    *len = n;
    if ((uint64_t)n != n64 || n + 1 == 0) {
        call_failed();
        return 0;
    }
    char *b = arena_alloc(n + 1);
    if (!b) return 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = obs__input_load_u64(i);
        __builtin_memcpy(b + i, &v, 8);
    }
    for (; i < n; i++) b[i] = (char)obs__input_load_u8(i);
    b[n] = 0;
    return b;
}

/*
 * Reads "MAJOR.MINOR" as abi.ParseVersion does (the Go reference): spaces
 * around it are ignored, the minor may be absent, each part is a decimal
 * integer with an optional sign that must not be negative. Returns NULL
 * and the major, or what is wrong.
 */
static bool is_space_rune(uint32_t r) {
    return r == ' ' || (r >= '\t' && r <= '\r') || r == 0x85 || r == 0xA0 || r == 0x1680 ||
           (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F ||
           r == 0x3000;
}

/* The rune at s (valid UTF-8, as obs_str makes it) and its length. */
static uint32_t rune_at(bytes s, size_t *len) {
    unsigned c = s[0];
    if (c < 0x80) return *len = 1, c;
    if (c < 0xE0) return *len = 2, (uint32_t)(c & 0x1F) << 6 | (s[1] & 0x3F);
    if (c < 0xF0) return *len = 3, (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return *len = 4, (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
                         (s[3] & 0x3F);
}

/* strconv.Atoi: an optional sign, then decimal digits, within int64. */
static bool go_atoi(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n) return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static const char *parse_version(const char *ver, size_t n, int64_t *major) {
    bytes s = (bytes)ver;
    size_t start = n, end = 0;
    for (size_t i = 0, l; i < n; i += l) {
        if (!is_space_rune(rune_at(s + i, &l))) {
            if (start == n) start = i;
            end = i + l;
        }
    }
    if (start == n) return "empty, want \"MAJOR.MINOR\" such as \"" OBS_ABI_VERSION "\"";
    size_t dot = start;
    while (dot < end && s[dot] != '.') dot++;
    int64_t minor = 0;
    if (!go_atoi(ver + start, dot - start, major) || *major < 0) return "the major is not a non-negative integer";
    if (dot < end && (!go_atoi(ver + dot + 1, end - dot - 1, &minor) || minor < 0))
        return "the minor is not a non-negative integer";
    return 0;
}

/* Checks the input (SPEC 4.1) and fills c; false with an error result set. */
static bool check_input(obs_call *c, const char *in, size_t n) {
    bytes s = (bytes)in;
    if (skip_ws(s, n, 0) == n) {
        set_error(c, false, OBS_BAD_INPUT, "input is empty: want an ABI " OBS_ABI_VERSION " input object");
        return false;
    }
    const char *why;
    size_t at;
    if (!obs_parse(in, n, &c->input, &why, &at)) {
        obs_error(c, OBS_BAD_INPUT, "input is not valid JSON: %s at byte %zu", why, at);
        return false;
    }
    if (c->input.type != OBS_OBJECT) {
        obs_error(c, OBS_BAD_INPUT, "input is a JSON %s: want an ABI " OBS_ABI_VERSION " input object",
                  obs_type_name(c->input.type));
        return false;
    }
    obs_value abi = obs_member(c->input, "abi");
    if (abi.type != OBS_STRING) {
        obs_error(c, OBS_BAD_INPUT, "input has no \"abi\" version string (got %s)", obs_type_name(abi.type));
        return false;
    }
    /* "MAJOR.MINOR": the major must be ours (SPEC 7). */
    size_t vl;
    const char *ver = obs_str(c, abi, &vl);
    int64_t major;
    const char *why_ver = parse_version(ver, vl, &major);
    if (why_ver) {
        obs_error(c, OBS_BAD_INPUT, "input: abi version \"%.*s\": %s", (int)vl, ver, why_ver);
        return false;
    }
    if (major != 1) {
        obs_error(c, OBS_BAD_INPUT, "input is ABI %.*s but this plugin speaks ABI 1.x", (int)vl, ver);
        return false;
    }
    c->event = obs_member(c->input, "event");
    if (c->event.type != OBS_OBJECT) {
        obs_error(c, OBS_BAD_INPUT, "input has no event object (event is %s)", obs_type_name(c->event.type));
        return false;
    }
    c->config = obs_member(c->input, "config");
    c->context = obs_member(c->input, "context");
    return true;
}

static int32_t set_output(const char *b, size_t n) {
    uint64_t p = kstore(b, n);
    if (p == 0 && n > 0) {
        static const char msg[] = "observer C SDK: the host refused to allocate the output";
        uint64_t e = kstore(msg, sizeof msg - 1);
        if (e) obs__error_set(e);
        return 1;
    }
    obs__output_set(p, n);
    return 0;
}

static const char out_of_memory[] =
    "{\"abi\":\"" OBS_ABI_VERSION "\",\"error\":{\"message\":\"the plugin ran out of memory (observer C SDK arena)\","
    "\"code\":\"" OBS_NO_MEMORY "\",\"retryable\":true}}";

static int32_t finish(obs_jw *out) {
    size_t n;
    const char *text = obs_jw_text(out, &n);
    if (arena_failed || n == 0) return set_output(out_of_memory, sizeof out_of_memory - 1);
    return set_output(text, n);
}

static void write_list(obs_jw *w, const char *key, const char *const *list, size_t max) {
    if (!list[0]) return;
    obs_jw_key(w, key);
    obs_jw_array(w);
    for (size_t i = 0; i < max && list[i]; i++) obs_jw_string(w, list[i]);
    obs_jw_end_array(w);
}

static int32_t describe(obs_call *c, const obs_plugin *p) {
    obs_jw w = obs_jw_new(c);
    obs_jw_object(&w);
    obs_jw_key(&w, "abi");
    obs_jw_string(&w, OBS_ABI_VERSION);
    obs_jw_key(&w, "name");
    obs_jw_string(&w, p->name);
    obs_jw_key(&w, "version");
    obs_jw_string(&w, p->version);
    obs_jw_key(&w, "roles");
    obs_jw_array(&w);
    if (p->filter) obs_jw_string(&w, "filter");
    if (p->act) obs_jw_string(&w, "act");
    obs_jw_end_array(&w);
    if (p->effects[0] || p->http_hosts[0] || p->log || p->config) {
        obs_jw_key(&w, "capabilities");
        obs_jw_object(&w);
        write_list(&w, "effects", p->effects, sizeof p->effects / sizeof p->effects[0]);
        write_list(&w, "http_hosts", p->http_hosts, sizeof p->http_hosts / sizeof p->http_hosts[0]);
        if (p->log) {
            obs_jw_key(&w, "log");
            obs_jw_bool(&w, true);
        }
        if (p->config) {
            obs_jw_key(&w, "config");
            obs_jw_bool(&w, true);
        }
        obs_jw_end_object(&w);
    }
    if (p->description) {
        obs_jw_key(&w, "description");
        obs_jw_string(&w, p->description);
    }
    obs_jw_end_object(&w);
    return finish(&w);
}

int32_t obs_run(const obs_plugin *p, const char *role) {
    arena_reset();
    obs_call *c = &current;
    *c = (obs_call){0};
    c->plugin = p;
    c->role = role;
    c->effects = obs_jw_new(c);
    if (!role) return describe(c, p);

    bool filter = role[0] == 'f';
    c->filter_role = filter;
    obs_handler h = filter ? p->filter : p->act;
    size_t n;
    char *in = read_input(&n);
    if (in && check_input(c, in, n) && !arena_failed) {
        if (!h) {
            obs_error(c, OBS_NO_HANDLER, "plugin %s has no %s handler", p->name ? p->name : "(unnamed)", role);
        } else {
            int rc = h(c);
            if (rc != 0)
                obs_error(c, "bad_plugin", "the %s handler returned %d without an error result", role, rc);
            else if (filter && !c->decision)
                obs_error(c, "bad_plugin", "the filter handler returned without obs_pass, obs_drop or obs_error");
        }
    }

    obs_jw w = obs_jw_new(c);
    obs_jw_object(&w);
    obs_jw_key(&w, "abi");
    obs_jw_string(&w, OBS_ABI_VERSION);
    if (c->has_error) {
        obs_jw_key(&w, "error");
        obs_jw_object(&w);
        obs_jw_key(&w, "message");
        obs_jw_string(&w, c->err_msg && c->err_msg[0] ? c->err_msg : "(no message)");
        if (c->err_code && c->err_code[0]) {
            obs_jw_key(&w, "code");
            obs_jw_string(&w, c->err_code);
        }
        obs_jw_key(&w, "retryable");
        obs_jw_bool(&w, c->retryable);
        obs_jw_end_object(&w);
    } else if (filter) {
        obs_jw_key(&w, "pass");
        obs_jw_bool(&w, c->decision == 1);
        if (c->reason && c->reason[0]) {
            obs_jw_key(&w, "reason");
            obs_jw_string(&w, c->reason);
        }
    } else {
        size_t fl;
        const char *fx = obs_jw_text(&c->effects, &fl);
        obs_jw_key(&w, "effects");
        obs_jw_array(&w);
        if (fl) jw_put(&w, fx, fl);
        obs_jw_end_array(&w);
    }
    obs_jw_end_object(&w);
    return finish(&w);
}
