//! Drawing a serial log as the kernel draws it, for tests that compare
//! the screen with the log: the kernel writes every line to both, so the
//! screen must look like this log replayed on a cleared console.

use crate::console::Console;
use crate::style::{Level, Style};

/// If `line` starts as baton's log lines do (`[    0.004211] INFO  ...`),
/// the length of its timestamp with the space after it, and its level.
pub fn log_prefix(line: &str) -> Option<(usize, Level)> {
    let b = line.as_bytes();
    let close = line.find("] ")?;
    let stamp = b.get(1..close)?;
    let dot = stamp.iter().position(|&c| c == b'.')?;
    let (secs, micros) = (&stamp[..dot], &stamp[dot + 1..]);
    let secs_ok = secs.iter().all(|&c| c == b' ' || c.is_ascii_digit())
        && secs.last().is_some_and(u8::is_ascii_digit);
    if b.first() != Some(&b'[')
        || !secs_ok
        || micros.len() != 6
        || !micros.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let rest = &line[close + 2..];
    let level = Level::ALL
        .into_iter()
        .find(|l| rest.starts_with(l.word()) && rest[5..].starts_with(' '))?;
    Some((close + 2, level))
}

/// Writes one line (or the start of one) of log text: a log line's
/// timestamp in [`Style::Time`] and the rest in its level's style, any
/// other line in [`Style::Plain`].
fn write_line(console: &mut Console, fb: &mut [u8], line: &str) {
    match log_prefix(line) {
        Some((stamp, level)) => {
            console.set_style(Style::Time);
            console.write_str(fb, &line[..stamp]);
            console.set_style(Style::Level(level));
            console.write_str(fb, &line[stamp..]);
        }
        None => {
            console.set_style(Style::Plain);
            console.write_str(fb, line);
        }
    }
}

/// Writes `text`, what the kernel sent to its serial console from its
/// first log line on (carriage returns removed), onto `console`: log lines
/// styled by level, other lines plain, and everything from byte
/// `alert_from` on (a fault or panic report; `text.len()` for none) in
/// [`Style::Alert`].
pub fn replay(console: &mut Console, fb: &mut [u8], text: &str, alert_from: usize) {
    let alert_from = alert_from.min(text.len());
    let (normal, alert) = text.split_at(alert_from);
    for line in normal.split_inclusive('\n') {
        write_line(console, fb, line);
    }
    if !alert.is_empty() {
        console.set_style(Style::Alert);
        console.write_str(fb, alert);
    }
}
