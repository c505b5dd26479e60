//! Sizes and durations as the configuration writes them: `"8k"`, `"1m"`, `"10KiB"`, `512`,
//! `"500ms"`, `"10s"`, `"2m"`, `"1h"`, `75`.
//!
//! The raw schema keeps such a value as a [`Quantity`] (an integer or a string) so that a bad
//! unit becomes a resolution diagnostic with a line, collected with the others, instead of a
//! serde error that stops parsing. Resolution turns it into bytes or a [`Duration`] here.
//!
//! Size units are binary, as nginx's: `k` = 1024, `m` = 1024², `g` = 1024³; `kb`/`kib`,
//! `mb`/`mib`, `gb`/`gib` mean the same, in any case. A bare number is bytes. Duration units are
//! `ms`, `s`, `m`, `h` (any case); a bare number is seconds. Numbers are whole and not negative;
//! a value that does not fit in 64 bits is refused rather than wrapped.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A size or a duration as written: a TOML integer or a string with an optional unit.
///
/// Which one it is depends on the key; [`Quantity::bytes`] and [`Quantity::duration`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quantity {
    /// A TOML integer: bytes for a size, seconds for a duration.
    Integer(i64),
    /// A string such as `"8k"` or `"500ms"`.
    Text(String),
}

/// Why a size or duration could not be read. Resolution adds the key, the line and a hint
/// ([`SIZE_HINT`] or [`DURATION_HINT`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string was empty (or only spaces).
    #[error("the value is empty")]
    Empty,
    /// The number part was missing or not made of digits (`"k"`, `"1.5m"`, `"+3"`).
    #[error("`{0}` is not a whole number with an optional unit")]
    Invalid(String),
    /// A negative integer or a string starting with `-`.
    #[error("`{0}` is negative")]
    Negative(String),
    /// The value does not fit in 64 bits once the unit is applied.
    #[error("`{0}` is too large")]
    Overflow(String),
    /// A unit that is not one of the known ones.
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
}

impl Quantity {
    /// Reads the value as a size in bytes.
    pub fn bytes(&self) -> Result<u64, Error> {
        match self {
            Quantity::Integer(n) => non_negative(*n),
            Quantity::Text(text) => parse_size(text),
        }
    }

    /// Reads the value as a duration.
    pub fn duration(&self) -> Result<Duration, Error> {
        match self {
            Quantity::Integer(n) => non_negative(*n).map(Duration::from_secs),
            Quantity::Text(text) => parse_duration(text),
        }
    }
}

impl From<u64> for Quantity {
    /// A value built in code: bytes or seconds. Values past `i64::MAX` are kept as text so
    /// that they are refused as too large instead of wrapping.
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| Quantity::Text(n.to_string()), Quantity::Integer)
    }
}

impl From<&str> for Quantity {
    fn from(text: &str) -> Self {
        Quantity::Text(text.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string such as \"8k\" or \"10s\"")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Quantity, E> {
        Ok(Quantity::Integer(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Quantity, E> {
        Ok(Quantity::from(n))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Quantity, E> {
        Ok(Quantity::from(text))
    }
}

/// Parses a size: digits, optional spaces, an optional unit. Returns bytes.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let (number, unit) = split(text)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(Error::UnknownUnit(unit.to_string())),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| Error::Overflow(text.trim().to_string()))
}

/// Parses a duration: digits, optional spaces, an optional unit (`ms`, `s`, `m`, `h`); a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let (number, unit) = split(text)?;
    let overflow = || Error::Overflow(text.trim().to_string());
    match unit.to_ascii_lowercase().as_str() {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(overflow),
        "h" => number
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(overflow),
        _ => Err(Error::UnknownUnit(unit.to_string())),
    }
}

/// Splits `"  10 KiB "` into `(10, "KiB")`.
fn split(text: &str) -> Result<(u64, &str), Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Empty);
    }
    if text.starts_with('-') {
        return Err(Error::Negative(text.to_string()));
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let unit = unit.trim_start();
    if digits.is_empty() || !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(Error::Invalid(text.to_string()));
    }
    // Only digits remain, so the one way to fail is a number past u64::MAX.
    let number = digits
        .parse::<u64>()
        .map_err(|_| Error::Overflow(text.to_string()))?;
    Ok((number, unit))
}

fn non_negative(n: i64) -> Result<u64, Error> {
    u64::try_from(n).map_err(|_| Error::Negative(n.to_string()))
}

/// The hint printed under a size that could not be read.
pub const SIZE_HINT: &str = "a size is a whole number of bytes, or a string with a unit: \
                             \"512\", \"8k\", \"1m\", \"1g\" (binary; also kb/kib, mb/mib, gb/gib)";

/// The hint printed under a duration that could not be read.
pub const DURATION_HINT: &str = "a duration is a whole number of seconds, or a string with a \
                                 unit: \"500ms\", \"10s\", \"2m\", \"1h\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_in_any_case() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("8k"), Ok(8 * 1024));
        assert_eq!(parse_size("8K"), Ok(8 * 1024));
        assert_eq!(parse_size("10KiB"), Ok(10 * 1024));
        assert_eq!(parse_size("10kb"), Ok(10 * 1024));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("2mib"), Ok(2 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 4 k "), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn sizes_refuse_negatives_fractions_and_unknown_units() {
        assert_eq!(parse_size("-1k"), Err(Error::Negative("-1k".into())));
        assert_eq!(parse_size("1.5m"), Err(Error::Invalid("1.5m".into())));
        assert_eq!(parse_size("k"), Err(Error::Invalid("k".into())));
        assert_eq!(parse_size("+3"), Err(Error::Invalid("+3".into())));
        assert_eq!(parse_size("3 k b"), Err(Error::Invalid("3 k b".into())));
        assert_eq!(parse_size("10t"), Err(Error::UnknownUnit("t".into())));
        assert_eq!(parse_size("10kbit"), Err(Error::UnknownUnit("kbit".into())));
        assert_eq!(parse_size(""), Err(Error::Empty));
        assert_eq!(parse_size("   "), Err(Error::Empty));
        assert_eq!(parse_size("٣"), Err(Error::Invalid("٣".into())));
    }

    #[test]
    fn sizes_refuse_overflow_instead_of_wrapping() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(Error::Overflow(_))
        ));
        assert!(matches!(
            parse_size("17179869184g"),
            Err(Error::Overflow(_))
        ));
        assert_eq!(parse_size("17179869183g"), Ok(17179869183 << 30));
    }

    #[test]
    fn durations_take_ms_s_m_h_and_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_refuse_bad_input() {
        assert_eq!(
            parse_duration("10sec"),
            Err(Error::UnknownUnit("sec".into()))
        );
        assert_eq!(parse_duration("1d"), Err(Error::UnknownUnit("d".into())));
        assert_eq!(parse_duration("-5s"), Err(Error::Negative("-5s".into())));
        assert_eq!(parse_duration("1h30m"), Err(Error::Invalid("1h30m".into())));
        assert_eq!(parse_duration("0.5s"), Err(Error::Invalid("0.5s".into())));
        assert!(matches!(
            parse_duration("18446744073709551615h"),
            Err(Error::Overflow(_))
        ));
    }

    #[test]
    fn integers_are_bytes_or_seconds_and_never_negative() {
        assert_eq!(Quantity::Integer(512).bytes(), Ok(512));
        assert_eq!(
            Quantity::Integer(75).duration(),
            Ok(Duration::from_secs(75))
        );
        assert_eq!(
            Quantity::Integer(-1).bytes(),
            Err(Error::Negative("-1".into()))
        );
        assert_eq!(
            Quantity::Integer(-1).duration(),
            Err(Error::Negative("-1".into()))
        );
        assert_eq!(Quantity::from(u64::MAX).bytes(), Ok(u64::MAX));
        assert_eq!(Quantity::from("8k").bytes(), Ok(8192));
    }

    #[test]
    fn quantity_deserializes_from_integer_or_string() {
        #[derive(serde::Deserialize)]
        struct Doc {
            a: Quantity,
            b: Quantity,
        }
        let doc: Doc = toml::from_str("a = 10\nb = \"8k\"").unwrap();
        assert_eq!(doc.a, Quantity::Integer(10));
        assert_eq!(doc.b, Quantity::Text("8k".into()));
        let err = toml::from_str::<Doc>("a = 1.5\nb = 1").err().unwrap();
        assert!(
            err.message().contains("an integer or a string"),
            "{}",
            err.message()
        );
    }
}
