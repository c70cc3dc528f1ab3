//! A text console on a linear framebuffer: a grid of cells, a cursor,
//! wrapping of long lines and scrolling.
//!
//! The console does not own the framebuffer: every call gets it as a
//! `&mut [u8]`, so the kernel can hand it the mapping that works at the
//! moment (Limine's HHDM, then baton's own) and the host tests a buffer.
//!
//! Drawing writes only the pixels a glyph covers: a cell is background
//! until drawn, because rows are cleared when the screen is cleared and
//! when they scroll in. Scrolling moves pixel rows up and clears the rows
//! freed at the bottom; no glyph is drawn again. Moving the screen is the
//! costly part of a line, so the console keeps it small twice:
//!
//! - it moves only what holds text: it knows how far each text row has
//!   been written, copies that much of each pixel row, and clears what the
//!   row held beyond it (log lines are shorter than the screen is wide);
//! - when the cursor passes the last row it scrolls by `scroll_step` rows
//!   at once (jump scrolling, as terminals do when text comes faster than
//!   they can scroll): the screen moves once per `scroll_step` lines.
//!
//! At most [`MAX_ROWS`] text rows are used (a 4320-pixel-high screen in
//! the smallest font has 270).

use core::fmt;

use crate::font::FontSize;
use crate::format::{PixelFormat, Rgb};
use crate::style::{STYLES, Style};

/// The most text rows a console uses.
pub const MAX_ROWS: usize = 256;

/// The shape of a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Visible pixels per row.
    pub width: usize,
    /// Visible rows.
    pub height: usize,
    /// Bytes from one row to the next (at least `width` pixels).
    pub pitch: usize,
    /// The pixel format.
    pub format: PixelFormat,
}

impl Geometry {
    /// The fewest bytes a buffer of this shape holds: every row but the last
    /// in full, the last up to its last visible pixel. `None` if that
    /// overflows or the shape is empty or inconsistent.
    pub fn min_len(&self) -> Option<usize> {
        let row = self.width.checked_mul(self.format.bytes())?;
        if self.width == 0 || self.height == 0 || self.pitch < row {
            return None;
        }
        self.pitch.checked_mul(self.height - 1)?.checked_add(row)
    }
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}, pitch {}, {}",
            self.width, self.height, self.pitch, self.format
        )
    }
}

/// Why a console cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleError {
    /// The geometry is empty, its pitch shorter than a row, or its size
    /// overflows.
    BadGeometry,
    /// Not even one cell of the font fits.
    TooSmall,
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::BadGeometry => {
                write!(f, "the framebuffer's size, pitch and depth do not add up")
            }
            ConsoleError::TooSmall => write!(f, "not one character fits the framebuffer"),
        }
    }
}

/// What the console has done, for the cost report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Characters drawn (spaces included).
    pub glyphs: u64,
    /// Line feeds (newlines and wraps).
    pub lines: u64,
    /// Scrolls (each by `scroll_step` rows).
    pub scrolls: u64,
}

/// A text console over a framebuffer of one [`Geometry`].
#[derive(Clone)]
pub struct Console {
    geometry: Geometry,
    min_len: usize,
    font: FontSize,
    cols: usize,
    rows: usize,
    /// The cursor; `col == cols` means the row is full and the next
    /// character wraps.
    col: usize,
    row: usize,
    scroll_step: usize,
    style: Style,
    /// Per style, the pixel value of each coverage byte.
    shades: [[u32; 256]; STYLES],
    /// Per printable ASCII character, where its glyph has ink.
    ink: [Ink; 95],
    /// Per text row, the columns written since it was last cleared.
    used: [u16; MAX_ROWS],
    stats: Stats,
}

/// The rows and columns of a glyph that have ink (coverage above 0):
/// drawing on a black background touches only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ink {
    top: u8,
    bottom: u8,
    left: u8,
    right: u8,
}

impl Ink {
    /// The inked box of `glyph`, `width` pixels wide; empty for a blank.
    fn of(glyph: &[u8], width: usize) -> Ink {
        let mut ink = Ink {
            top: u8::MAX,
            bottom: 0,
            left: u8::MAX,
            right: 0,
        };
        for (y, row) in glyph.chunks_exact(width).enumerate() {
            for (x, &a) in row.iter().enumerate() {
                if a != 0 {
                    ink.top = ink.top.min(y as u8);
                    ink.bottom = ink.bottom.max(y as u8 + 1);
                    ink.left = ink.left.min(x as u8);
                    ink.right = ink.right.max(x as u8 + 1);
                }
            }
        }
        if ink.bottom == 0 {
            ink = Ink {
                top: 0,
                bottom: 0,
                left: 0,
                right: 0,
            };
        }
        ink
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("geometry", &self.geometry)
            .field("font", &self.font)
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("cursor", &(self.col, self.row))
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console on `geometry` in `font`, scrolling `scroll_step` rows at a
    /// time (at least 1, at most every row), cursor at the top left. The
    /// screen is not touched: [`clear`](Self::clear) it first.
    pub fn new(
        geometry: Geometry,
        font: FontSize,
        scroll_step: usize,
    ) -> Result<Console, ConsoleError> {
        let min_len = geometry.min_len().ok_or(ConsoleError::BadGeometry)?;
        let cols = geometry.width / font.width();
        let rows = (geometry.height / font.height()).min(MAX_ROWS);
        if cols == 0 || rows == 0 {
            return Err(ConsoleError::TooSmall);
        }
        let mut shades = [[0; 256]; STYLES];
        for style in Style::ALL {
            let (fg, bg) = style.colours();
            for (alpha, px) in shades[style.index()].iter_mut().enumerate() {
                *px = geometry.format.encode(fg.over(bg, alpha as u8));
            }
        }
        let mut ink = [Ink {
            top: 0,
            bottom: 0,
            left: 0,
            right: 0,
        }; 95];
        for (i, slot) in ink.iter_mut().enumerate() {
            *slot = Ink::of(font.glyph(char::from(b' ' + i as u8)), font.width());
        }
        Ok(Console {
            geometry,
            min_len,
            font,
            ink,
            used: [0; MAX_ROWS],
            cols,
            rows,
            col: 0,
            row: 0,
            scroll_step: scroll_step.clamp(1, rows),
            style: Style::Plain,
            shades,
            stats: Stats::default(),
        })
    }

    /// The scroll step a screen of `rows` rows gets by default: a third of
    /// it (see the module's documentation).
    pub fn default_scroll_step(rows: usize) -> usize {
        (rows / 3).max(1)
    }

    /// The framebuffer's shape.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The font.
    pub fn font(&self) -> FontSize {
        self.font
    }

    /// Text columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Text rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rows moved per scroll.
    pub fn scroll_step(&self) -> usize {
        self.scroll_step
    }

    /// The cursor as (column, row); the column equals [`cols`](Self::cols)
    /// when the row is full.
    pub fn cursor(&self) -> (usize, usize) {
        (self.col, self.row)
    }

    /// What has been drawn so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The style of what is written next.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Sets the style of what is written next.
    pub fn set_style(&mut self, style: Style) {
        self.style = style;
    }

    /// Whether `fb` is large enough for the geometry; every drawing call
    /// does nothing on a buffer that is not.
    pub fn fits(&self, fb: &[u8]) -> bool {
        fb.len() >= self.min_len
    }

    /// Paints the whole framebuffer background and puts the cursor at the
    /// top left.
    pub fn clear(&mut self, fb: &mut [u8]) {
        if !self.fits(fb) {
            return;
        }
        fb[..self.min_len].fill(0);
        self.col = 0;
        self.row = 0;
        self.used = [0; MAX_ROWS];
    }

    /// Writes `s`: `\n` starts a new line, `\r` returns to its start, `\t`
    /// moves to the next multiple of 8 columns; lines longer than the
    /// screen wrap.
    pub fn write_str(&mut self, fb: &mut [u8], s: &str) {
        if !self.fits(fb) {
            return;
        }
        for c in s.chars() {
            match c {
                '\n' => {
                    self.line_feed(fb);
                    if !self.style.lasts_across_lines() {
                        self.style = Style::Plain;
                    }
                }
                '\r' => self.col = 0,
                '\t' => loop {
                    self.put(fb, ' ');
                    if self.col.is_multiple_of(8) || self.col == self.cols {
                        break;
                    }
                },
                c => self.put(fb, c),
            }
        }
    }

    /// Draws `c` at the cursor and advances it, wrapping first if the row
    /// is full.
    fn put(&mut self, fb: &mut [u8], c: char) {
        if self.col == self.cols {
            self.line_feed(fb);
        }
        self.draw(fb, c, self.col, self.row);
        self.col += 1;
        let used = &mut self.used[self.row];
        *used = (*used).max(self.col as u16);
        self.stats.glyphs += 1;
    }

    /// Draws `c` into cell (`col`, `row`), which lies on the screen.
    fn draw(&self, fb: &mut [u8], c: char, col: usize, row: usize) {
        match self.geometry.format.bytes() {
            4 => self.draw_n::<4>(fb, c, col, row),
            3 => self.draw_n::<3>(fb, c, col, row),
            _ => self.draw_n::<2>(fb, c, col, row),
        }
    }

    /// [`draw`](Self::draw) for pixels of `N` bytes. On a black background
    /// only the glyph's inked box is drawn: the cell is background already.
    fn draw_n<const N: usize>(&self, fb: &mut [u8], c: char, col: usize, row: usize) {
        let (fw, fh) = (self.font.width(), self.font.height());
        let shades = &self.shades[self.style.index()];
        let glyph = self.font.glyph(c);
        let opaque = self.style.colours().1 != Rgb::BLACK;
        let ink = match (c as u32)
            .checked_sub(0x20)
            .and_then(|i| self.ink.get(i as usize))
        {
            Some(&ink) if !opaque => ink,
            _ => Ink {
                top: 0,
                bottom: fh as u8,
                left: 0,
                right: fw as u8,
            },
        };
        let (left, right) = (ink.left as usize, ink.right as usize);
        for y in ink.top as usize..ink.bottom as usize {
            let coverage = &glyph[y * fw + left..y * fw + right];
            let start = (row * fh + y) * self.geometry.pitch + (col * fw + left) * N;
            let line = &mut fb[start..start + (right - left) * N];
            // Uncovered pixels in the box get the background they have
            // already: no branch per pixel.
            let (pixels, _) = line.as_chunks_mut::<N>();
            for (px, &alpha) in pixels.iter_mut().zip(coverage) {
                let value = shades[alpha as usize].to_le_bytes();
                px.copy_from_slice(&value[..N]);
            }
        }
    }

    /// Moves the cursor to the start of the next row, scrolling when it
    /// is on the last.
    fn line_feed(&mut self, fb: &mut [u8]) {
        self.col = 0;
        self.stats.lines += 1;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.scroll(fb);
            self.row = self.rows - self.scroll_step;
        }
    }

    /// Moves the text up by `scroll_step` rows and clears the rows freed at
    /// the bottom, each pixel row only as far as text reaches.
    fn scroll(&mut self, fb: &mut [u8]) {
        let (fh, pitch) = (self.font.height(), self.geometry.pitch);
        let cell = self.font.width() * self.geometry.format.bytes();
        let step = self.scroll_step;
        for row in 0..self.rows {
            let old = self.used[row] as usize * cell;
            let new = match self.used.get(row + step) {
                Some(&used) if row + step < self.rows => used as usize * cell,
                _ => 0,
            };
            for y in row * fh..(row + 1) * fh {
                let dst = y * pitch;
                if new > 0 {
                    let src = dst + step * fh * pitch;
                    fb.copy_within(src..src + new, dst);
                }
                if old > new {
                    fb[dst + new..dst + old].fill(0);
                }
            }
            self.used[row] = (new / cell) as u16;
        }
        self.stats.scrolls += 1;
    }
}
