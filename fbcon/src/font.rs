//! The console's font: Noto Sans Mono, pre-rasterised by the
//! `noto-sans-mono-bitmap` crate in four sizes, regular weight. Each glyph
//! is a grid of coverage bytes (0: background, 255: foreground), so text
//! is anti-aliased. Characters outside ASCII are drawn as U+FFFD.

use core::fmt;

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

/// A font size: the height of a text cell in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FontSize {
    /// Cells of 7x16 pixels.
    S16,
    /// Cells of 9x20 pixels.
    S20,
    /// Cells of 11x24 pixels.
    S24,
    /// Cells of 14x32 pixels.
    S32,
}

/// The fewest text rows the automatic choice keeps: [`FontSize::auto`]
/// takes the largest size that still gives this many.
pub const AUTO_MIN_ROWS: usize = 60;

impl FontSize {
    /// Every size, smallest first.
    pub const ALL: [FontSize; 4] = [FontSize::S16, FontSize::S20, FontSize::S24, FontSize::S32];

    /// The sizes as the command line names them.
    pub const NAMES: &'static str = "16, 20, 24, 32";

    /// Parses `16`, `20`, `24` or `32`.
    pub fn parse(s: &str) -> Option<FontSize> {
        Some(match s {
            "16" => FontSize::S16,
            "20" => FontSize::S20,
            "24" => FontSize::S24,
            "32" => FontSize::S32,
            _ => return None,
        })
    }

    /// The size for a screen `height` pixels high: the largest that keeps
    /// [`AUTO_MIN_ROWS`] rows, so that text has about the same physical
    /// size on a 1080p laptop (16) and a 4K one (32); 16 on smaller screens.
    pub fn auto(height: usize) -> FontSize {
        FontSize::ALL
            .into_iter()
            .rev()
            .find(|f| height / f.height() >= AUTO_MIN_ROWS)
            .unwrap_or(FontSize::S16)
    }

    fn raster(self) -> RasterHeight {
        match self {
            FontSize::S16 => RasterHeight::Size16,
            FontSize::S20 => RasterHeight::Size20,
            FontSize::S24 => RasterHeight::Size24,
            FontSize::S32 => RasterHeight::Size32,
        }
    }

    /// Cell height in pixels.
    pub fn height(self) -> usize {
        self.raster().val()
    }

    /// Cell width in pixels.
    pub fn width(self) -> usize {
        get_raster_width(FontWeight::Regular, self.raster())
    }

    /// The coverage bytes of `c`, [`width`](Self::width) x
    /// [`height`](Self::height), row by row; U+FFFD for characters the
    /// font lacks.
    pub fn glyph(self, c: char) -> &'static [u8] {
        let raster = get_raster(c, FontWeight::Regular, self.raster())
            .or_else(|| {
                get_raster(
                    char::REPLACEMENT_CHARACTER,
                    FontWeight::Regular,
                    self.raster(),
                )
            })
            .expect("the font has U+FFFD (feature unicode-specials)");
        raster.pixels()
    }
}

impl fmt::Display for FontSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Noto Sans Mono {} ({}x{} cells)",
            self.height(),
            self.width(),
            self.height()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_measure() {
        for (name, size, w) in [
            ("16", FontSize::S16, 7),
            ("20", FontSize::S20, 9),
            ("24", FontSize::S24, 11),
            ("32", FontSize::S32, 14),
        ] {
            assert_eq!(FontSize::parse(name), Some(size));
            assert_eq!(size.width(), w);
            assert_eq!(size.glyph('A').len(), w * size.height());
        }
        for bad in ["", "8", "15", "16px", "+16", "x"] {
            assert_eq!(FontSize::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn automatic_size_follows_the_screen_height() {
        assert_eq!(FontSize::auto(600), FontSize::S16);
        assert_eq!(FontSize::auto(800), FontSize::S16);
        assert_eq!(FontSize::auto(1080), FontSize::S16);
        assert_eq!(FontSize::auto(1440), FontSize::S24);
        assert_eq!(FontSize::auto(1600), FontSize::S24);
        assert_eq!(FontSize::auto(2160), FontSize::S32);
    }

    #[test]
    fn missing_characters_fall_back_to_the_replacement_glyph() {
        let f = FontSize::S16;
        assert_eq!(f.glyph('é'), f.glyph('\u{fffd}'));
        assert_ne!(f.glyph('A'), f.glyph('\u{fffd}'));
        assert!(f.glyph(' ').iter().all(|&a| a == 0));
        assert!(f.glyph('#').iter().any(|&a| a > 200));
    }
}
