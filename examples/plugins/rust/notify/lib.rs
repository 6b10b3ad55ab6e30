//! notify: an observer action that posts {"event","entity","op"} of each
//! event to config.url as one http effect. The host sends it, with retries
//! and an Idempotency-Key; the plugin does no I/O.

use observer::json::Writer;
use observer::{Effect, Error, Input, Manifest, Value};

#[no_mangle]
pub extern "C" fn describe() -> i32 {
    observer::describe(
        &Manifest::new("notify", "0.1.0")
            .role("act")
            .effect("http")
            .description("posts the event id, entity and op to config.url"),
    )
}

#[no_mangle]
pub extern "C" fn act() -> i32 {
    observer::act(notify)
}

fn notify(input: &Input) -> Result<Vec<Effect>, Error> {
    let url = match input.lookup("config.url") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(Error::bad_config("config.url is empty, want a URL string")),
        Some(v) => return Err(Error::bad_config(format!("config.url is {}, want a URL string", v.kind_name()))),
        None => return Err(Error::bad_config("config.url is missing: want a URL string")),
    };
    let ev = &input.event;
    let mut body = Writer::new();
    body.begin_object();
    body.key("event");
    body.string(&ev.id);
    body.key("entity");
    body.string(&ev.entity);
    body.key("op");
    body.string(&ev.op);
    body.end_object();
    Ok(vec![Effect::http("POST", url).header("content-type", "application/json").body(body.finish()).into()])
}

#[cfg(test)]
mod tests {
    use super::notify;

    #[test]
    fn posts_and_escapes() {
        let input = r#"{"abi":"1.0","event":{"id":"pg:\"7\"","entity":"t\u00e9","op":"DELETE"},"config":{"url":"https://h.example/n"}}"#;
        let got = observer::invoke_act(input.as_bytes(), notify);
        let want = r#"{"abi":"1.0","effects":[{"type":"http","http":{"method":"POST","url":"https://h.example/n","headers":{"content-type":"application/json"},"body":"{\"event\":\"pg:\\\"7\\\"\",\"entity\":\"té\",\"op\":\"DELETE\"}"}}]}"#;
        assert_eq!(got, want);
    }

    #[test]
    fn bad_config() {
        for config in ["{}", r#"{"url": 7}"#, r#"{"url": ""}"#, "null"] {
            let input = format!(r#"{{"abi":"1.0","event":{{"id":"x"}},"config":{}}}"#, config);
            let got = observer::invoke_act(input.as_bytes(), notify);
            assert!(got.contains(r#""code":"bad_config""#) && got.contains("config.url"), "{}: {}", config, got);
        }
    }
}
