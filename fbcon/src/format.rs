//! Pixel formats as Limine describes a framebuffer: bits per pixel and,
//! per colour channel, a mask size and shift (`red_mask_size`,
//! `red_mask_shift`, ...). Pixels are stored little-endian, as on x86.

use core::fmt;

/// An 8-bit-per-channel colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb {
    /// Red, 0 to 255.
    pub r: u8,
    /// Green, 0 to 255.
    pub g: u8,
    /// Blue, 0 to 255.
    pub b: u8,
}

impl Rgb {
    /// Black, which every format encodes as all zero bits.
    pub const BLACK: Rgb = Rgb::new(0, 0, 0);

    /// The colour `(r, g, b)`.
    pub const fn new(r: u8, g: u8, b: u8) -> Rgb {
        Rgb { r, g, b }
    }

    /// `self` drawn over `bg` with coverage `alpha` (0: all `bg`, 255: all
    /// `self`), per channel, rounded to nearest.
    pub const fn over(self, bg: Rgb, alpha: u8) -> Rgb {
        const fn mix(fg: u8, bg: u8, a: u8) -> u8 {
            let a = a as u32;
            ((fg as u32 * a + bg as u32 * (255 - a) + 127) / 255) as u8
        }
        Rgb::new(
            mix(self.r, bg.r, alpha),
            mix(self.g, bg.g, alpha),
            mix(self.b, bg.b, alpha),
        )
    }
}

/// Where one colour channel sits in a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel {
    /// Bits of the channel (1 to 16).
    pub size: u8,
    /// Position of its lowest bit.
    pub shift: u8,
}

impl Channel {
    /// A channel of `size` bits from bit `shift` up.
    pub const fn new(size: u8, shift: u8) -> Channel {
        Channel { size, shift }
    }

    const fn max(self) -> u32 {
        (1 << self.size) - 1
    }

    const fn mask(self) -> u32 {
        self.max() << self.shift
    }

    /// `value` (0 to 255) scaled to the channel's size, in place.
    const fn encode(self, value: u8) -> u32 {
        ((value as u32 * self.max() + 127) / 255) << self.shift
    }

    /// The channel's value in `pixel`, scaled back to 0 to 255.
    const fn decode(self, pixel: u32) -> u8 {
        let v = (pixel >> self.shift) & self.max();
        ((v * 255 + self.max() / 2) / self.max()) as u8
    }
}

/// Why a pixel format is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// Only 16, 24 and 32 bits per pixel are drawn.
    Bpp(u16),
    /// A channel is empty, wider than 16 bits, or reaches past the pixel.
    Channel {
        /// `red`, `green` or `blue`.
        name: &'static str,
        /// Its mask size.
        size: u8,
        /// Its mask shift.
        shift: u8,
    },
    /// Two channels share bits.
    Overlap,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::Bpp(bpp) => {
                write!(f, "{bpp} bits per pixel (the console draws 16, 24 or 32)")
            }
            FormatError::Channel { name, size, shift } => write!(
                f,
                "{name} mask of {size} bits at bit {shift} does not fit the pixel"
            ),
            FormatError::Overlap => write!(f, "colour masks overlap"),
        }
    }
}

/// A pixel format: its size and where red, green and blue sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelFormat {
    bpp: u16,
    red: Channel,
    green: Channel,
    blue: Channel,
}

impl PixelFormat {
    /// The common 32-bit format (x8r8g8b8): blue in the lowest byte.
    pub const XRGB8888: PixelFormat = PixelFormat {
        bpp: 32,
        red: Channel::new(8, 16),
        green: Channel::new(8, 8),
        blue: Channel::new(8, 0),
    };

    /// Checks and builds a format.
    pub const fn new(
        bpp: u16,
        red: Channel,
        green: Channel,
        blue: Channel,
    ) -> Result<PixelFormat, FormatError> {
        if !matches!(bpp, 16 | 24 | 32) {
            return Err(FormatError::Bpp(bpp));
        }
        let channels = [("red", red), ("green", green), ("blue", blue)];
        let mut i = 0;
        while i < 3 {
            let (name, c) = channels[i];
            if c.size == 0 || c.size > 16 || c.shift as u16 + c.size as u16 > bpp {
                return Err(FormatError::Channel {
                    name,
                    size: c.size,
                    shift: c.shift,
                });
            }
            i += 1;
        }
        if red.mask() & green.mask() != 0
            || red.mask() & blue.mask() != 0
            || green.mask() & blue.mask() != 0
        {
            return Err(FormatError::Overlap);
        }
        Ok(PixelFormat {
            bpp,
            red,
            green,
            blue,
        })
    }

    /// Bits per pixel.
    pub const fn bpp(&self) -> u16 {
        self.bpp
    }

    /// Bytes per pixel (2, 3 or 4).
    pub const fn bytes(&self) -> usize {
        self.bpp as usize / 8
    }

    /// The red, green and blue channels.
    pub const fn channels(&self) -> [Channel; 3] {
        [self.red, self.green, self.blue]
    }

    /// The pixel value of `c`; bits outside the masks are zero.
    pub const fn encode(&self, c: Rgb) -> u32 {
        self.red.encode(c.r) | self.green.encode(c.g) | self.blue.encode(c.b)
    }

    /// The colour of pixel value `pixel`.
    pub const fn decode(&self, pixel: u32) -> Rgb {
        Rgb::new(
            self.red.decode(pixel),
            self.green.decode(pixel),
            self.blue.decode(pixel),
        )
    }

    /// The pixel stored little-endian at the start of `bytes` (at least
    /// [`bytes`](Self::bytes) long).
    pub fn read(&self, bytes: &[u8]) -> u32 {
        let mut le = [0u8; 4];
        le[..self.bytes()].copy_from_slice(&bytes[..self.bytes()]);
        u32::from_le_bytes(le)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.channels();
        write!(
            f,
            "{} bpp, red {}@{} green {}@{} blue {}@{}",
            self.bpp, r.size, r.shift, g.size, g.shift, b.size, b.shift
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xrgb_is_bytes_b_g_r() {
        let f = PixelFormat::XRGB8888;
        let px = f.encode(Rgb::new(0x12, 0x34, 0x56));
        assert_eq!(px.to_le_bytes(), [0x56, 0x34, 0x12, 0]);
        assert_eq!(f.decode(px), Rgb::new(0x12, 0x34, 0x56));
    }

    #[test]
    fn narrow_and_wide_channels_scale() {
        // 5-6-5 and 10-bit channels: full scale stays full scale, zero zero.
        let rgb565 = PixelFormat::new(
            16,
            Channel::new(5, 11),
            Channel::new(6, 5),
            Channel::new(5, 0),
        )
        .unwrap();
        assert_eq!(rgb565.encode(Rgb::new(255, 255, 255)), 0xffff);
        assert_eq!(rgb565.encode(Rgb::new(255, 0, 0)), 0xf800);
        assert_eq!(rgb565.encode(Rgb::new(0, 255, 0)), 0x07e0);
        assert_eq!(rgb565.encode(Rgb::new(128, 0, 0)), 16 << 11);
        assert_eq!(rgb565.decode(0x07e0), Rgb::new(0, 255, 0));
        let x2r10 = PixelFormat::new(
            32,
            Channel::new(10, 20),
            Channel::new(10, 10),
            Channel::new(10, 0),
        )
        .unwrap();
        assert_eq!(x2r10.encode(Rgb::new(255, 0, 255)), 0x3ff << 20 | 0x3ff);
        for v in [0u8, 1, 77, 128, 254, 255] {
            let c = Rgb::new(v, v, v);
            assert_eq!(x2r10.decode(x2r10.encode(c)), c, "10-bit round trip of {v}");
        }
    }

    #[test]
    fn bad_formats_are_refused() {
        let c8 = |shift| Channel::new(8, shift);
        assert_eq!(
            PixelFormat::new(8, c8(0), c8(0), c8(0)),
            Err(FormatError::Bpp(8))
        );
        assert_eq!(
            PixelFormat::new(24, c8(16), c8(8), Channel::new(8, 20)),
            Err(FormatError::Channel {
                name: "blue",
                size: 8,
                shift: 20
            })
        );
        assert_eq!(
            PixelFormat::new(32, Channel::new(0, 16), c8(8), c8(0)),
            Err(FormatError::Channel {
                name: "red",
                size: 0,
                shift: 16
            })
        );
        assert_eq!(
            PixelFormat::new(32, c8(4), c8(8), c8(16)),
            Err(FormatError::Overlap)
        );
    }

    #[test]
    fn blending_ends_at_both_colours() {
        let fg = Rgb::new(200, 100, 0);
        let bg = Rgb::new(0, 50, 255);
        assert_eq!(fg.over(bg, 0), bg);
        assert_eq!(fg.over(bg, 255), fg);
        assert_eq!(fg.over(bg, 128), Rgb::new(100, 75, 127));
    }
}
