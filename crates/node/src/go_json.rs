//! Reading the JSON test fixtures node_exporter's qdisc and wifi
//! collectors accept (`--collector.qdisc.fixtures`, `--collector.wifi.fixtures`)
//! the way Go's `encoding/json` fills a struct: keys match field names
//! case-insensitively, a missing or mistyped field is the zero value, and
//! `[]byte` fields (hardware addresses) are base64 text.

use serde_json::{Map, Value};

/// The value of field `name` (matched case-insensitively).
pub fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A numeric field as `f64`; 0 when missing or not a number.
pub fn number(obj: &Map<String, Value>, name: &str) -> f64 {
    field(obj, name).and_then(Value::as_f64).unwrap_or(0.0)
}

/// A string field; empty when missing or not a string.
pub fn string(obj: &Map<String, Value>, name: &str) -> String {
    field(obj, name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A `[]byte` field (standard base64 with padding); empty when missing or
/// not valid base64.
pub fn bytes(obj: &Map<String, Value>, name: &str) -> Vec<u8> {
    field(obj, name)
        .and_then(Value::as_str)
        .and_then(decode_base64)
        .unwrap_or_default()
}

/// Decodes standard base64 (RFC 4648 alphabet, `=` padding optional).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | digit(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let b = acc.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    Some(out)
}

/// The top-level array of a fixture file, each element an object.
pub fn objects(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    match serde_json::from_str::<Value>(text).map_err(|e| e.to_string())? {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect()),
        _ => Err("expected a JSON array".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_matches_keys_like_go() {
        assert_eq!(decode_base64("AAECAwQF").unwrap(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(decode_base64("/v8=").unwrap(), [0xfe, 0xff]);
        assert_eq!(decode_base64("/v8").unwrap(), [0xfe, 0xff]);
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert!(decode_base64("A").is_none());
        assert!(decode_base64("A*==").is_none());
        let objs = objects(r#"[{"IfaceName": "eth1", "bytes": 7}, 3]"#).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(string(&objs[0], "ifacename"), "eth1");
        assert_eq!(number(&objs[0], "Bytes"), 7.0);
        assert_eq!(number(&objs[0], "Drops"), 0.0);
        assert!(objects("{}").is_err());
        assert!(objects("[").is_err());
    }
}
