//! How text looks: the level of a log line shown by colour.
//!
//! A log line `[    0.004211] WARN  handoff: ...` is drawn with its
//! timestamp in grey and the rest in the colour of its level; text that is
//! not a log line (the ptdump) in plain grey; fault and panic reports in
//! white on red, to their end. Every style but [`Style::Alert`] lasts to
//! the end of its line: the next line is [`Style::Plain`] unless its
//! writer says otherwise.

use crate::format::Rgb;

/// The level of a log line, as the `log` crate names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `ERROR`.
    Error,
    /// `WARN`.
    Warn,
    /// `INFO`.
    Info,
    /// `DEBUG`.
    Debug,
    /// `TRACE`.
    Trace,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 5] = [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    /// The word the log prints for it, padded to five characters
    /// (`"WARN "`), as baton's serial log does.
    pub const fn word(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
}

/// A style of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    /// The timestamp of a log line.
    Time,
    /// The level word and message of a log line.
    Level(Level),
    /// Text that is not a log line.
    Plain,
    /// A fault or panic report: lasts across lines.
    Alert,
}

/// The number of styles ([`Style::index`] is below it).
pub const STYLES: usize = 8;

/// The console's background where nothing is drawn.
pub const BACKGROUND: Rgb = Rgb::BLACK;

impl Style {
    /// Every style, in [`index`](Self::index) order.
    pub const ALL: [Style; STYLES] = [
        Style::Time,
        Style::Level(Level::Error),
        Style::Level(Level::Warn),
        Style::Level(Level::Info),
        Style::Level(Level::Debug),
        Style::Level(Level::Trace),
        Style::Plain,
        Style::Alert,
    ];

    /// A dense index, for tables per style.
    pub const fn index(self) -> usize {
        match self {
            Style::Time => 0,
            Style::Level(Level::Error) => 1,
            Style::Level(Level::Warn) => 2,
            Style::Level(Level::Info) => 3,
            Style::Level(Level::Debug) => 4,
            Style::Level(Level::Trace) => 5,
            Style::Plain => 6,
            Style::Alert => 7,
        }
    }

    /// Foreground and background colours.
    pub const fn colours(self) -> (Rgb, Rgb) {
        let fg = match self {
            Style::Time => Rgb::new(0x80, 0x80, 0x80),
            Style::Level(Level::Error) => Rgb::new(0xff, 0x55, 0x55),
            Style::Level(Level::Warn) => Rgb::new(0xff, 0xc8, 0x3c),
            Style::Level(Level::Info) => Rgb::new(0xd0, 0xd0, 0xd0),
            Style::Level(Level::Debug) => Rgb::new(0x6c, 0xa0, 0xdc),
            Style::Level(Level::Trace) => Rgb::new(0x70, 0x70, 0x70),
            Style::Plain => Rgb::new(0xb0, 0xb0, 0xb0),
            Style::Alert => Rgb::new(0xff, 0xff, 0xff),
        };
        let bg = match self {
            Style::Alert => Rgb::new(0xa0, 0x00, 0x00),
            _ => BACKGROUND,
        };
        (fg, bg)
    }

    /// Whether the style goes on after a newline (only [`Style::Alert`]).
    pub const fn lasts_across_lines(self) -> bool {
        matches!(self, Style::Alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_in_order() {
        for (i, s) in Style::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn every_level_has_its_own_colour() {
        for a in Level::ALL {
            for b in Level::ALL {
                if a != b {
                    assert_ne!(Style::Level(a).colours(), Style::Level(b).colours());
                }
            }
            assert_eq!(a.word().len(), 5);
        }
    }
}
