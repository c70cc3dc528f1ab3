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

/// Whether `pattern` occurs in `line`; `*` in the pattern matches any run
/// of characters (within the line).
pub fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    // Leading and trailing wildcards are implicit: find the parts in order.
    let mut rest = line;
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The first line matching `pattern`, with its index.
pub fn find<'a>(lines: &'a [String], pattern: &str) -> Option<(usize, &'a str)> {
    lines
        .iter()
        .enumerate()
        .find(|(_, l)| matches(pattern, l))
        .map(|(i, l)| (i, l.as_str()))
}

/// Whether consecutive lines match `patterns`, one each, in order.
pub fn find_block(lines: &[String], patterns: &[&str]) -> bool {
    patterns.is_empty()
        || lines.windows(patterns.len()).any(|window| {
            window
                .iter()
                .zip(patterns)
                .all(|(line, pattern)| matches(pattern, line))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn blocks_of_consecutive_lines() {
        let lines: Vec<String> = ["Call Trace:", " f+0x1/0x2", " kmain+0x3/0x4", "x"]
            .map(String::from)
            .to_vec();
        assert!(find_block(&lines, &["Call Trace:", " f+*", " kmain+*"]));
        assert!(find_block(&lines, &[" kmain+*", "x"]));
        assert!(find_block(&lines, &[]));
        // Out of order, with a gap, or past the end.
        assert!(!find_block(&lines, &[" kmain+*", " f+*"]));
        assert!(!find_block(&lines, &["Call Trace:", " kmain+*"]));
        assert!(!find_block(&lines, &["x", "y"]));
    }
}
