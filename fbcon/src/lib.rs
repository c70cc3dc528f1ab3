//! baton's screen console, the pure half: log text drawn on a linear
//! framebuffer described as Limine describes it (size, pitch, bits per
//! pixel, colour masks), in Noto Sans Mono from the
//! `noto-sans-mono-bitmap` crate, with wrapping, scrolling and the level
//! of each log line shown by colour.
//!
//! Nothing here touches hardware: the console draws into a `&mut [u8]`
//! the caller hands it, so the same code runs in the kernel on the
//! framebuffer, in the host tests on a buffer, and in the boot tests'
//! runner, which replays a serial log ([`replay`]) to know what the screen
//! must show.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod console;
pub mod font;
pub mod format;
pub mod replay;
pub mod style;

pub use console::{Console, ConsoleError, Geometry, Stats};
pub use font::FontSize;
pub use format::{Channel, FormatError, PixelFormat, Rgb};
pub use style::{Level, Style};
