/*
 * notify: an action that posts a small JSON summary of each event.
 *
 * Config: {"url": "<string>"} (required: anything else is a bad_config
 * error). One http effect: POST to url, header content-type:
 * application/json, body {"event":"<id>","entity":"<entity>","op":"<op>"}.
 */
#include "observer.h"

/* The event's string field name, decoded; an error result if it is not one. */
static const char *field(obs_call *c, const char *name, size_t *len) {
    const char *s = obs_str(c, obs_get(obs_event(c), name), len);
    if (!s) obs_error(c, OBS_BAD_INPUT, "event.%s: want a string, got %s", name,
                      obs_type_name(obs_get(obs_event(c), name).type));
    return s;
}

static int notify(obs_call *c) {
    obs_value url = obs_get(obs_config(c), "url");
    if (url.type != OBS_STRING || url.len <= 2)
        return obs_error(c, OBS_BAD_CONFIG, "config.url: want a non-empty string, got %.*s",
                         url.type == OBS_MISSING ? 7 : (int)url.len, url.type == OBS_MISSING ? "nothing" : url.json);

    size_t id_len, entity_len, op_len;
    const char *id = field(c, "id", &id_len);
    const char *entity = field(c, "entity", &entity_len);
    const char *op = field(c, "op", &op_len);
    if (!id || !entity || !op) return 0; /* field() set the error result */

    obs_jw body = obs_jw_new(c);
    obs_jw_object(&body);
    obs_jw_key(&body, "event");
    obs_jw_string_n(&body, id, id_len);
    obs_jw_key(&body, "entity");
    obs_jw_string_n(&body, entity, entity_len);
    obs_jw_key(&body, "op");
    obs_jw_string_n(&body, op, op_len);
    obs_jw_end_object(&body);
    size_t body_len;
    const char *text = obs_jw_text(&body, &body_len);

    static const char *const headers[] = {"content-type", "application/json", 0};
    obs_http(c, "POST", obs_str(c, url, 0), headers, text, body_len);
    obs_log(c, OBS_DEBUG, "notify: %s %s %s", op, entity, id);
    return 0;
}

OBSERVER_PLUGIN(
    .name = "notify",
    .version = "1.0.0",
    .description = "posts {event, entity, op} of each event to config.url",
    .act = notify,
    .effects = {"http"},
    .log = true,
)
