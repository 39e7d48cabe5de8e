//! Timestamps as people type them (Kafka's tools take `YYYY-MM-DDTHH:mm:SS.sss`, optionally with a zone)
//! turned into epoch milliseconds, without a date library for this one job.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD[THH:mm[:SS[.sss]]][Z|±HH:mm]` (UTC when no zone is given), or plain epoch ms.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("'{s}' is not a date-time like 2024-05-01T12:00:00 or epoch milliseconds");
    let (date, rest) = s.split_once('T').unwrap_or((s, ""));
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (Some(Ok(y)), Some(Ok(mo)), Some(Ok(day)), None) = (d.next(), d.next(), d.next(), d.next())
    else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|i| *i > 0) {
        let (c, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        let (h, m) = (
            h.parse::<i64>().map_err(|_| bad())?,
            m.parse::<i64>().map_err(|_| bad())?,
        );
        (c, sign * (h * 3_600_000 + m * 60_000))
    } else {
        (rest, 0)
    };
    let mut ms = 0i64;
    if !clock.is_empty() {
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut parts = hms.split(':').map(|p| p.parse::<i64>());
        let h = parts.next().unwrap_or(Ok(0)).map_err(|_| bad())?;
        let mi = parts.next().unwrap_or(Ok(0)).map_err(|_| bad())?;
        let sec = parts.next().unwrap_or(Ok(0)).map_err(|_| bad())?;
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        let frac_ms = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}")[..3]
                .parse::<i64>()
                .map_err(|_| bad())?
        };
        ms = ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms;
    }
    Ok(days_from_civil(y, mo, day) * 86_400_000 + ms - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_tool_formats() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), Ok(0));
        assert_eq!(
            parse_datetime("2024-02-29T12:30:15.250Z"),
            Ok(1_709_209_815_250)
        );
        assert_eq!(
            parse_datetime("2024-02-29T13:30:15.250+01:00"),
            Ok(1_709_209_815_250)
        );
        assert_eq!(parse_datetime("2024-02-29"), Ok(1_709_164_800_000));
        assert_eq!(parse_datetime("1709209815250"), Ok(1_709_209_815_250));
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-13-01").is_err());
    }
}
