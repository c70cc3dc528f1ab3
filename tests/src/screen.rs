//! What the screen must show: the kernel's serial log replayed on the
//! same console (`fbcon`) the kernel draws with, compared pixel by pixel
//! with QEMU's screendump.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use fbcon::{Channel, Console, FontSize, Geometry, PixelFormat, Rgb};

/// What the kernel logged about its screen console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub geometry: Geometry,
    pub font: FontSize,
    pub cols: usize,
    pub rows: usize,
    pub step: usize,
}

/// The number after `key` in `text`, up to the next non-digit.
fn number_after(text: &str, key: &str) -> Option<usize> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A colour channel `name size@shift` in `text`.
fn channel(text: &str, name: &str) -> Option<Channel> {
    let size = number_after(text, &format!("{name} "))?;
    let rest = &text[text.find(&format!("{name} "))?..];
    let shift = number_after(rest, "@")?;
    Some(Channel::new(size as u8, shift as u8))
}

/// Reads the console's setup from its log lines, `console: screen
/// 1280x800, pitch 5120, 32 bpp, red 8@16 green 8@8 blue 8@0` and
/// `console: Noto Sans Mono 16 (7x16 cells): 182x50 text, scrolling 16
/// rows at a time`, and the height it uses when the framebuffer is larger
/// than baton's window for it.
pub fn setup(lines: &[String]) -> Result<Setup, String> {
    let find = |marker: &str| {
        lines
            .iter()
            .find_map(|l| l.find(marker).map(|at| &l[at..]))
            .ok_or(format!("no `{marker}` line in the log"))
    };
    let (screen, grid_line) = (find("console: screen ")?, find("console: Noto Sans Mono ")?);
    let line = format!("{screen}; {grid_line}");
    let bad = || format!("cannot read the console's setup from: {line}");
    let text = line.as_str();
    let width = number_after(text, "screen ").ok_or_else(bad)?;
    let mut height = number_after(text, &format!("{width}x")).ok_or_else(bad)?;
    if let Some(clipped) = lines
        .iter()
        .find(|l| l.contains("the console uses its top "))
    {
        height = number_after(clipped, "the console uses its top ").ok_or_else(bad)?;
    }
    let pitch = number_after(text, "pitch ").ok_or_else(bad)?;
    let bpp = number_after(text, &format!("pitch {pitch}, ")).ok_or_else(bad)?;
    let format = PixelFormat::new(
        bpp as u16,
        channel(text, "red").ok_or_else(bad)?,
        channel(text, "green").ok_or_else(bad)?,
        channel(text, "blue").ok_or_else(bad)?,
    )
    .map_err(|e| format!("{}: {e}", bad()))?;
    let geometry = Geometry {
        width,
        height,
        pitch,
        format,
    };
    let font = number_after(text, "Noto Sans Mono ")
        .and_then(|s| FontSize::parse(&s.to_string()))
        .ok_or_else(bad)?;
    let grid = &text[text.find("cells): ").ok_or_else(bad)? + 8..];
    let cols = number_after(grid, "").ok_or_else(bad)?;
    let rows = number_after(grid, &format!("{cols}x")).ok_or_else(bad)?;
    let step = number_after(text, "scrolling ").ok_or_else(bad)?;
    Ok(Setup {
        geometry,
        font,
        cols,
        rows,
        step,
    })
}

/// The markers of the fatal paths' first words (`emergency_print`): from
/// the earliest on, everything is a report, drawn in the alert style.
const REPORT_STARTS: [&str; 4] = [
    "\nbaton: EXCEPTION",
    "\nbaton: PANIC",
    "baton: halted.",
    " other CPUs stopped (NMI)",
];

/// The kernel's part of a serial log (from its first line on, carriage
/// returns dropped) and where its fault or panic report starts.
pub fn kernel_text(serial: &[u8]) -> Result<(String, usize), String> {
    let all = String::from_utf8_lossy(serial).replace('\r', "");
    let first = all
        .find("] INFO  baton ")
        .and_then(|i| all[..i].rfind('['))
        .ok_or("the kernel's first line is not in the serial log")?;
    let text = all[first..].to_owned();
    let alert = REPORT_STARTS
        .iter()
        .filter_map(|m| {
            let at = text.find(m)?;
            // A marker in the middle of its line: from the line's start.
            Some(if m.starts_with(['\n', 'b']) {
                at
            } else {
                text[..at].rfind('\n').map_or(0, |n| n + 1)
            })
        })
        .min()
        .unwrap_or(text.len());
    Ok((text, alert))
}

/// The screen the kernel must have drawn: `text` replayed on a cleared
/// console of `setup`, as 8-bit colours, row by row.
pub fn expected(setup: &Setup, text: &str, alert_from: usize) -> Result<Vec<Rgb>, String> {
    let mut console = Console::new(setup.geometry, setup.font, setup.step)
        .map_err(|e| format!("the console's setup: {e}"))?;
    if (console.cols(), console.rows(), console.scroll_step())
        != (setup.cols, setup.rows, setup.step)
    {
        return Err(format!(
            "the kernel logged {}x{} text scrolling {}, the replay has {}x{} scrolling {}",
            setup.cols,
            setup.rows,
            setup.step,
            console.cols(),
            console.rows(),
            console.scroll_step()
        ));
    }
    let g = setup.geometry;
    let mut fb = vec![0u8; g.pitch * g.height];
    console.clear(&mut fb);
    fbcon::replay::replay(&mut console, &mut fb, text, alert_from);
    if console.stats().glyphs == 0 {
        return Err("nothing to draw: the replay wrote no character".into());
    }
    let bytes = g.format.bytes();
    let mut out = Vec::with_capacity(g.width * g.height);
    for y in 0..g.height {
        for x in 0..g.width {
            let at = y * g.pitch + x * bytes;
            out.push(g.format.decode(g.format.read(&fb[at..])));
        }
    }
    Ok(out)
}

/// A binary PPM (P6, 8-bit) as QEMU's `screendump` writes it.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<Rgb>,
}

/// Parses a P6 PPM with a maximum value of 255.
pub fn parse_ppm(data: &[u8]) -> Result<Image, String> {
    let mut fields = Vec::new();
    let mut at = 0;
    // Magic, width, height, maxval: whitespace-separated, `#` comments.
    while fields.len() < 4 {
        while at < data.len() && (data[at].is_ascii_whitespace() || data[at] == b'#') {
            if data[at] == b'#' {
                while at < data.len() && data[at] != b'\n' {
                    at += 1;
                }
            } else {
                at += 1;
            }
        }
        let start = at;
        while at < data.len() && !data[at].is_ascii_whitespace() {
            at += 1;
        }
        if start == at {
            return Err("truncated PPM header".into());
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    at += 1; // the one whitespace byte before the pixels
    let number = |i: usize| -> Result<usize, String> {
        fields[i]
            .parse()
            .map_err(|_| format!("bad PPM header field {:?}", fields[i]))
    };
    if fields[0] != "P6" || number(3)? != 255 {
        return Err(format!("not an 8-bit binary PPM: {fields:?}"));
    }
    let (width, height) = (number(1)?, number(2)?);
    let body = data.get(at..).unwrap_or_default();
    if body.len() < width * height * 3 {
        return Err(format!(
            "PPM of {width}x{height} has {} bytes of pixels",
            body.len()
        ));
    }
    let pixels = body
        .chunks_exact(3)
        .take(width * height)
        .map(|p| Rgb::new(p[0], p[1], p[2]))
        .collect();
    Ok(Image {
        width,
        height,
        pixels,
    })
}

/// Writes `pixels` as a PPM, to look at what was expected.
pub fn write_ppm(path: &Path, width: usize, height: usize, pixels: &[Rgb]) {
    let mut data = format!("P6\n{width} {height}\n255\n").into_bytes();
    for p in pixels {
        data.extend([p.r, p.g, p.b]);
    }
    let _ = fs::write(path, data);
}

/// Where the screen differs from what was expected: `None` if nowhere.
pub fn compare(setup: &Setup, expected: &[Rgb], got: &Image) -> Option<String> {
    let g = setup.geometry;
    // The console uses the top rows of a framebuffer larger than baton's
    // window for it: those are compared.
    if got.width != g.width || got.height < g.height {
        return Some(format!(
            "the screen is {}x{}, the console logged {}x{}",
            got.width, got.height, g.width, g.height
        ));
    }
    let mut wrong = 0usize;
    let mut first = None;
    let mut cells = std::collections::BTreeSet::new();
    for y in 0..g.height {
        for x in 0..g.width {
            let (want, have) = (expected[y * g.width + x], got.pixels[y * got.width + x]);
            if want != have {
                wrong += 1;
                first.get_or_insert((x, y, want, have));
                cells.insert((y / setup.font.height(), x / setup.font.width()));
            }
        }
    }
    let (x, y, want, have) = first?;
    let mut out = format!(
        "{wrong} pixels differ in {} text cells; first at ({x}, {y}): expected {want:?}, \
         got {have:?}; rows (text row: columns)",
        cells.len()
    );
    let mut last_row = usize::MAX;
    for (row, col) in cells.iter().take(40) {
        if *row != last_row {
            let _ = write!(out, "\n      {row}:");
            last_row = *row;
        }
        let _ = write!(out, " {col}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "[    5.1] DEBUG console: screen 1280x800, pitch 5120, 32 bpp, red 8@16 \
        green 8@8 blue 8@0";
    const GRID: &str = "[    5.1] DEBUG console: Noto Sans Mono 16 (7x16 cells): 182x50 text, \
        scrolling 16 rows at a time";

    #[test]
    fn the_setup_line_is_read() {
        let s = setup(&[LINE.to_owned(), GRID.to_owned()]).unwrap();
        assert_eq!(
            (s.geometry.width, s.geometry.height, s.geometry.pitch),
            (1280, 800, 5120)
        );
        assert_eq!(s.geometry.format, PixelFormat::XRGB8888);
        assert_eq!(
            (s.font, s.cols, s.rows, s.step),
            (FontSize::S16, 182, 50, 16)
        );
        let clipped = "[ 1.0] WARN  console: the framebuffer is larger than baton's 14 MiB \
                       window for it; the console uses its top 955 rows";
        let s = setup(&[LINE.to_owned(), GRID.to_owned(), clipped.to_owned()]).unwrap();
        assert_eq!(s.geometry.height, 955);
        assert!(setup(&["console: screen 1280x800".to_owned(), GRID.to_owned()]).is_err());
        assert!(setup(&[LINE.to_owned()]).is_err());
    }

    #[test]
    fn the_kernel_text_starts_at_its_first_line_and_the_report_at_its_marker() {
        let serial = b"\x1b[2J\x1b[01;01H[    9.5] INFO  baton 0.1.0 booting\r\n\
            [    9.6] INFO  fault: provoking NullRead\r\n\
            \r\nbaton: EXCEPTION #PF page fault\r\n  RIP 0x1\r\nbaton: halted.\r\n";
        let (text, alert) = kernel_text(serial).unwrap();
        assert!(text.starts_with("[    9.5] INFO  baton"));
        assert!(text[alert..].starts_with("\nbaton: EXCEPTION"));
        let (text, alert) = kernel_text(b"[ 1.0] INFO  baton x\n[ 2.0] INFO  y\n").unwrap();
        assert_eq!(alert, text.len());
        let smp = b"[ 1.0] INFO  baton x\nsmp: 3 of 3 other CPUs stopped (NMI)\n\nbaton: PANIC\n";
        let (text, alert) = kernel_text(smp).unwrap();
        assert!(text[alert..].starts_with("smp: 3 of 3"));
        assert!(kernel_text(b"only firmware output\n").is_err());
    }

    #[test]
    fn ppm_round_trip_and_a_difference_is_found() {
        let s = setup(&[LINE.to_owned(), GRID.to_owned()]).unwrap();
        let text = "[    1.000000] INFO  baton 0.1.0 booting\n";
        let want = expected(&s, text, text.len()).unwrap();
        let dir = std::env::temp_dir().join(format!("screen-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.ppm");
        write_ppm(&path, 1280, 800, &want);
        let mut got = parse_ppm(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(compare(&s, &want, &got), None);
        got.pixels[17 * 1280 + 8] = Rgb::new(1, 2, 3);
        let diff = compare(&s, &want, &got).unwrap();
        assert!(
            diff.starts_with("1 pixels differ in 1 text cells; first at (8, 17)"),
            "{diff}"
        );
        // A blank screen differs from any text.
        let blank = Image {
            width: 1280,
            height: 800,
            pixels: vec![Rgb::BLACK; 1280 * 800],
        };
        assert!(compare(&s, &want, &blank).is_some());
        let _ = fs::remove_dir_all(dir);
        assert!(parse_ppm(b"P5\n1 1\n255\n\0").is_err());
        assert!(parse_ppm(b"P6\n2 2\n255\n\0\0\0").is_err());
    }
}
