//! A string in a fixed-size buffer: what baton keeps of Limine's strings,
//! which live in bootloader memory that the handoff gives up.

use core::fmt;

/// Up to `N` bytes of UTF-8, truncated at a character boundary.
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// A copy of `s`, cut to fit.
    pub fn from_str_truncating(s: &str) -> Self {
        let mut out = Self::new();
        let mut len = s.len().min(N);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        out.buf[..len].copy_from_slice(&s.as_bytes()[..len]);
        out.len = len;
        out.truncated = len < s.len();
        out
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ever filled from a `&str` cut at a character boundary.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Whether the source did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> fmt::Write for FixedStr<N> {
    /// Appends, truncating at a character boundary when full.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.truncated |= take < s.len();
        Ok(())
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
