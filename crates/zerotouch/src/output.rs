//! Output helpers shared by the operator commands: JSON on stdout, aligned text tables,
//! times, and the parsing of time arguments (`--expires`, `--since`).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zerotouch_store::UnixMillis;

use crate::error::AppError;

/// Prints `value` as one line of JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), AppError> {
    let text = serde_json::to_string(value)
        .map_err(|e| AppError::Failed(format!("cannot encode JSON output: {e}")))?;
    write_stdout(&text)
}

/// Writes one line on stdout; a closed pipe (`| head`) is not an error worth a message.
pub fn write_stdout(line: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::io("cannot write to stdout", e)),
    }
}

/// Prints rows as a left-aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), AppError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let format_row = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        line.trim_end().to_string()
    };
    write_stdout(&format_row(&mut header.iter().copied()))?;
    for row in rows {
        write_stdout(&format_row(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 (UTC, seconds) for a Unix-millisecond time.
pub fn format_time(ms: UnixMillis) -> String {
    let time = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Whether a time argument means a moment in the future (`--expires 30d`) or the past
/// (`--since 1h`) when it is given as a duration.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    /// `now + duration`.
    Future,
    /// `now - duration`.
    Past,
}

/// Parses a time argument: RFC 3339 (`2027-01-31T12:00:00Z`), a date (`2027-01-31`, midnight
/// UTC), or a duration from now (`30d`, `12h`, `90min`), into Unix milliseconds.
pub fn parse_when(text: &str, direction: Direction, flag: &str) -> Result<UnixMillis, AppError> {
    let text = text.trim();
    let bad = || {
        AppError::Usage(format!(
            "{flag} {text:?} is not a time: use RFC 3339 (2027-01-31T12:00:00Z), a date \
             (2027-01-31) or a duration ({})",
            match direction {
                Direction::Future => "30d, 12h: from now",
                Direction::Past => "1h, 2d: ago",
            }
        ))
    };
    if let Ok(duration) = humantime::parse_duration(text) {
        let delta = i64::try_from(duration.as_millis()).map_err(|_| bad())?;
        return match direction {
            Direction::Future => now_ms().checked_add(delta),
            Direction::Past => now_ms().checked_sub(delta),
        }
        .ok_or_else(bad);
    }
    let full = if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    let time = humantime::parse_rfc3339_weak(&full).map_err(|_| bad())?;
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| bad())?
        .as_millis();
    i64::try_from(ms).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_all_three_forms() {
        assert_eq!(
            parse_when("1970-01-02", Direction::Future, "--x").expect("date"),
            86_400_000
        );
        assert_eq!(
            parse_when("1970-01-01T00:00:01Z", Direction::Future, "--x").expect("rfc3339"),
            1000
        );
        let later = parse_when("30d", Direction::Future, "--x").expect("duration");
        let earlier = parse_when("1h", Direction::Past, "--x").expect("duration");
        assert!(later > now_ms() && earlier < now_ms());
        assert!(matches!(
            parse_when("soon", Direction::Future, "--x"),
            Err(AppError::Usage(_))
        ));
    }

    #[test]
    fn format_time_is_rfc3339() {
        assert_eq!(format_time(86_400_000), "1970-01-02T00:00:00Z");
    }
}
