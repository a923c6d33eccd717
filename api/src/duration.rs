//! Durations in the Gateway API format (GEP-2257): `300ms`, `2s`, `1m30s`, `1h`.

use std::time::Duration;

/// Parses a duration such as `1m30s`. Units: `h`, `m`, `s`, `ms`; at most four parts of at
/// most five digits each, like the CRD pattern.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration like 300ms, 2s, 1m30s or 1h");
    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return Err(invalid());
        };
        rest = &rest[len..];
        total += unit * u32::try_from(value).map_err(|_| invalid())?;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(invalid());
    }
    Ok(total)
}

/// Parses a duration into whole milliseconds.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    parse(text).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses a timeout into whole milliseconds: a duration above zero (an exchange given no time
/// at all would fail at once, so `0s` is refused rather than clamped).
pub fn parse_timeout_millis(text: &str) -> Result<u64, String> {
    let millis = parse_millis(text)?;
    crate::prepare::timeout_millis(millis).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse_millis("300ms").unwrap(), 300);
        assert_eq!(parse_millis("2s").unwrap(), 2000);
        assert_eq!(parse_millis("1m30s").unwrap(), 90_000);
        assert_eq!(parse_millis("1h").unwrap(), 3_600_000);
        assert_eq!(parse_millis("1s500ms").unwrap(), 1500);
    }

    #[test]
    fn timeouts_are_above_zero() {
        for zero in ["0s", "0ms", "0h0m0s", "00000ms"] {
            let error = parse_timeout_millis(zero).unwrap_err();
            assert!(error.contains("must be above 0"), "{zero}: {error}");
        }
        assert_eq!(parse_timeout_millis("1ms").unwrap(), 1);
        assert_eq!(parse_timeout_millis("0h1s").unwrap(), 1000);
    }

    #[test]
    fn refuses_malformed_durations() {
        for bad in [
            "",
            "2",
            "s",
            "1.5s",
            "2sec",
            "-1s",
            "123456s",
            "1h1m1s1ms1h",
            "1 s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
