//! Reading numbers from kernel and server text (`/proc`, Redis `INFO`),
//! where nearly every value is a plain integer.

use std::num::ParseFloatError;

/// The most digits a `u64` always holds.
const U64_DIGITS: usize = 19;

/// Parses `text` exactly as `text.parse::<f64>()` does, with the same
/// errors, but reads an optional `-` and up to 19 ASCII digits as an
/// integer first: that is most of what exporters parse, and the general
/// float parser costs several times more. Both round an integer too large
/// for an f64's 53 bits to the nearest value, ties to even, so the results
/// are the same.
pub fn parse_f64(text: &str) -> Result<f64, ParseFloatError> {
    let (negative, digits) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text.as_bytes()),
    };
    if digits.is_empty() || digits.len() > U64_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return text.parse();
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let v = n as f64;
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_standard_parser() {
        let fixed = [
            "0",
            "-0",
            "1",
            "42",
            "-42",
            "007",
            "1234567890123456789",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "9007199254740993",
            "9007199254740995",
            "-9007199254740993",
            "1.5",
            "1e3",
            "+5",
            "",
            "-",
            "--1",
            " 1",
            "1 ",
            "0x10",
            "nan",
            "inf",
            "-inf",
            "1_000",
            "١٢",
        ];
        for text in fixed {
            assert_eq!(
                format!("{:?}", parse_f64(text)),
                format!("{:?}", text.parse::<f64>()),
                "{text:?}"
            );
        }
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let text = match x % 3 {
                0 => x.to_string(),
                1 => format!("-{}", x >> (x % 64)),
                _ => (x >> (x % 64)).to_string(),
            };
            let want = text.parse::<f64>().unwrap();
            let got = parse_f64(&text).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
    }
}
