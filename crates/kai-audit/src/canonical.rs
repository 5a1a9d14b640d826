//! Canonical JSON: one byte sequence per value, so that a verifier re-deriving it from the parsed
//! value gets exactly the bytes that were hashed and signed.
//!
//! The rules are RFC 8785's (JSON Canonicalization Scheme) for everything kai writes: no
//! whitespace, object members sorted by their names' UTF-16 code units, strings escaped as
//! ECMAScript's `JSON.stringify` escapes them (which is what serde_json writes), integers in
//! plain decimal. Numbers with a fraction or exponent are refused rather than formatted: audit
//! details hold counts, ids and text, and float formatting is where implementations disagree.

use serde_json::Value;

/// A value that has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotCanonical(pub String);

/// `value`'s canonical form.
pub fn to_canonical(value: &Value) -> Result<String, NotCanonical> {
    let mut out = String::new();
    write(value, &mut out)?;
    Ok(out)
}

/// Whether `text` is canonical JSON: it parses, and writing the parsed value back gives `text`.
pub(crate) fn parse_canonical(text: &str) -> Result<Value, NotCanonical> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| NotCanonical(format!("not JSON: {err}")))?;
    if to_canonical(&value)? != text {
        return Err(NotCanonical("not in canonical form".into()));
    }
    Ok(value)
}

pub(crate) fn write(value: &Value, out: &mut String) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            if !(number.is_i64() || number.is_u64()) {
                return Err(NotCanonical(format!(
                    "number {number} has a fraction or exponent; audit details take integers"
                )));
            }
            out.push_str(&number.to_string());
        }
        Value::String(text) => push_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(members) => write_object(members, out)?,
    }
    Ok(())
}

/// Writes an object's members sorted by their names' UTF-16 code units.
pub(crate) fn write_object(
    members: &serde_json::Map<String, Value>,
    out: &mut String,
) -> Result<(), NotCanonical> {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (name, member)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(name, out);
        out.push(':');
        write(member, out)?;
    }
    out.push('}');
    Ok(())
}

/// Writes `text` as a JSON string escaped as RFC 8785 asks: `"`, `\` and control characters
/// (with the short forms \b \f \n \r \t, else \u00xx in lower case), nothing else.
pub(crate) fn push_string(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let byte = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[byte >> 4]));
                out.push(char::from(HEX[byte & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_are_sorted_by_utf16_code_units() {
        // RFC 8785 section 3.2.3's example of sorting: U+E000-range after astral (surrogate pairs
        // sort before it in UTF-16), unlike a sort by code points.
        let value = json!({"\u{e000}": 1, "\u{1f600}": 2, "a": 3, "A": 4, "": 5});
        assert_eq!(
            to_canonical(&value).unwrap(),
            "{\"\":5,\"A\":4,\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}"
        );
    }

    #[test]
    fn strings_are_escaped_as_rfc_8785_says() {
        let value = json!("\u{8}\t\n\u{c}\r\"\\/\u{1}\u{7f}é€");
        assert_eq!(
            to_canonical(&value).unwrap(),
            "\"\\b\\t\\n\\f\\r\\\"\\\\/\\u0001\u{7f}é€\""
        );
    }

    #[test]
    fn nested_values_have_no_whitespace_and_round_trip() {
        let text = "{\"a\":[1,-2,{\"c\":null,\"b\":true}],\"z\":\"x\"}";
        let value: Value = serde_json::from_str(text).unwrap();
        let canonical = to_canonical(&value).unwrap();
        assert_eq!(
            canonical,
            "{\"a\":[1,-2,{\"b\":true,\"c\":null}],\"z\":\"x\"}"
        );
        assert_eq!(parse_canonical(&canonical).unwrap(), value);
        assert!(parse_canonical(text).is_err(), "unsorted members");
        assert!(parse_canonical("{\"a\": 1}").is_err(), "whitespace");
        assert!(parse_canonical("{\"a\":1").is_err(), "not JSON");
    }

    #[test]
    fn fractions_are_refused() {
        assert!(to_canonical(&json!({"x": 1.5})).is_err());
        assert_eq!(
            to_canonical(&json!(u64::MAX)).unwrap(),
            u64::MAX.to_string()
        );
    }
}
