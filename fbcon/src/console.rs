//! A text console on a linear framebuffer: a grid of cells, a cursor,
//! wrapping of long lines and scrolling.
//!
//! The console does not own the framebuffer: every call gets it as a
//! `&mut [u8]`, so the kernel can hand it the mapping that works at the
//! moment (Limine's HHDM, then baton's own) and the host tests a buffer.
//!
//! Drawing writes only the pixels a glyph covers: a cell is background
//! until drawn, because rows are cleared when the screen is cleared and
//! when they scroll in. Scrolling moves pixel rows up with one
//! `copy_within` and clears the rows freed at the bottom; no glyph is drawn
//! again. When the cursor passes the last row the console scrolls by
//! `scroll_step` rows at once (jump scrolling, as terminals do when text
//! comes faster than they can scroll): moving the screen is the costly
//! part of a line, and this moves it once per `scroll_step` lines.

use core::fmt;

use crate::font::FontSize;
use crate::format::{PixelFormat, Rgb};
use crate::style::{STYLES, Style};

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
    stats: Stats,
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
        let rows = geometry.height / font.height();
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
        Ok(Console {
            geometry,
            min_len,
            font,
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
    /// only covered pixels are written: the cell is background already.
    fn draw_n<const N: usize>(&self, fb: &mut [u8], c: char, col: usize, row: usize) {
        let (fw, fh) = (self.font.width(), self.font.height());
        let shades = &self.shades[self.style.index()];
        let opaque = self.style.colours().1 != Rgb::BLACK;
        let glyph = self.font.glyph(c);
        for (y, coverage) in glyph.chunks_exact(fw).enumerate() {
            let start = (row * fh + y) * self.geometry.pitch + col * fw * N;
            let line = &mut fb[start..start + fw * N];
            for (px, &alpha) in line.chunks_exact_mut(N).zip(coverage) {
                if alpha != 0 || opaque {
                    let value = shades[alpha as usize].to_le_bytes();
                    px.copy_from_slice(&value[..N]);
                }
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
    /// the bottom.
    fn scroll(&mut self, fb: &mut [u8]) {
        let band = self.font.height() * self.geometry.pitch;
        let end = (self.rows * band).min(self.min_len);
        let kept = (self.rows - self.scroll_step) * band;
        // With every row scrolled away there is nothing to move.
        fb.copy_within((self.scroll_step * band).min(end)..end, 0);
        fb[kept..end].fill(0);
        self.stats.scrolls += 1;
    }
}
