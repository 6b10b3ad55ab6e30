//! min-amount: an observer filter that keeps events whose after.amount is
//! at least config.min. Amounts compare as exact decimals (json::Number's
//! order): 11.99 >= 11.99 passes, and amounts past f64 precision are not
//! rounded.

use observer::{Error, Filter, Input, Manifest, Value};

#[no_mangle]
pub extern "C" fn describe() -> i32 {
    observer::describe(
        &Manifest::new("min-amount", "0.1.0")
            .role("filter")
            .description("keeps events whose after.amount is at least config.min (exact decimals)"),
    )
}

#[no_mangle]
pub extern "C" fn filter() -> i32 {
    observer::filter(decide)
}

fn decide(input: &Input) -> Result<Filter, Error> {
    let min = match input.lookup("config.min") {
        Some(Value::Number(n)) => n,
        Some(v) => return Err(Error::bad_config(format!("config.min is {}, want a number, such as 9.99", v.kind_name()))),
        None => return Err(Error::bad_config("config.min is missing: want a number, such as 9.99")),
    };
    let after = match &input.event.after {
        Some(after) => after,
        None => return Ok(Filter::drop(format!("no after image ({}): no amount to compare", input.event.op))),
    };
    Ok(match after.get("amount") {
        None => Filter::drop("after.amount is absent"),
        Some(Value::Number(amount)) if amount >= min => Filter::pass(format!("after.amount {} >= min {}", amount, min)),
        Some(Value::Number(amount)) => Filter::drop(format!("after.amount {} < min {}", amount, min)),
        Some(v) => Filter::drop(format!("after.amount is {}, not a number", v.kind_name())),
    })
}

#[cfg(test)]
mod tests {
    use super::decide;

    fn run(config: &str, after: &str) -> String {
        let input = format!(r#"{{"abi":"1.0","event":{{"id":"t:1","op":"INSERT","after":{}}},"config":{}}}"#, after, config);
        observer::invoke_filter(input.as_bytes(), decide)
    }

    #[test]
    fn decisions() {
        let cases = [
            (r#"{"min": 9.99}"#, r#"{"amount": 11.99}"#, r#""pass":true,"reason":"after.amount 11.99 >= min 9.99""#),
            (r#"{"min": 11.99}"#, r#"{"amount": 11.990}"#, r#""pass":true"#),
            (r#"{"min": 12345678901234567890.5}"#, r#"{"amount": 12345678901234567890.4}"#, r#""pass":false"#),
            (r#"{"min": -5}"#, r#"{"amount": -7.5}"#, r#""pass":false,"reason":"after.amount -7.5 < min -5""#),
            (r#"{"min": 1}"#, r#"{"amount": "11.99"}"#, r#""reason":"after.amount is a string, not a number""#),
            (r#"{"min": 1}"#, "null", r#""reason":"no after image (INSERT): no amount to compare""#),
            (r#"{"min": "1"}"#, r#"{"amount": 1}"#, r#""message":"config.min is a string, want a number, such as 9.99","code":"bad_config""#),
            ("null", r#"{"amount": 1}"#, r#""code":"bad_config""#),
        ];
        for (config, after, want) in cases {
            let got = run(config, after);
            assert!(got.contains(want), "config {} after {}: got {}, want {}", config, after, got, want);
        }
    }
}
