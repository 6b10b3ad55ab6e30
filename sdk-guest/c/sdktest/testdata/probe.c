/*
 * probe: a test plugin that exposes the C SDK's pieces to sdk_test.go.
 *
 * act: config.op says what to exercise; the answer is one http effect whose
 * body_json holds what the SDK computed, for the test to compare with Go's
 * own reading of the same input.
 * filter: passes (config.pass true or absent) or drops with config.reason;
 * config.nodecision returns without deciding.
 */
#include "observer.h"

static void answer(obs_call *c, obs_jw *w) {
    size_t n;
    const char *text = obs_jw_text(w, &n);
    obs_http_json(c, "POST", "http://probe.test/", 0, text, n);
}

/* obs_get on the whole input: type, JSON text, decoded string, count,
 * keys (or element types) in order, and the numbers' readings. */
static void get(obs_call *c, obs_jw *w) {
    const char *path = obs_str(c, obs_get(obs_config(c), "path"), 0);
    obs_value v = obs_get(obs_input(c), path ? path : "");
    obs_jw_key(w, "type");
    obs_jw_string(w, obs_type_name(v.type));
    obs_jw_key(w, "json");
    obs_jw_string_n(w, v.json, v.len);
    obs_jw_key(w, "str");
    size_t sl;
    const char *s = obs_str(c, v, &sl);
    if (s)
        obs_jw_string_n(w, s, sl);
    else
        obs_jw_null(w);
    /* obs_str_copy cut to 4 bytes: the full length, a NUL-terminated prefix */
    char small[5];
    size_t full = obs_str_copy(v, small, sizeof small);
    obs_jw_key(w, "copy_len");
    obs_jw_int(w, (int64_t)full);
    obs_jw_key(w, "copy");
    obs_jw_string(w, small);
    obs_jw_key(w, "count");
    obs_jw_int(w, (int64_t)obs_count(v));
    obs_jw_key(w, "members");
    obs_jw_array(w);
    obs_iter it = obs_iter_begin(v);
    obs_value key, val;
    size_t i = 0;
    while (obs_iter_next(&it, &key, &val)) {
        if (v.type == OBS_OBJECT) {
            size_t kl;
            const char *k = obs_str(c, key, &kl);
            obs_jw_string_n(w, k, kl);
            /* the member found by name is the last of that name */
            obs_value byname = obs_member_n(v, k, kl);
            if (byname.type == OBS_MISSING) obs_error(c, "probe", "member %s not found by name", k);
        } else {
            obs_jw_string(w, obs_type_name(val.type));
            obs_value at = obs_at(v, i);
            if (at.json != val.json) obs_error(c, "probe", "obs_at(%zu) differs from the iteration", i);
        }
        i++;
    }
    obs_jw_end_array(w);
    int64_t i64;
    obs_jw_key(w, "i64");
    if (obs_num_i64(v, &i64))
        obs_jw_int(w, i64);
    else
        obs_jw_null(w);
    double f;
    obs_jw_key(w, "f64_bits");
    if (obs_num_f64(v, &f)) {
        union {
            double d;
            int64_t i;
        } u = {f};
        obs_jw_int(w, u.i);
    } else {
        obs_jw_null(w);
    }
    obs_jw_key(w, "is_eq");
    const char *eq = obs_str(c, obs_get(obs_config(c), "eq"), 0);
    obs_jw_bool(w, eq && obs_str_eq(v, eq));
}

static int act(obs_call *c) {
    obs_value cfg = obs_config(c);
    obs_value op = obs_get(cfg, "op");
    obs_jw w = obs_jw_new(c);
    obs_jw_object(&w);
    if (obs_str_eq(op, "get")) {
        get(c, &w);
    } else if (obs_str_eq(op, "cmp")) {
        obs_value a = obs_get(cfg, "a"), b = obs_get(cfg, "b");
        obs_jw_key(&w, "cmp");
        obs_jw_int(&w, obs_num_cmp(a, b));
        obs_jw_key(&w, "cmp_text");
        obs_jw_int(&w, obs_num_cmp_text(a, obs_str(c, obs_get(cfg, "b_text"), 0)));
    } else if (obs_str_eq(op, "write")) {
        /* decode config.s, write it back as a JSON string */
        size_t n;
        const char *s = obs_str(c, obs_get(cfg, "s"), &n);
        obs_jw_key(&w, "s");
        obs_jw_string_n(&w, s, n);
        obs_jw_key(&w, "n");
        obs_jw_int(&w, (int64_t)n);
    } else if (obs_str_eq(op, "raw")) {
        obs_value v = obs_get(cfg, "v");
        obs_jw_key(&w, "v");
        obs_jw_value(&w, v);
        obs_jw_key(&w, "missing");
        obs_jw_value(&w, obs_get(cfg, "no.such.path"));
        obs_value parsed;
        const char *why;
        size_t at;
        size_t sl;
        const char *text = obs_str(c, obs_get(cfg, "parse"), &sl);
        obs_jw_key(&w, "parse_ok");
        obs_jw_bool(&w, text && obs_parse(text, sl, &parsed, &why, &at));
        obs_jw_key(&w, "parse_type");
        obs_jw_string(&w, obs_type_name(parsed.type));
    } else if (obs_str_eq(op, "sprintf")) {
        obs_jw_key(&w, "s");
        obs_jw_string(&w, obs_sprintf(c, "%d|%i|%u|%x|%ld|%lld|%llu|%zu|%jd|%c|%s|%.*s|%%|%s|%d", -42, 7, 42u, 255u,
                                      -1L, (long long)INT64_MIN, (unsigned long long)UINT64_MAX, (size_t)9,
                                      (intmax_t)-9, 'z', "str", 2, "abc", (const char *)0, 0));
        obs_jw_key(&w, "ints");
        obs_jw_array(&w);
        obs_jw_int(&w, INT64_MIN);
        obs_jw_int(&w, INT64_MAX);
        obs_jw_int(&w, 0);
        obs_jw_bool(&w, false);
        obs_jw_null(&w);
        obs_jw_raw(&w, "[1,{}]", 6);
        obs_jw_end_array(&w);
    } else if (obs_str_eq(op, "error")) {
        const char *code = obs_str(c, obs_get(cfg, "code"), 0);
        const char *msg = obs_str(c, obs_get(cfg, "message"), 0);
        if (obs_get(cfg, "retryable").type == OBS_TRUE) return obs_retryable(c, code, "%s", msg);
        return obs_error(c, code, "%s", msg);
    } else if (obs_str_eq(op, "effects")) {
        /* a plain-body http effect with headers, and a log effect with fields */
        const char *headers[] = {"content-type", "text/plain", "x-quote", "a\"b", 0};
        const char *fields[] = {"event", obs_str(c, obs_get(obs_event(c), "id"), 0), 0};
        obs_http(c, "PUT", "http://probe.test/put", headers, "line 1\nline 2", 13);
        obs_log_effect(c, "warn", "probe \"says\" hi", fields);
        obs_log(c, OBS_INFO, "probe log line %d", 1);
        return 0;
    } else if (obs_str_eq(op, "none")) {
        return 0;
    } else if (obs_str_eq(op, "config_get")) {
        size_t n;
        const char *v = obs_config_get(c, obs_str(c, obs_get(cfg, "key"), 0), &n);
        obs_jw_key(&w, "value");
        if (v)
            obs_jw_string_n(&w, v, n);
        else
            obs_jw_null(&w);
    } else if (obs_str_eq(op, "alloc")) {
        /* allocate until the arena cannot grow: the SDK must answer with a
         * retryable no_memory error result, not trap */
        int64_t n = 0;
        obs_num_i64(obs_get(cfg, "n"), &n);
        for (int64_t i = 0; i < n && !obs_failed(c); i++) {
            char *p = obs_alloc(c, 1 << 20);
            if (p) p[0] = 1;
        }
    } else if (obs_str_eq(op, "misuse")) {
        return obs_pass(c, "not a filter");
    } else if (obs_str_eq(op, "bad_json")) {
        obs_http_json(c, "POST", "http://probe.test/", 0, "{\"a\":", 5);
        return 0;
    } else if (obs_str_eq(op, "rc")) {
        return 3;
    } else {
        return obs_error(c, OBS_BAD_CONFIG, "config.op: unknown op %.*s", OBS_TEXT(op));
    }
    obs_jw_end_object(&w);
    answer(c, &w);
    return 0;
}

static int filter(obs_call *c) {
    obs_value cfg = obs_config(c);
    if (obs_get(cfg, "nodecision").type == OBS_TRUE) return 0;
    const char *reason = obs_str(c, obs_get(cfg, "reason"), 0);
    if (obs_get(cfg, "pass").type == OBS_FALSE) return obs_drop(c, "%s", reason ? reason : "dropped");
    return obs_pass(c, reason ? "%s" : 0, reason);
}

OBSERVER_PLUGIN(
    .name = "probe",
    .version = "0.0.1",
    .description = "exposes the C SDK to its tests",
    .filter = filter,
    .act = act,
    .effects = {"http", "log"},
    .http_hosts = {"probe.test"},
    .log = true,
    .config = true,
)
