//! The timestamp formats AWS puts on the wire, read and written with `aws-smithy-types` (the
//! AWS SDK's own date-time type) rather than by hand:
//!
//! - RFC 3339 in UTC, `2026-11-23T16:00:00Z` (fractional seconds allowed): the `Expiration` of
//!   STS credentials;
//! - SigV4's `X-Amz-Date`, the same instant without separators: `20261123T160000Z`.

use std::time::SystemTime;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

/// `2026-11-23T16:00:00Z` (or `...16:00:00.123Z`) → time; offsets other than `Z` are refused.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let parsed = DateTime::from_str(text, Format::DateTime).ok()?;
    SystemTime::try_from(parsed).ok()
}

/// Time → `2026-11-23T16:00:00Z` (with a fraction when the time has one).
pub fn format_rfc3339(time: SystemTime) -> Option<String> {
    DateTime::from(time).fmt(Format::DateTime).ok()
}

/// `20261123T160000Z` (`X-Amz-Date`) → time.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let part = |range: std::ops::Range<usize>| {
        text.get(range)
            .filter(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()))
    };
    if text.len() != 16 || text.get(8..9) != Some("T") || text.get(15..) != Some("Z") {
        return None;
    }
    let extended = format!(
        "{}-{}-{}T{}:{}:{}Z",
        part(0..4)?,
        part(4..6)?,
        part(6..8)?,
        part(9..11)?,
        part(11..13)?,
        part(13..15)?
    );
    parse_rfc3339(&extended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn both_formats_round_trip_and_bad_text_is_refused() {
        let instant = UNIX_EPOCH + Duration::from_secs(1_795_449_600);
        assert_eq!(
            format_rfc3339(instant).as_deref(),
            Some("2026-11-23T16:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-11-23T16:00:00Z"), Some(instant));
        assert_eq!(
            parse_rfc3339("2026-11-23T16:00:00.123Z"),
            Some(instant + Duration::from_millis(123))
        );
        assert_eq!(parse_amz_date("20261123T160000Z"), Some(instant));
        // A leap day.
        assert_eq!(
            parse_amz_date("20240229T000000Z"),
            parse_rfc3339("2024-02-29T00:00:00Z")
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-23 16:00:00Z",
            "2026-11-23T16:00:00",
            "2026-11-23T16:00:00+01:00",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
        for bad in [
            "",
            "20261123160000Z",
            "2026112XT160000Z",
            "20261123T160000",
            "20260230T000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
