//! The console drawn into host buffers: glyph pixels in every pixel format
//! Limine may describe, odd pitches, wrapping, scrolling, styles, and the
//! replay of a serial log.

use fbcon::replay::{log_prefix, replay};
use fbcon::{Channel, Console, FontSize, Geometry, Level, PixelFormat, Rgb, Style};
use proptest::prelude::*;

const FILL: u8 = 0x5a;

fn format(bpp: u16, r: (u8, u8), g: (u8, u8), b: (u8, u8)) -> PixelFormat {
    PixelFormat::new(
        bpp,
        Channel::new(r.0, r.1),
        Channel::new(g.0, g.1),
        Channel::new(b.0, b.1),
    )
    .expect("valid format")
}

/// The formats under test: the common ones and the odd ones.
fn formats() -> Vec<(&'static str, PixelFormat)> {
    vec![
        ("xrgb8888", PixelFormat::XRGB8888),
        ("xbgr8888", format(32, (8, 0), (8, 8), (8, 16))),
        ("rgbx8888", format(32, (8, 24), (8, 16), (8, 8))),
        ("x2rgb10", format(32, (10, 20), (10, 10), (10, 0))),
        ("rgb888", format(24, (8, 16), (8, 8), (8, 0))),
        ("bgr888", format(24, (8, 0), (8, 8), (8, 16))),
        ("rgb565", format(16, (5, 11), (6, 5), (5, 0))),
    ]
}

/// The pixel value of `c` in `f`, computed apart from the crate: each
/// channel scaled to its mask with rounding, shifted into place.
fn reference_pixel(f: &PixelFormat, c: Rgb) -> u32 {
    let [r, g, b] = f.channels();
    let scale = |v: u8, ch: Channel| -> u32 {
        let max = (1u32 << ch.size) - 1;
        ((v as f64 * max as f64 / 255.0).round() as u32) << ch.shift
    };
    scale(c.r, r) | scale(c.g, g) | scale(c.b, b)
}

/// `fg` over `bg` at coverage `a`, rounded: the reference blend.
fn reference_blend(fg: Rgb, bg: Rgb, a: u8) -> Rgb {
    let mix =
        |f: u8, b: u8| ((f as f64 * a as f64 + b as f64 * (255 - a) as f64) / 255.0).round() as u8;
    Rgb::new(mix(fg.r, bg.r), mix(fg.g, bg.g), mix(fg.b, bg.b))
}

struct Screen {
    con: Console,
    fb: Vec<u8>,
}

impl Screen {
    fn new(width: usize, height: usize, pitch: usize, f: PixelFormat, font: FontSize) -> Screen {
        Screen::with_step(width, height, pitch, f, font, 1)
    }

    fn with_step(
        width: usize,
        height: usize,
        pitch: usize,
        f: PixelFormat,
        font: FontSize,
        step: usize,
    ) -> Screen {
        let g = Geometry {
            width,
            height,
            pitch,
            format: f,
        };
        let mut con = Console::new(g, font, step).expect("console");
        // Exactly the bytes the geometry needs, so overruns panic.
        let mut fb = vec![FILL; g.min_len().unwrap()];
        con.clear(&mut fb);
        Screen { con, fb }
    }

    fn write(&mut self, s: &str) {
        self.con.write_str(&mut self.fb, s);
    }

    fn pixel(&self, x: usize, y: usize) -> u32 {
        let g = self.con.geometry();
        let at = y * g.pitch + x * g.format.bytes();
        g.format.read(&self.fb[at..])
    }

    /// The pixels of text cell (`col`, `row`), row by row.
    fn cell(&self, col: usize, row: usize) -> Vec<u32> {
        let f = self.con.font();
        let mut out = Vec::new();
        for y in 0..f.height() {
            for x in 0..f.width() {
                out.push(self.pixel(col * f.width() + x, row * f.height() + y));
            }
        }
        out
    }

    /// What cell (`col`, `row`) must hold for `c` in `style`, by the
    /// reference formulas.
    fn expected_cell(&self, c: char, style: Style) -> Vec<u32> {
        let (fg, bg) = style.colours();
        let f = self.con.geometry().format;
        self.con
            .font()
            .glyph(c)
            .iter()
            .map(|&a| reference_pixel(&f, reference_blend(fg, bg, a)))
            .collect()
    }
}

#[test]
fn glyph_pixels_in_every_format_with_odd_pitches() {
    for (name, f) in formats() {
        for font in FontSize::ALL {
            // A pitch one byte longer than a row, and one with a page of
            // padding: rows must be found by pitch, not by width.
            for extra in [1, 4096 + 3] {
                let width = 40 * font.width() + 5;
                let pitch = width * f.bytes() + extra;
                let mut s = Screen::new(width, 3 * font.height() + 1, pitch, f, font);
                s.con.set_style(Style::Level(Level::Warn));
                s.write("A#");
                s.con.set_style(Style::Alert);
                s.write("q ");
                for (col, c, style) in [
                    (0, 'A', Style::Level(Level::Warn)),
                    (1, '#', Style::Level(Level::Warn)),
                    (2, 'q', Style::Alert),
                    (3, ' ', Style::Alert),
                ] {
                    assert_eq!(
                        s.cell(col, 0),
                        s.expected_cell(c, style),
                        "{name}, font {}, pitch {pitch}, {c:?}",
                        font.height()
                    );
                }
                // Nothing beyond the four cells was drawn.
                let (fw, fh) = (font.width(), font.height());
                for y in 0..s.con.geometry().height {
                    for x in 0..width {
                        if !(y < fh && x < 4 * fw) {
                            assert_eq!(s.pixel(x, y), 0, "{name}: ({x}, {y}) drawn");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn clear_paints_everything_black_and_the_padding_is_inside_the_buffer() {
    for (name, f) in formats() {
        let width = 100;
        let pitch = width * f.bytes() + 7;
        let s = Screen::new(width, 40, pitch, f, FontSize::S16);
        assert!(s.fb.iter().all(|&b| b == 0), "{name}");
    }
}

#[test]
fn a_too_small_buffer_is_left_alone() {
    let g = Geometry {
        width: 64,
        height: 32,
        pitch: 256,
        format: PixelFormat::XRGB8888,
    };
    let mut con = Console::new(g, FontSize::S16, 1).unwrap();
    let mut fb = vec![FILL; g.min_len().unwrap() - 1];
    assert!(!con.fits(&fb));
    con.clear(&mut fb);
    con.write_str(&mut fb, "text\nmore text that wraps around\n\n\n\n");
    assert!(fb.iter().all(|&b| b == FILL));
}

#[test]
fn bad_geometries_are_refused() {
    let g = |width, height, pitch| Geometry {
        width,
        height,
        pitch,
        format: PixelFormat::XRGB8888,
    };
    use fbcon::ConsoleError::*;
    assert_eq!(
        Console::new(g(0, 10, 0), FontSize::S16, 1).err(),
        Some(BadGeometry)
    );
    assert_eq!(
        Console::new(g(100, 100, 399), FontSize::S16, 1).err(),
        Some(BadGeometry)
    );
    assert_eq!(
        Console::new(g(usize::MAX / 2, 2, usize::MAX / 2), FontSize::S16, 1).err(),
        Some(BadGeometry)
    );
    assert_eq!(
        Console::new(g(6, 100, 24), FontSize::S16, 1).err(),
        Some(TooSmall)
    );
    assert_eq!(
        Console::new(g(100, 15, 400), FontSize::S16, 1).err(),
        Some(TooSmall)
    );
    assert!(Console::new(g(7, 16, 28), FontSize::S16, 1).is_ok());
}

#[test]
fn long_lines_wrap_and_a_full_row_takes_one_newline() {
    let font = FontSize::S16;
    let mut s = Screen::new(
        10 * font.width() + 3,
        5 * font.height(),
        4 * (10 * font.width() + 3),
        PixelFormat::XRGB8888,
        font,
    );
    assert_eq!((s.con.cols(), s.con.rows()), (10, 5));
    s.write("0123456789abc");
    assert_eq!(s.con.cursor(), (3, 1));
    assert_eq!(s.cell(0, 1), s.expected_cell('a', Style::Plain));
    assert_eq!(s.cell(9, 0), s.expected_cell('9', Style::Plain));
    // Exactly a row's worth, then a newline: no empty row in between.
    s.write("\n0123456789");
    assert_eq!(s.con.cursor(), (10, 2));
    s.write("\nx");
    assert_eq!(s.con.cursor(), (1, 3));
    assert_eq!(s.cell(0, 3), s.expected_cell('x', Style::Plain));
    // A tab moves to the next multiple of eight.
    s.write("\tT");
    assert_eq!(s.con.cursor(), (9, 3));
    assert_eq!(s.cell(8, 3), s.expected_cell('T', Style::Plain));
}

/// What a screen must show: a model terminal of `cols` x `rows` cells that
/// keeps the text as characters and scrolls by dropping whole rows.
fn model(text: &str, cols: usize, rows: usize, step: usize) -> Vec<String> {
    let mut grid = vec![String::new()];
    let mut full = false;
    for c in text.chars() {
        let feed = |grid: &mut Vec<String>| {
            grid.push(String::new());
            if grid.len() > rows {
                grid.drain(..step);
            }
        };
        if c == '\n' {
            feed(&mut grid);
            full = false;
            continue;
        }
        if full {
            feed(&mut grid);
        }
        grid.last_mut().unwrap().push(c);
        full = grid.last().unwrap().chars().count() == cols;
    }
    grid
}

/// The model's rows drawn on a fresh screen of the same shape, never
/// scrolled.
fn fresh(s: &Screen, rows: &[String]) -> Vec<u8> {
    let mut con = Console::new(*s.con.geometry(), s.con.font(), 1).unwrap();
    let mut fb = vec![FILL; s.fb.len()];
    con.clear(&mut fb);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            con.write_str(&mut fb, "\n");
        }
        con.write_str(&mut fb, row);
    }
    fb
}

#[test]
fn scrolling_moves_rows_and_shows_what_a_fresh_screen_shows() {
    for (name, f) in formats() {
        for step in [1, 2, 4] {
            let font = FontSize::S16;
            let width = 12 * font.width() + 2;
            let mut s = Screen::with_step(
                width,
                4 * font.height() + 5,
                width * f.bytes() + 3,
                f,
                font,
                step,
            );
            let mut text = String::new();
            for i in 0..23 {
                let line = format!("line {i} {}\n", "=".repeat(i % 15));
                s.write(&line);
                text += &line;
                let want = model(&text, 12, 4, step);
                assert_eq!(
                    s.fb,
                    fresh(&s, &want),
                    "{name}, step {step}, after line {i}: {want:?}"
                );
            }
            assert!(s.con.stats().scrolls > 0);
        }
    }
}

#[test]
fn scrolling_draws_no_glyph_again() {
    let font = FontSize::S16;
    let mut s = Screen::new(
        20 * font.width(),
        3 * font.height(),
        80 * font.width(),
        PixelFormat::XRGB8888,
        font,
    );
    let text = "abcdefghij\n".repeat(50);
    s.write(&text);
    let stats = s.con.stats();
    assert_eq!(stats.glyphs, 500, "only the characters written are drawn");
    assert_eq!(stats.lines, 50);
    assert_eq!(stats.scrolls, 48);
}

#[test]
fn jump_scrolling_moves_a_step_of_rows_at_once() {
    let font = FontSize::S16;
    let mut s = Screen::with_step(
        8 * font.width(),
        9 * font.height(),
        32 * font.width(),
        PixelFormat::XRGB8888,
        font,
        Console::default_scroll_step(9),
    );
    assert_eq!(s.con.scroll_step(), 3);
    s.write(&"x\n".repeat(8));
    assert_eq!((s.con.cursor(), s.con.stats().scrolls), ((0, 8), 0));
    s.write("x\n");
    // Three rows moved away: the cursor lands on row 6, rows 6-8 are free.
    assert_eq!((s.con.cursor(), s.con.stats().scrolls), ((0, 6), 1));
    s.write("x\nx\nx\n");
    assert_eq!((s.con.cursor(), s.con.stats().scrolls), ((0, 6), 2));
}

#[test]
fn a_very_tall_screen_uses_max_rows() {
    let g = Geometry {
        width: 70,
        height: 16 * 300,
        pitch: 280,
        format: PixelFormat::XRGB8888,
    };
    let con = Console::new(g, FontSize::S16, 1).unwrap();
    assert_eq!(con.rows(), fbcon::console::MAX_ROWS);
}

#[test]
fn styles_end_with_their_line_but_alerts_last() {
    let mut s = Screen::new(300, 100, 1200, PixelFormat::XRGB8888, FontSize::S16);
    s.con.set_style(Style::Level(Level::Error));
    s.write("E\nP");
    assert_eq!(
        s.cell(0, 0),
        s.expected_cell('E', Style::Level(Level::Error))
    );
    assert_eq!(s.cell(0, 1), s.expected_cell('P', Style::Plain));
    s.con.set_style(Style::Alert);
    s.write("\nA\nB");
    assert_eq!(s.cell(0, 3), s.expected_cell('B', Style::Alert));
    assert_eq!(s.con.style(), Style::Alert);
}

#[test]
fn log_prefixes_are_recognised() {
    assert_eq!(
        log_prefix("[    0.004211] INFO  handoff: x"),
        Some((15, Level::Info))
    );
    assert_eq!(
        log_prefix("[12345.000001] ERROR boot: y"),
        Some((15, Level::Error))
    );
    assert_eq!(
        log_prefix("[    1.000000] WARN  z"),
        Some((15, Level::Warn))
    );
    for not in [
        "",
        "[",
        "baton: EXCEPTION",
        "[    0.00421] INFO  six digits",
        "[    .004211] INFO  no seconds",
        "[    0.004211] NOTE  unknown level",
        "[    0.004211] INFOx",
        " [    0.004211] INFO  leading space",
        "0xffff888000000000-0xffff888000200000  2M RW GLB NX pte",
    ] {
        assert_eq!(log_prefix(not), None, "{not:?}");
    }
}

#[test]
fn replay_draws_what_the_kernel_draws() {
    let geometry = Geometry {
        width: 640,
        height: 160,
        pitch: 640 * 3 + 1,
        format: formats()[4].1,
    };
    // The kernel's way: styles set by the writer of each piece.
    let mut kernel = Console::new(geometry, FontSize::S16, 3).unwrap();
    let mut fb_kernel = vec![0; geometry.min_len().unwrap()];
    kernel.clear(&mut fb_kernel);
    let mut log = String::new();
    for (level, msg) in [
        (Level::Info, "baton 0.1.0 booting"),
        (Level::Warn, "cmdline: unknown option `bogus` ignored"),
        (Level::Error, &"a long error that wraps ".repeat(8)),
    ] {
        let stamp = "[    0.123456] ";
        kernel.set_style(Style::Time);
        kernel.write_str(&mut fb_kernel, stamp);
        kernel.set_style(Style::Level(level));
        let rest = format!("{} {msg}\n", level.word());
        kernel.write_str(&mut fb_kernel, &rest);
        log += stamp;
        log += &rest;
    }
    kernel.write_str(&mut fb_kernel, "0xffff8880 ptdump line\n");
    log += "0xffff8880 ptdump line\n";
    let alert_from = log.len();
    kernel.set_style(Style::Alert);
    let report = "\nbaton: EXCEPTION #PF\n  RIP 0xffffffff80001234\nbaton: halted.\n";
    kernel.write_str(&mut fb_kernel, report);
    log += report;

    let mut replayed = Console::new(geometry, FontSize::S16, 3).unwrap();
    let mut fb_replayed = vec![0; geometry.min_len().unwrap()];
    replayed.clear(&mut fb_replayed);
    replay(&mut replayed, &mut fb_replayed, &log, alert_from);
    assert!(kernel.stats().scrolls > 0);
    assert!(fb_kernel == fb_replayed, "the replay differs");
    // And the styles matter: replayed without the report's style, it differs.
    replayed.clear(&mut fb_replayed);
    replay(&mut replayed, &mut fb_replayed, &log, log.len());
    assert!(fb_kernel != fb_replayed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any text on any small geometry: no panic, nothing written past the
    /// geometry's bytes, and the screen is what the model says.
    #[test]
    fn any_text_on_any_screen(
        width in 1usize..60,
        height in 1usize..70,
        padding in 0usize..9,
        fmt in 0usize..7,
        step in 0usize..5,
        text in "(\\PC|\n|\t|\r){0,200}",
    ) {
        let f = formats()[fmt].1;
        let g = Geometry { width, height, pitch: width * f.bytes() + padding, format: f };
        let Ok(mut con) = Console::new(g, FontSize::S16, step) else {
            prop_assert!(width < 7 || height < 16);
            return Ok(());
        };
        let mut fb = vec![FILL; g.min_len().unwrap() + 64];
        con.clear(&mut fb);
        con.write_str(&mut fb, &text);
        prop_assert!(fb[g.min_len().unwrap()..].iter().all(|&b| b == FILL));
        prop_assert!(con.cursor().0 <= con.cols() && con.cursor().1 < con.rows());
        if !text.contains(['\r', '\t']) {
            let s = Screen { con, fb: fb[..g.min_len().unwrap()].to_vec() };
            let want = model(&text, s.con.cols(), s.con.rows(), s.con.scroll_step());
            prop_assert!(s.fb == fresh(&s, &want));
        }
    }
}
