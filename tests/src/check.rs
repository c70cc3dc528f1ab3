//! Reading a serial log: stripping firmware escapes, matching lines.

/// The log as lines of plain text: ANSI escape sequences (OVMF draws its
/// screen on the serial line) and carriage returns removed.
pub fn clean_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-byte; other escapes: ESC + one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out.lines().map(str::to_owned).collect()
}

/// The regions of the address space one boot's log names (its `layout:`
/// lines): with the layout randomised, a pattern cannot spell their
/// addresses, so it names the region instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regions(Vec<(String, u64, u64)>);

impl Regions {
    /// The regions of `lines`' `layout: NAME 0xSTART-0xEND (...)` lines.
    pub fn from_log(lines: &[String]) -> Self {
        let mut regions = Vec::new();
        for line in lines {
            let Some((_, rest)) = line.split_once("layout: ") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once(" 0x") else {
                continue;
            };
            let Some((start, rest)) = rest.split_once("-0x") else {
                continue;
            };
            let end = rest.split(|c: char| !c.is_ascii_hexdigit()).next();
            let hex = |s: &str| u64::from_str_radix(s, 16).ok();
            if let (Some(start), Some(end)) = (hex(start), end.and_then(hex)) {
                regions.push((name.replace(' ', "-"), start, end));
            }
        }
        Regions(regions)
    }

    fn get(&self, name: &str) -> Option<(u64, u64)> {
        self.0
            .iter()
            .find(|(n, ..)| n == name)
            .map(|&(_, start, end)| (start, end))
    }
}

/// Whether `pattern` occurs in `line`. In the pattern, `*` matches any run
/// of characters (within the line); `{NAME}` matches a hexadecimal address
/// `0x...` inside the region `regions` names `NAME` (a space in its name is
/// a `-`: `{kernel-image}`), and `{NAME.base}` only that region's first
/// address. A placeholder naming no region matches nothing.
pub fn matches_in(pattern: &str, line: &str, regions: &Regions) -> bool {
    let mut tokens = vec![Token::Star];
    let mut rest = pattern;
    while !rest.is_empty() {
        let next = rest.find(['*', '{']).unwrap_or(rest.len());
        if next > 0 {
            tokens.push(Token::Text(&rest[..next]));
            rest = &rest[next..];
        } else if let Some(r) = rest.strip_prefix('*') {
            tokens.push(Token::Star);
            rest = r;
        } else {
            let close = rest.find('}').unwrap_or(rest.len() - 1);
            let name = &rest[1..close];
            let (name, base) = match name.strip_suffix(".base") {
                Some(n) => (n, true),
                None => (name, false),
            };
            tokens.push(Token::Addr(regions.get(name), base));
            rest = &rest[close + 1..];
        }
    }
    tokens.push(Token::Star);
    match_tokens(&tokens, line)
}

enum Token<'a> {
    Text(&'a str),
    Star,
    /// An address in the region (its bounds, if the log named it), or
    /// exactly at its start.
    Addr(Option<(u64, u64)>, bool),
}

fn match_tokens(tokens: &[Token<'_>], line: &str) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return line.is_empty();
    };
    match first {
        Token::Text(t) => line
            .strip_prefix(t)
            .is_some_and(|after| match_tokens(rest, after)),
        Token::Star => (0..=line.len())
            .filter(|&i| line.is_char_boundary(i))
            .any(|i| match_tokens(rest, &line[i..])),
        Token::Addr(region, base) => {
            let Some(((start, end), digits)) = region.zip(line.strip_prefix("0x")) else {
                return false;
            };
            let len = digits
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(digits.len());
            let inside = u64::from_str_radix(&digits[..len], 16).is_ok_and(|a| {
                if *base {
                    a == start
                } else {
                    (start..end).contains(&a)
                }
            });
            inside && match_tokens(rest, &digits[len..])
        }
    }
}

/// The first line matching `pattern`, with its index.
pub fn find<'a>(lines: &'a [String], pattern: &str) -> Option<(usize, &'a str)> {
    find_in(lines, pattern, &Regions::default())
}

/// The first line matching `pattern` with `regions`' placeholders
/// ([`matches_in`]), with its index.
pub fn find_in<'a>(
    lines: &'a [String],
    pattern: &str,
    regions: &Regions,
) -> Option<(usize, &'a str)> {
    lines
        .iter()
        .enumerate()
        .find(|(_, l)| matches_in(pattern, l, regions))
        .map(|(i, l)| (i, l.as_str()))
}

/// Whether consecutive lines match `patterns`, one each, in order (with
/// `regions`' placeholders).
pub fn find_block(lines: &[String], patterns: &[&str], regions: &Regions) -> bool {
    patterns.is_empty()
        || lines.windows(patterns.len()).any(|window| {
            window
                .iter()
                .zip(patterns)
                .all(|(line, pattern)| matches_in(pattern, line, regions))
        })
}

/// The longest log line the kernel may print, timestamp and level
/// included.
pub const MAX_LINE: usize = 160;

/// The message of a kernel log line (`[    1.234567] LEVEL message`),
/// if `line` is one.
pub fn log_message(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (time, rest) = rest.split_once("] ")?;
    if !time.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    ["ERROR ", "WARN  ", "INFO  ", "DEBUG ", "TRACE "]
        .iter()
        .find_map(|level| rest.strip_prefix(level))
}

/// Whether a log message says nothing but zeros: it has numbers (two at
/// least: `entry 0` names an entry), and every one of them is 0 (units such as `4K` and hexadecimal addresses
/// are not numbers here).
pub fn only_zeros(message: &str) -> bool {
    let numbers = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()));
    let numbers: Vec<&str> = numbers.collect();
    numbers.len() >= 2 && numbers.iter().all(|w| w.chars().all(|c| c == '0'))
}

/// What is wrong with the shape of the kernel's log lines: longer than
/// [`MAX_LINE`], or saying only zeros.
pub fn log_shape_problems(lines: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(message) = log_message(line) else {
            continue;
        };
        let len = line.chars().count();
        if len > MAX_LINE {
            problems.push(format!(
                "line {} is {len} characters long (at most {MAX_LINE}): {line}",
                i + 1
            ));
        }
        if only_zeros(message) {
            problems.push(format!("line {} says only zeros: {line}", i + 1));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_told_from_the_rest_and_judged() {
        assert_eq!(
            log_message("[   12.5] INFO  mm: frames: 3 MiB free"),
            Some("mm: frames: 3 MiB free")
        );
        assert_eq!(log_message("  RIP 0xffffffff80001000"), None);
        assert_eq!(log_message("[=3h BdsDxe: loading"), None);
        assert!(only_zeros("handoff: leaves in vmalloc: 4K 0 / 2M 0 / 1G 0"));
        assert!(only_zeros("efi: 0 of 0 variables"));
        assert!(!only_zeros("inject: entry 0 of the root table"));
        assert!(!only_zeros(
            "selftest: 5 tests: 5 passed, 0 failed, 0 skipped"
        ));
        assert!(!only_zeros("boot: framebuffer at physical 0x0"));
        assert!(!only_zeros("boot complete; idling"));
        assert!(!only_zeros("limine: nothing mapped in the lower half"));
        let long = format!("[    1.0] DEBUG {}", "x".repeat(MAX_LINE));
        let lines = [
            "[    1.0] INFO  handoff: leaves in fixmap: 4K 0 / 2M 0 / 1G 0".to_owned(),
            long,
            "  RIP 0x0".to_owned(),
            "[    1.0] INFO  mm: frames: 990 MiB free".to_owned(),
        ];
        let problems = log_shape_problems(&lines);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("line 1 says only zeros"));
        assert!(problems[1].starts_with("line 2 is 176 characters long"));
    }

    fn matches(pattern: &str, line: &str) -> bool {
        matches_in(pattern, line, &Regions::default())
    }

    #[test]
    fn strips_escapes() {
        let raw = b"\x1b[2J\x1b[01;01H\x1b[=3hBdsDxe: x\r\n[ 1.0] INFO  baton\r\n";
        assert_eq!(clean_lines(raw), vec!["BdsDxe: x", "[ 1.0] INFO  baton"]);
    }

    #[test]
    fn glob_matching() {
        assert!(matches(
            "in effect *",
            "boot: base revision requested 5, in effect 2 (x)"
        ));
        assert!(matches("a*c", "xxabbbcxx"));
        assert!(!matches("a*c", "xxcbbbaxx"));
        assert!(matches("", "anything"));
        assert!(!matches("paging 5-level", "paging 4-level"));
        assert!(matches("a*", "a"));
        assert!(!matches("ab", "a"));
    }

    fn log() -> Vec<String> {
        [
            "[ 1.0] INFO  layout: physmap 0xffff9d4a40000000-0xffffa84a40000000 (11 TiB, base 1 of 9)",
            "[ 1.0] INFO  layout: vmalloc 0xffffb0e400000000-0xffffd0e400000000 (32 TiB, fixed)",
            "[ 1.0] INFO  layout: kernel image 0xffffffff9c3a1000-0xffffffff9c4a1000 (slide 0x1c3a1000)",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn regions_come_from_the_layout_lines() {
        let r = Regions::from_log(&log());
        assert_eq!(
            r.get("physmap"),
            Some((0xffff_9d4a_4000_0000, 0xffff_a84a_4000_0000))
        );
        assert_eq!(
            r.get("kernel-image"),
            Some((0xffff_ffff_9c3a_1000, 0xffff_ffff_9c4a_1000))
        );
        assert_eq!(r.get("vmemmap"), None);
    }

    #[test]
    fn placeholders_match_addresses_inside_their_region() {
        let r = Regions::from_log(&log());
        let m = |p, l| matches_in(p, l, &r);
        assert!(m("stack top {vmalloc};", "stack top 0xffffb0e400004000; x"));
        assert!(!m(
            "stack top {vmalloc};",
            "stack top 0xffffd10000004000; x"
        ));
        // The end is outside, the start inside.
        assert!(!m("at {vmalloc}", "at 0xffffd0e400000000"));
        assert!(m("at {vmalloc}", "at 0xffffb0e400000000"));
        assert!(m(
            "RIP {kernel-image} CS",
            "  RIP 0xffffffff9c3a2345 CS 0x8"
        ));
        assert!(m("base {physmap.base}", "physmap base 0xffff9d4a40000000"));
        assert!(!m("base {physmap.base}", "physmap base 0xffff9d4a40001000"));
        assert!(m(
            "{physmap.base}-0x* RW",
            "0xffff9d4a40000000-0xffff9d4a40001000 RW"
        ));
        // Unknown regions and non-addresses match nothing.
        assert!(!m("at {vmemmap}", "at 0xffffb0e400000000"));
        assert!(!m("at {vmalloc}", "at ffffb0e400000000"));
        assert!(!m("at {vmalloc}", "at 0x"));
        assert_eq!(
            find_in(&log(), "vmalloc {vmalloc.base}-", &r).map(|f| f.0),
            Some(1)
        );
    }

    #[test]
    fn blocks_of_consecutive_lines() {
        let lines: Vec<String> = ["Call Trace:", " f+0x1/0x2", " kmain+0x3/0x4", "x"]
            .map(String::from)
            .to_vec();
        assert!(find_block(
            &lines,
            &["Call Trace:", " f+*", " kmain+*"],
            &Regions::default()
        ));
        assert!(find_block(&lines, &[" kmain+*", "x"], &Regions::default()));
        assert!(find_block(&lines, &[], &Regions::default()));
        // Out of order, with a gap, or past the end.
        assert!(!find_block(
            &lines,
            &[" kmain+*", " f+*"],
            &Regions::default()
        ));
        assert!(!find_block(
            &lines,
            &["Call Trace:", " kmain+*"],
            &Regions::default()
        ));
        assert!(!find_block(&lines, &["x", "y"], &Regions::default()));
    }
}
