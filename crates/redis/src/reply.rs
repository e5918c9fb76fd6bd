//! Reading values out of Redis replies (RESP2 and RESP3 shapes alike).

use std::borrow::Cow;

use redis::Value;

/// A string reply that is valid UTF-8.
pub fn as_text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        Value::Okay => Some("OK"),
        _ => None,
    }
}

/// A string reply with invalid UTF-8 replaced, for long free-form text
/// (`INFO`, `CLIENT LIST`) that one odd byte must not discard.
pub fn as_text_lossy(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b)),
        _ => as_text(v).map(Cow::Borrowed),
    }
}

/// An integer reply, or a string reply holding an integer.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => as_text(v)?.parse().ok(),
    }
}

/// Name/value pairs of a reply that is a flat array of alternating names
/// and values (RESP2) or a map (RESP3): `CONFIG GET`, `XINFO`.
pub fn pairs(v: &Value) -> Vec<(&str, &Value)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((as_text(k)?, v)),
                _ => None,
            })
            .collect(),
        Value::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((as_text(k)?, v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The value named `name` among `pairs`.
pub fn field<'a>(pairs: &[(&str, &'a Value)], name: &str) -> Option<&'a Value> {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn texts_ints_and_pairs() {
        assert_eq!(as_text(&bulk("x")), Some("x"));
        assert_eq!(as_text(&Value::BulkString(vec![0xff])), None);
        assert_eq!(
            as_text_lossy(&Value::BulkString(b"a\xffb".to_vec())).as_deref(),
            Some("a\u{fffd}b")
        );
        assert_eq!(as_int(&Value::Int(7)), Some(7));
        assert_eq!(as_int(&bulk("-3")), Some(-3));
        assert_eq!(as_int(&bulk("x")), None);
        assert_eq!(as_int(&Value::Nil), None);
        let flat = Value::Array(vec![bulk("length"), Value::Int(2), bulk("dangling")]);
        let p = pairs(&flat);
        assert_eq!(p.len(), 1);
        assert_eq!(field(&p, "length").and_then(as_int), Some(2));
        assert!(field(&p, "dangling").is_none());
        let map = Value::Map(vec![(bulk("maxmemory"), bulk("0"))]);
        assert_eq!(
            field(&pairs(&map), "maxmemory").and_then(as_text),
            Some("0")
        );
        assert!(pairs(&Value::Nil).is_empty());
    }
}
