//! A borrowed JSON field extractor: one pass over a log line picks the
//! values of a fixed set of dotted paths (`status`, `metadata.duration_ms`)
//! without building a document. Strings without escapes are borrowed from
//! the line; escaped ones are decoded into one scratch buffer reused for
//! every line, so a line costs no allocation once the buffers have grown.
//!
//! The line is checked as far as the walk needs: the objects on the way to
//! a wanted path are parsed key by key; other values only need terminated
//! strings and balanced brackets. A line that is not one object, an
//! unterminated string, a bad escape or a missing `:` or `,` is malformed.
//! A dot in a path always means nesting. When a key repeats, the last value
//! wins. Objects are walked without recursion beyond the depth of the
//! deepest configured path, so a deeply nested line costs no stack.

use memchr::memchr2;

/// Why a line is not usable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Where a value lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// A byte range of the line.
    Line(u32, u32),
    /// A byte range of the scratch buffer (a decoded string).
    Scratch(u32, u32),
}

/// The values found in one line, by slot; reused from line to line.
#[derive(Debug, Default)]
pub struct Values {
    spans: Vec<Option<Span>>,
    scratch: String,
}

impl Values {
    /// Forgets the previous line's values; `slots` values can be held.
    pub fn reset(&mut self, slots: usize) {
        self.spans.clear();
        self.spans.resize(slots, None);
        self.scratch.clear();
    }

    /// Sets slot `slot` to a range of the line.
    pub fn set_line(&mut self, slot: usize, start: usize, end: usize) {
        self.spans[slot] = Some(Span::Line(start as u32, end as u32));
    }

    /// The value of `slot` in `line` (the text the values were taken from).
    pub fn get<'a>(&'a self, line: &'a str, slot: usize) -> Option<&'a str> {
        match (*self.spans.get(slot)?)? {
            Span::Line(a, b) => line.get(a as usize..b as usize),
            Span::Scratch(a, b) => self.scratch.get(a as usize..b as usize),
        }
    }

    /// Bytes held for decoded strings (to check that memory stays bounded).
    pub fn scratch_capacity(&self) -> usize {
        self.scratch.capacity()
    }
}

#[derive(Debug, Default)]
struct Node {
    slot: Option<usize>,
    children: Vec<(Box<[u8]>, Node)>,
}

/// The compiled set of paths to extract.
#[derive(Debug, Default)]
pub struct Paths {
    root: Node,
}

impl Paths {
    /// Extracts dotted `path` into `slot`.
    pub fn add(&mut self, path: &str, slot: usize) {
        let mut node = &mut self.root;
        for key in path.split('.') {
            let i = match node
                .children
                .iter()
                .position(|(k, _)| **k == *key.as_bytes())
            {
                Some(i) => i,
                None => {
                    node.children.push((key.as_bytes().into(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[i].1;
        }
        node.slot = Some(slot);
    }

    /// Walks `line`, filling `values` (already [`Values::reset`]).
    pub fn extract(&self, line: &str, values: &mut Values) -> Result<(), Malformed> {
        let mut s = Scanner {
            b: line.as_bytes(),
            i: 0,
        };
        s.ws();
        if s.peek() != Some(b'{') {
            return Err(Malformed("not a JSON object"));
        }
        s.object(&self.root, values)?;
        s.ws();
        if s.i != s.b.len() {
            return Err(Malformed("text after the object"));
        }
        Ok(())
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// A string's body: its range and whether it holds escapes.
struct RawString {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), Malformed> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Malformed(what))
        }
    }

    /// At `{`: walks the members, descending into wanted sub-objects.
    fn object(&mut self, node: &Node, out: &mut Values) -> Result<(), Malformed> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut key_buf = String::new();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(Malformed("expected a key"));
            }
            let key = self.string()?;
            let child = if node.children.is_empty() {
                None
            } else if key.escaped {
                key_buf.clear();
                decode(&self.b[key.start..key.end], &mut key_buf)?;
                find(node, key_buf.as_bytes())
            } else {
                find(node, &self.b[key.start..key.end])
            };
            self.expect(b':', "expected ':' after a key")?;
            self.ws();
            match child {
                Some(c) if !c.children.is_empty() && self.peek() == Some(b'{') => {
                    self.object(c, out)?
                }
                Some(Node {
                    slot: Some(slot), ..
                }) => self.capture(*slot, out)?,
                _ => self.skip_value()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Malformed("expected ',' or '}' after a value")),
            }
        }
    }

    /// At `"`: the string's body, the scanner after its closing quote.
    fn string(&mut self) -> Result<RawString, Malformed> {
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match quote_or_escape(self.b, i) {
                Some(k) if self.b[k] == b'"' => {
                    self.i = k + 1;
                    return Ok(RawString {
                        start,
                        end: k,
                        escaped,
                    });
                }
                Some(k) => {
                    escaped = true;
                    i = k + 2;
                    if i > self.b.len() {
                        return Err(Malformed("unterminated string"));
                    }
                }
                None => return Err(Malformed("unterminated string")),
            }
        }
    }

    /// A value into `slot`: strings decoded, anything else as written.
    fn capture(&mut self, slot: usize, out: &mut Values) -> Result<(), Malformed> {
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                if s.escaped {
                    let from = out.scratch.len();
                    decode(&self.b[s.start..s.end], &mut out.scratch)?;
                    out.spans[slot] = Some(Span::Scratch(from as u32, out.scratch.len() as u32));
                } else {
                    out.set_line(slot, s.start, s.end);
                }
            }
            _ => {
                let start = self.i;
                self.skip_value()?;
                out.set_line(slot, start, self.i);
            }
        }
        Ok(())
    }

    fn skip_value(&mut self) -> Result<(), Malformed> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b',' | b'}' | b']' | b':') | None => Err(Malformed("expected a value")),
            Some(_) => {
                // A number or a literal: up to the next delimiter.
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    if matches!(c, b'"' | b'{' | b'[' | b':') {
                        return Err(Malformed("bad literal"));
                    }
                    self.i += 1;
                }
                Ok(())
            }
        }
    }

    /// At `{` or `[`: past the matching close, counting depth without
    /// recursion.
    fn skip_nested(&mut self) -> Result<(), Malformed> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(Malformed("unterminated object or array"))
    }
}

/// The index of the first `"` or `\\` in `b` from `from`. Keys and most
/// values are short: eight bytes at a time in a plain word find their end
/// before a vectorised search would have set up; long strings go to
/// `memchr2`.
fn quote_or_escape(b: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Bytes of `w` equal to `c` get their high bit set; the lowest set bit
    // is exact (higher ones may be false after a true match).
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGH
    };
    let short = b.len().min(from.saturating_add(64));
    let mut i = from;
    while i + 8 <= short {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[i..i + 8]);
        let w = u64::from_le_bytes(word);
        let hits = has(w, b'"') | has(w, b'\\');
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if short < b.len() {
        return memchr2(b'"', b'\\', &b[i..]).map(|k| i + k);
    }
    b[i.min(b.len())..]
        .iter()
        .position(|c| *c == b'"' || *c == b'\\')
        .map(|k| i + k)
}

fn find<'n>(node: &'n Node, key: &[u8]) -> Option<&'n Node> {
    // The first byte rules out most children without a call to memcmp.
    let first = *key.first()?;
    node.children
        .iter()
        .find(|(k, _)| k.first() == Some(&first) && **k == *key)
        .map(|(_, n)| n)
}

/// Decodes a JSON string body (between the quotes) onto `out`.
pub fn decode(body: &[u8], out: &mut String) -> Result<(), Malformed> {
    let mut i = 0;
    while i < body.len() {
        let Some(k) = memchr::memchr(b'\\', &body[i..]) else {
            out.push_str(utf8(&body[i..])?);
            return Ok(());
        };
        out.push_str(utf8(&body[i..i + k])?);
        i += k + 1;
        let Some(&e) = body.get(i) else {
            return Err(Malformed("unterminated escape"));
        };
        i += 1;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(body, i)?;
                i += 4;
                if (0xd800..0xdc00).contains(&hi) {
                    // A surrogate pair: the low half must follow.
                    if body.get(i..i + 2) != Some(b"\\u") {
                        return Err(Malformed("unpaired surrogate"));
                    }
                    let lo = hex4(body, i + 2)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return Err(Malformed("unpaired surrogate"));
                    }
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                        .ok_or(Malformed("bad surrogate pair"))?
                } else {
                    char::from_u32(hi).ok_or(Malformed("unpaired surrogate"))?
                }
            }
            _ => return Err(Malformed("bad escape")),
        };
        out.push(c);
    }
    Ok(())
}

fn hex4(body: &[u8], at: usize) -> Result<u32, Malformed> {
    let digits = body.get(at..at + 4).ok_or(Malformed("short \\u escape"))?;
    let mut v = 0;
    for &d in digits {
        let x = (d as char)
            .to_digit(16)
            .ok_or(Malformed("bad \\u escape"))?;
        v = v * 16 + x;
    }
    Ok(v)
}

fn utf8(b: &[u8]) -> Result<&str, Malformed> {
    // The line is a `str`, and escapes split it only at ASCII bytes.
    std::str::from_utf8(b).map_err(|_| Malformed("invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(paths: &[&str], line: &str) -> Result<Vec<Option<String>>, Malformed> {
        let mut p = Paths::default();
        for (i, path) in paths.iter().enumerate() {
            p.add(path, i);
        }
        let mut v = Values::default();
        v.reset(paths.len());
        p.extract(line, &mut v)?;
        Ok((0..paths.len())
            .map(|i| v.get(line, i).map(str::to_string))
            .collect())
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect()
    }

    #[test]
    fn picks_top_level_and_nested_fields() {
        let line = r#"{"method":"GET","path":"/users/7","status":200,"metadata":{"duration_ms":12.5,"x":[1,{"y":2}]},"ok":true,"n":null}"#;
        assert_eq!(
            extract(
                &[
                    "method",
                    "status",
                    "metadata.duration_ms",
                    "ok",
                    "n",
                    "absent",
                    "metadata.x"
                ],
                line
            ),
            Ok(some(&[
                "GET",
                "200",
                "12.5",
                "true",
                "null",
                "",
                "[1,{\"y\":2}]"
            ]))
        );
        // A wanted nested path under a value that is not an object.
        assert_eq!(
            extract(&["method.x"], r#"{"method":"GET"}"#),
            Ok(some(&[""]))
        );
        // Both a path and a path below it.
        assert_eq!(
            extract(&["a", "a.b"], r#"{"a":{"b":1}}"#),
            Ok(some(&["", "1"]))
        );
        assert_eq!(extract(&["a", "a.b"], r#"{"a":3}"#), Ok(some(&["3", ""])));
    }

    #[test]
    fn decodes_escapes_and_handles_whitespace() {
        let line =
            " { \"msg\" : \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\" , \"p\\u0061th\" : \"/x\" } ";
        assert_eq!(
            extract(&["msg", "path"], line),
            Ok(some(&["a\"b\\c\né😀", "/x"]))
        );
        assert_eq!(extract(&["a"], "{}"), Ok(some(&[""])));
        // The last of a repeated key wins.
        assert_eq!(extract(&["a"], r#"{"a":1,"a":2}"#), Ok(some(&["2"])));
    }

    #[test]
    fn quote_search_finds_the_first_at_every_offset() {
        for len in 0..80 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                let want = (at < len).then_some(at);
                if let Some(at) = want {
                    b[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                    // A later match must not win.
                    if at + 1 < len {
                        b[at + 1] = b'"';
                    }
                }
                for from in 0..=at.min(len) {
                    assert_eq!(
                        quote_or_escape(&b, from),
                        want,
                        "len {len} at {at} from {from}"
                    );
                }
            }
        }
        // A byte 0x80 + c must not look like c.
        assert_eq!(quote_or_escape(b"\xa2\xdc\x22", 0), Some(2));
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for line in [
            "",
            "plain text",
            "[1,2]",
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"{"a":"x}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":{"b":1}"#,
            r#"{"a":[1,2}"#,
            r#"{"a":1} x"#,
            r#"{"a":1 2}"#,
            r#"{"a":"x"y}"#,
        ] {
            assert!(extract(&["a"], line).is_err(), "{line:?}");
        }
    }
}
