//! One line of a log file to the message it carries and that message's
//! fields.
//!
//! Wrappers are unwrapped first:
//! - `cri` (Kubernetes, `/var/log/pods`): `<time> <stream> <tag> <message>`,
//!   where the tag's first part is `F` (full) or `P` (partial: the message
//!   continues in the next `P`/`F` line of the same stream);
//! - `docker` (json-file driver): `{"log":"…\n","stream":"stdout","time":"…"}`,
//!   where a `log` without its trailing newline continues in the next line
//!   of the same stream.
//!
//! Partial pieces are joined per file and stream, up to the maximum line
//! length; a longer joined message is malformed. The message is then read
//! as JSON (dotted paths, see [`super::json`]) or matched by a regex whose
//! named groups are the fields (Go/RE2 syntax, unanchored: the first match
//! in the message counts).

use regex::{CaptureLocations, Regex};

use super::json::{Malformed, Paths, Values};

/// How the wrapper of a line is read.
#[derive(Debug)]
pub enum Wrapper {
    /// The line is the message.
    None,
    /// Kubernetes CRI.
    Cri,
    /// Docker json-file: the paths `log` (slot 0) and `stream` (slot 1).
    Docker(Paths),
}

impl Wrapper {
    /// The Docker json-file wrapper.
    pub fn docker() -> Wrapper {
        let mut p = Paths::default();
        p.add("log", 0);
        p.add("stream", 1);
        Wrapper::Docker(p)
    }
}

/// How fields are taken from a message.
#[derive(Debug)]
pub enum Extractor {
    /// JSON paths.
    Json(Paths),
    /// A regex; `groups` maps a field slot to a capture group index.
    Regex {
        /// The regex.
        regex: Regex,
        /// (slot, group index).
        groups: Vec<(usize, usize)>,
        /// Reused capture positions.
        locations: CaptureLocations,
    },
}

impl Extractor {
    /// A regex extractor filling `slot_of(group name)` for each named group
    /// that names a field.
    pub fn regex(regex: Regex, mut slot_of: impl FnMut(&str) -> Option<usize>) -> Extractor {
        let groups = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, name)| Some((slot_of(name?)?, i)))
            .collect();
        let locations = regex.capture_locations();
        Extractor::Regex {
            regex,
            groups,
            locations,
        }
    }

    fn extract(&mut self, message: &str, values: &mut Values) -> Result<(), Malformed> {
        match self {
            Extractor::Json(paths) => paths.extract(message, values),
            Extractor::Regex {
                regex,
                groups,
                locations,
            } => {
                if regex.captures_read(locations, message).is_none() {
                    return Err(Malformed("the regex does not match"));
                }
                for &(slot, group) in groups.iter() {
                    if let Some((a, b)) = locations.get(group) {
                        values.set_line(slot, a, b);
                    }
                }
                Ok(())
            }
        }
    }
}

/// The partial messages of one file, per stream (stdout, stderr).
#[derive(Debug, Default)]
pub struct Joiner {
    streams: [Partial; 2],
    /// A stream whose joined message was handed out and must be emptied
    /// before the next line.
    handed_out: Option<usize>,
}

#[derive(Debug, Default)]
struct Partial {
    text: String,
    /// More than the maximum line length arrived: the message is dropped
    /// when its last piece comes.
    overflow: bool,
}

impl Joiner {
    /// Bytes held for partial messages.
    pub fn held(&self) -> usize {
        self.streams.iter().map(|s| s.text.capacity()).sum()
    }

    /// Drops partial messages (the file was truncated).
    pub fn clear(&mut self) {
        for s in &mut self.streams {
            s.text = String::new();
            s.overflow = false;
        }
        self.handed_out = None;
    }

    /// Adds a piece of stream `stream`; with `last`, the whole message.
    fn piece<'a>(
        &'a mut self,
        stream: usize,
        piece: &'a str,
        last: bool,
        max: usize,
    ) -> Result<Option<&'a str>, Malformed> {
        let p = &mut self.streams[stream];
        if last && p.text.is_empty() && !p.overflow {
            return Ok(Some(piece));
        }
        if p.text.len() + piece.len() > max {
            p.overflow = true;
            p.text = String::new();
        } else if !p.overflow {
            p.text.push_str(piece);
        }
        if !last {
            return Ok(None);
        }
        if std::mem::take(&mut p.overflow) {
            return Err(Malformed(
                "joined message longer than the maximum line length",
            ));
        }
        self.handed_out = Some(stream);
        Ok(Some(&self.streams[stream].text))
    }
}

/// Reads lines in one configured format.
#[derive(Debug)]
pub struct LineParser {
    /// The wrapper.
    pub wrapper: Wrapper,
    /// The field extractor for messages.
    pub extractor: Extractor,
    /// Field slots the extractor fills.
    pub slots: usize,
    /// Longest joined message.
    pub max_line: usize,
    wrapper_values: Values,
}

impl LineParser {
    /// A parser.
    pub fn new(wrapper: Wrapper, extractor: Extractor, slots: usize, max_line: usize) -> Self {
        LineParser {
            wrapper,
            extractor,
            slots,
            max_line,
            wrapper_values: Values::default(),
        }
    }

    /// Parses one line (without its newline). `Ok(None)`: a partial piece
    /// was held. `Ok(Some(message))`: `values` hold the message's fields
    /// (read them with `values.get(message, slot)`).
    pub fn parse<'a>(
        &'a mut self,
        line: &'a str,
        joiner: &'a mut Joiner,
        values: &mut Values,
    ) -> Result<Option<&'a str>, Malformed> {
        if let Some(s) = joiner.handed_out.take() {
            joiner.streams[s].text.clear();
        }
        values.reset(self.slots);
        let message = match &self.wrapper {
            Wrapper::None => line,
            Wrapper::Cri => {
                let (stream, last, piece) = split_cri(line)?;
                match joiner.piece(stream, piece, last, self.max_line)? {
                    Some(m) => m,
                    None => return Ok(None),
                }
            }
            Wrapper::Docker(paths) => {
                let w = &mut self.wrapper_values;
                w.reset(2);
                paths.extract(line, w)?;
                let log = w.get(line, 0).ok_or(Malformed("no \"log\" field"))?;
                let stream = usize::from(w.get(line, 1) == Some("stderr"));
                let (piece, last) = match log.strip_suffix('\n') {
                    Some(p) => (p, true),
                    None => (log, false),
                };
                match joiner.piece(stream, piece, last, self.max_line)? {
                    Some(m) => m,
                    None => return Ok(None),
                }
            }
        };
        self.extractor.extract(message, values)?;
        Ok(Some(message))
    }
}

/// `<time> <stream> <tag> <message>` → (stream index, full, message).
pub fn split_cri(line: &str) -> Result<(usize, bool, &str), Malformed> {
    let bad = Malformed("not a CRI log line");
    let (time, rest) = line.split_once(' ').ok_or(bad)?;
    if time.is_empty() {
        return Err(bad);
    }
    let (stream, rest) = rest.split_once(' ').ok_or(bad)?;
    let stream = match stream {
        "stdout" => 0,
        "stderr" => 1,
        _ => return Err(Malformed("CRI stream is neither stdout nor stderr")),
    };
    let (tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let full = match tag.split(':').next() {
        Some("F") => true,
        Some("P") => false,
        _ => return Err(Malformed("CRI tag is neither F nor P")),
    };
    Ok((stream, full, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_parser(wrapper: Wrapper, max: usize) -> LineParser {
        let mut p = Paths::default();
        p.add("status", 0);
        LineParser::new(wrapper, Extractor::Json(p), 1, max)
    }

    /// Feeds lines; returns the status of each message or "!" for an error.
    fn feed(parser: &mut LineParser, lines: &[&str]) -> Vec<String> {
        let mut joiner = Joiner::default();
        let mut values = Values::default();
        let mut out = Vec::new();
        for line in lines {
            match parser.parse(line, &mut joiner, &mut values) {
                Ok(Some(m)) => out.push(values.get(m, 0).unwrap_or("-").to_string()),
                Ok(None) => {}
                Err(_) => out.push("!".into()),
            }
        }
        out
    }

    #[test]
    fn cri_lines_are_unwrapped_and_partials_joined_per_stream() {
        let mut p = json_parser(Wrapper::Cri, 1000);
        let out = feed(
            &mut p,
            &[
                r#"2024-05-01T10:00:00.1Z stdout F {"status":200}"#,
                r#"2024-05-01T10:00:00.2Z stdout P {"stat"#,
                r#"2024-05-01T10:00:00.2Z stderr F {"status":500}"#,
                r#"2024-05-01T10:00:00.3Z stdout P us":4"#,
                r#"2024-05-01T10:00:00.4Z stdout F 04}"#,
                r#"2024-05-01T10:00:00.5Z stdout F:x {"status":201}"#,
                "2024-05-01T10:00:00.6Z stdout F",
                "garbage",
                r#"2024-05-01T10:00:00.7Z stdin F {"status":200}"#,
                r#"2024-05-01T10:00:00.8Z stdout X {"status":200}"#,
            ],
        );
        assert_eq!(out, ["200", "500", "404", "201", "!", "!", "!", "!"]);
    }

    #[test]
    fn docker_lines_are_unwrapped_and_joined_until_a_newline() {
        let mut p = json_parser(Wrapper::docker(), 1000);
        let out = feed(
            &mut p,
            &[
                r#"{"log":"{\"status\":200}\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}"#,
                r#"{"log":"{\"status\":","stream":"stdout","time":"t"}"#,
                r#"{"log":"{\"status\":503}\n","stream":"stderr","time":"t"}"#,
                r#"{"log":"302}\n","stream":"stdout","time":"t"}"#,
                r#"{"stream":"stdout"}"#,
                r#"{"log":"not json\n","stream":"stdout"}"#,
                "{broken",
            ],
        );
        assert_eq!(out, ["200", "503", "302", "!", "!", "!"]);
    }

    #[test]
    fn joined_messages_are_bounded() {
        let mut p = json_parser(Wrapper::Cri, 16);
        let out = feed(
            &mut p,
            &[
                "t stdout P {\"status\":",
                "t stdout P 200, \"pad\": \"xxxxxxxxxxxxx\"",
                "t stdout F }",
                "t stdout F {\"status\":201}",
            ],
        );
        assert_eq!(out, ["!", "201"]);
        let mut joiner = Joiner::default();
        let mut values = Values::default();
        for _ in 0..1000 {
            let _ = p.parse("t stdout P 0123456789", &mut joiner, &mut values);
        }
        assert!(joiner.held() <= 64, "{}", joiner.held());
    }

    #[test]
    fn regex_groups_fill_their_fields() {
        let re =
            Regex::new(r#"^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<other>\S+)?"#)
                .unwrap();
        let names = ["status", "method", "path"];
        let ex = Extractor::regex(re, |n| names.iter().position(|x| *x == n));
        let mut p = LineParser::new(Wrapper::None, ex, 3, 100);
        let mut joiner = Joiner::default();
        let mut values = Values::default();
        let line = "GET /a 404 ";
        let m = p.parse(line, &mut joiner, &mut values).unwrap().unwrap();
        assert_eq!(values.get(m, 0), Some("404"));
        assert_eq!(values.get(m, 1), Some("GET"));
        assert_eq!(values.get(m, 2), Some("/a"));
        assert!(p.parse("nope", &mut joiner, &mut values).is_err());
    }
}
