//! Go's syntax for numbers and durations, which statsd_exporter's line
//! values, sample rates and mapping-file durations follow.
//!
//! - [`parse_float`] accepts what Go's `strconv.ParseFloat(s, 64)` accepts:
//!   decimal and hexadecimal (`0x1p-2`, exponent required) forms, `_`
//!   between digits, `inf`/`infinity` with a sign and `nan` without one,
//!   case-insensitive; an out-of-range value is an error, not infinity.
//! - [`parse_duration`] accepts what Go's `time.ParseDuration` accepts:
//!   `1m30s`, `1.5h`, `-2s`, `0` (units `ns`, `us`, `µs`, `ms`, `s`, `m`,
//!   `h`), as signed nanoseconds.

/// Why [`parse_float`] failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FloatError {
    /// Not a number.
    Syntax,
    /// Beyond the range of `f64`; Go returns this infinity with the error.
    Range(f64),
}

impl FloatError {
    /// The value Go's `ParseFloat` returns along with this error.
    pub fn go_value(self) -> f64 {
        match self {
            FloatError::Syntax => 0.0,
            FloatError::Range(v) => v,
        }
    }
}

/// Parses a float the way Go's `strconv.ParseFloat(s, 64)` does.
pub fn parse_float(s: &str) -> Result<f64, FloatError> {
    let value = parse_float_syntax(s).ok_or(FloatError::Syntax)?;
    if value.is_infinite() && special(s).is_none() {
        return Err(FloatError::Range(value));
    }
    Ok(value)
}

fn parse_float_syntax(s: &str) -> Option<f64> {
    if let Some(v) = special(s) {
        return Some(v);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first()? {
        b'+' => {
            i += 1;
            false
        }
        b'-' => {
            i += 1;
            true
        }
        _ => false,
    };
    let hex = i + 2 < b.len() && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    if hex {
        i += 2;
    }
    let digits_start = i;
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'_' => underscores = true,
            b'.' if !saw_dot => saw_dot = true,
            b'0'..=b'9' => saw_digits = true,
            _ if hex && c.is_ascii_hexdigit() => saw_digits = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let mantissa_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exponent: Option<(usize, usize)> = None;
    if i < b.len() && (b[i] | 0x20) == exp_char {
        i += 1;
        let exp_start = i;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            underscores |= b[i] == b'_';
            i += 1;
        }
        exponent = Some((exp_start, i));
    } else if hex {
        return None;
    }
    if i != b.len() || (underscores && !underscores_ok(s)) {
        return None;
    }
    let value = if hex {
        let (start, end) = exponent?;
        let v = hex_value(&s[digits_start..mantissa_end], &s[start..end])?;
        if neg {
            -v
        } else {
            v
        }
    } else {
        let cleaned: String;
        let text = if underscores {
            cleaned = s.chars().filter(|&c| c != '_').collect();
            &cleaned
        } else {
            s
        };
        text.parse().ok()?
    };
    Some(value)
}

/// `inf`, `infinity` (optionally signed) and `nan`, case-insensitive.
fn special(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => {
            if s.eq_ignore_ascii_case("nan") {
                return Some(f64::NAN);
            }
            (1.0, s)
        }
    };
    (rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity"))
        .then_some(sign * f64::INFINITY)
}

/// Go's rule: `_` only between digits, or between a base prefix and a
/// digit.
fn underscores_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(b'+' | b'-') = b.first() {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (b[1] | 0x20) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

fn hex_value(mantissa: &str, exponent: &str) -> Option<f64> {
    let mut value = 0.0f64;
    let mut scale = 0i64;
    let mut after_dot = false;
    for c in mantissa.chars() {
        match c {
            '_' => {}
            '.' => after_dot = true,
            _ => {
                value = value * 16.0 + f64::from(c.to_digit(16)?);
                if after_dot {
                    scale -= 4;
                }
            }
        }
    }
    let exp: i64 = exponent
        .chars()
        .filter(|&c| c != '_')
        .collect::<String>()
        .parse::<i64>()
        .unwrap_or(i64::MAX)
        .clamp(-100_000, 100_000);
    let total = (exp + scale).clamp(-2000, 2000) as i32;
    Some(if total < -1000 {
        value * 2f64.powi(-1000) * 2f64.powi(total + 1000)
    } else {
        value * 2f64.powi(total)
    })
}

/// Parses a duration the way Go's `time.ParseDuration` does, in signed
/// nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        let ok = [
            ("1", 1.0),
            ("+5", 5.0),
            ("-10", -10.0),
            ("0.01", 0.01),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("1_000", 1000.0),
            ("0x1p-2", 0.25),
            ("0x1.8p1", 3.0),
            ("0X_10p0", 16.0),
            ("Inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("+INF", f64::INFINITY),
            ("1e-400", 0.0),
        ];
        for (s, want) in ok {
            assert_eq!(parse_float(s), Ok(want), "{s}");
        }
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
        let bad = [
            "", "+", "-", ".", "e5", "1o", "1e", "1e+", "0x10", "0x", "+nan", "infin", "1__0",
            "_1", "1_", "1.2.3", " 1", "1 ", "0x1p", "1_.5", "ms",
        ];
        for s in bad {
            assert_eq!(parse_float(s), Err(FloatError::Syntax), "{s}");
        }
        assert_eq!(parse_float("1e400"), Err(FloatError::Range(f64::INFINITY)));
        assert_eq!(
            parse_float("-1e400"),
            Err(FloatError::Range(f64::NEG_INFINITY))
        );
        assert_eq!(
            parse_float("0x1p5000"),
            Err(FloatError::Range(f64::INFINITY))
        );
    }

    #[test]
    fn durations_like_go() {
        let ok = [
            ("0", 0),
            ("1s", 1_000_000_000),
            ("1m2s", 62_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("-2ms", -2_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("3ns", 3),
            ("5m", 300_000_000_000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in ["", "1", "s", "1x", "1.2.3s", ".s", "-", "100000000000h"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
