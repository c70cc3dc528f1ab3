//! The kernel command line.
//!
//! Options are separated by ASCII whitespace. Parsing never fails: an
//! unknown option or a bad value is reported through [`Cmdline::problems`]
//! for the kernel to log, and the rest of the line still takes effect.

use core::fmt;

/// How much the kernel logs (`loglevel=`), most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing at all.
    Off,
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The normal boot log.
    Info,
    /// Detail for debugging the handoff.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The levels by name, most to least severe; each also goes by its
    /// position, `0` to `5`.
    const NAMES: [&'static str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    const ALL: [LogLevel; 6] = [
        Self::Off,
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// Parses `off|error|warn|info|debug|trace` or the digits `0` to `5`.
    pub fn parse(value: &str) -> Option<Self> {
        let digit = match value.as_bytes() {
            [d @ b'0'..=b'9'] => Some(usize::from(d - b'0')),
            _ => None,
        };
        let at = digit.or_else(|| Self::NAMES.iter().position(|n| *n == value))?;
        Self::ALL.get(at).copied()
    }
}

/// Damage done to baton's copy of the boot data before the handoff, in
/// test runs (`inject=`), to check that each is caught with a clear error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// Two entries of the memory map overlap (`inject=overlap`).
    Overlap,
    /// The EFI memory map loses part of its last descriptor
    /// (`inject=truncate`).
    Truncate,
    /// The EFI memory map is missing on a UEFI boot (`inject=no-efi-map`).
    NoEfiMap,
    /// The EFI memory map's `desc_size` is absurd (`inject=desc-size`).
    DescSize,
    /// SetVirtualAddressMap gets a descriptor version the firmware does
    /// not know, so that it fails (`inject=svam-version`): runtime
    /// services must end up unavailable and the boot go on.
    SvamVersion,
    /// baton's new tables get a present lower-half top-level entry before
    /// the checks that precede the switch (`inject=lower-half`).
    LowerHalf,
}

impl Inject {
    const NAMES: [&'static str; 6] = [
        "overlap",
        "truncate",
        "no-efi-map",
        "desc-size",
        "svam-version",
        "lower-half",
    ];
    const ALL: [Inject; 6] = [
        Inject::Overlap,
        Inject::Truncate,
        Inject::NoEfiMap,
        Inject::DescSize,
        Inject::SvamVersion,
        Inject::LowerHalf,
    ];

    fn parse(value: &str) -> Option<Self> {
        Some(Self::ALL[Self::NAMES.iter().position(|n| *n == value)?])
    }
}

/// A fault provoked on purpose after boot, in test runs (`fault=`), to
/// check that it is reported exactly and stops the machine cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read address 0 (`fault=null`).
    NullRead,
    /// Write to `.rodata` (`fault=rodata`).
    RodataWrite,
    /// Jump into the physmap, which is not executable (`fault=nx`).
    PhysmapExec,
    /// Recurse until the boot stack's guard page (`fault=stack-overflow`).
    StackOverflow,
    /// Recurse on a vmalloc stack until its guard page
    /// (`fault=vmalloc-stack-overflow`).
    VmallocStackOverflow,
    /// Execute `ud2` (`fault=ud`).
    InvalidOpcode,
    /// Ask the heap for more than it can ever hold (`fault=heap-oom`).
    HeapOutOfMemory,
    /// Grow the heap 1 MiB at a time until physical memory runs out
    /// (`fault=heap-frames`; the heap reserves more virtual space than
    /// there is RAM).
    HeapOutOfFrames,
}

impl Fault {
    const NAMES: [&'static str; 8] = [
        "null",
        "rodata",
        "nx",
        "stack-overflow",
        "vmalloc-stack-overflow",
        "ud",
        "heap-oom",
        "heap-frames",
    ];
    const ALL: [Fault; 8] = [
        Fault::NullRead,
        Fault::RodataWrite,
        Fault::PhysmapExec,
        Fault::StackOverflow,
        Fault::VmallocStackOverflow,
        Fault::InvalidOpcode,
        Fault::HeapOutOfMemory,
        Fault::HeapOutOfFrames,
    ];

    fn parse(value: &str) -> Option<Self> {
        Some(Self::ALL[Self::NAMES.iter().position(|n| *n == value)?])
    }
}

/// The values an option accepts, as its warning lists them.
struct Valid {
    names: &'static [&'static str],
    also: &'static str,
}

impl Valid {
    fn of(option: &str) -> Option<Valid> {
        let (names, also): (&'static [&'static str], _) = match option {
            "loglevel" => (&LogLevel::NAMES, " (or 0 to 5)"),
            "inject" => (&Inject::NAMES, ""),
            "fault" => (&Fault::NAMES, ""),
            _ => return None,
        };
        Some(Valid { names, also })
    }
}

impl fmt::Display for Valid {
    /// `a, b, c` and what else is accepted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name}")?;
        }
        f.write_str(self.also)
    }
}

/// The options baton understands, parsed from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `loglevel=`: the log level, when given and valid.
    pub loglevel: Option<LogLevel>,
    /// `test`: run the in-kernel self-tests, then exit with their verdict.
    pub test: bool,
    /// `poweroff`: end the run once boot is complete.
    pub poweroff: bool,
    /// `reboot`: reset the machine once boot is complete.
    pub reboot: bool,
    /// `ptdump`: print baton's page tables after the switch.
    pub ptdump: bool,
    /// `inject=`: damage to the boot data (honoured in test runs only).
    pub inject: Option<Inject>,
    /// `fault=`: a fault to provoke (honoured in test runs only).
    pub fault: Option<Fault>,
}

/// Something on the command line baton could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem<'a> {
    /// An option baton does not know.
    Unknown(&'a str),
    /// A known option with a value it does not accept.
    BadValue {
        /// The option, without `=`.
        option: &'a str,
        /// The value given.
        value: &'a str,
    },
    /// A flag option given a value (`test=1`).
    UnexpectedValue(&'a str),
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unknown(tok) => write!(f, "unknown option `{tok}` ignored"),
            Problem::BadValue { option, value } => {
                write!(f, "bad value `{value}` for `{option}=` ignored")?;
                match Valid::of(option) {
                    Some(valid) => write!(f, "; valid: {valid}"),
                    None => Ok(()),
                }
            }
            Problem::UnexpectedValue(tok) => {
                write!(f, "option `{tok}` takes no value; ignored")
            }
        }
    }
}

/// Writes `bytes` (a command line as the bootloader hands it over) to `out`
/// as text, each invalid UTF-8 sequence replaced by U+FFFD, so that the
/// valid options around it still parse. Returns the byte offset of the
/// first invalid sequence, if any, for the one warning about it.
pub fn decode_lossy(bytes: &[u8], out: &mut impl fmt::Write) -> Option<usize> {
    let mut first_bad = None;
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        let _ = out.write_str(chunk.valid());
        at += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            first_bad.get_or_insert(at);
            let _ = out.write_char(char::REPLACEMENT_CHARACTER);
            at += chunk.invalid().len();
        }
    }
    first_bad
}

/// A parsed command line: the options and the text they came from.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a> {
    text: &'a str,
    options: Options,
}

/// One token, classified.
enum Token<'a> {
    Flag(fn(&mut Options)),
    LogLevel(LogLevel),
    Inject(Inject),
    Fault(Fault),
    Problem(Problem<'a>),
}

fn classify(tok: &str) -> Token<'_> {
    let (name, value) = match tok.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (tok, None),
    };
    let bad = || {
        Token::Problem(Problem::BadValue {
            option: name,
            value: value.unwrap_or(""),
        })
    };
    let flag: fn(&mut Options) = match name {
        "inject" => {
            return value
                .and_then(Inject::parse)
                .map_or_else(bad, Token::Inject);
        }
        "fault" => return value.and_then(Fault::parse).map_or_else(bad, Token::Fault),
        "loglevel" => {
            return match value.and_then(LogLevel::parse) {
                Some(level) => Token::LogLevel(level),
                None => Token::Problem(Problem::BadValue {
                    option: name,
                    value: value.unwrap_or(""),
                }),
            };
        }
        "test" => |o| o.test = true,
        "poweroff" => |o| o.poweroff = true,
        "reboot" => |o| o.reboot = true,
        "ptdump" => |o| o.ptdump = true,
        _ => return Token::Problem(Problem::Unknown(tok)),
    };
    match value {
        None => Token::Flag(flag),
        Some(_) => Token::Problem(Problem::UnexpectedValue(tok)),
    }
}

impl<'a> Cmdline<'a> {
    /// Parses `text`. Later options override earlier ones.
    pub fn parse(text: &'a str) -> Self {
        let mut options = Options {
            loglevel: None,
            test: false,
            poweroff: false,
            reboot: false,
            ptdump: false,
            inject: None,
            fault: None,
        };
        for tok in text.split_ascii_whitespace() {
            match classify(tok) {
                Token::Flag(set) => set(&mut options),
                Token::LogLevel(level) => options.loglevel = Some(level),
                Token::Inject(inject) => options.inject = Some(inject),
                Token::Fault(fault) => options.fault = Some(fault),
                Token::Problem(_) => {}
            }
        }
        Self { text, options }
    }

    /// The options in effect.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The text as given.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Every token that was ignored, in order, with the reason.
    pub fn problems(&self) -> impl Iterator<Item = Problem<'a>> + 'a {
        self.text
            .split_ascii_whitespace()
            .filter_map(|tok| match classify(tok) {
                Token::Problem(p) => Some(p),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_line_is_all_defaults() {
        let c = Cmdline::parse("");
        assert_eq!(
            c.options(),
            Options {
                loglevel: None,
                test: false,
                poweroff: false,
                reboot: false,
                ptdump: false,
                inject: None,
                fault: None,
            }
        );
        assert_eq!(c.problems().count(), 0);
    }

    #[test]
    fn flags_and_loglevel() {
        let c = Cmdline::parse("  test\tloglevel=debug   poweroff ptdump ");
        let o = c.options();
        assert!(o.test && o.poweroff && o.ptdump && !o.reboot);
        assert_eq!(o.loglevel, Some(LogLevel::Debug));
        assert_eq!(c.problems().count(), 0);
    }

    #[test]
    fn loglevel_digits_and_last_wins() {
        assert_eq!(
            Cmdline::parse("loglevel=1 loglevel=5").options().loglevel,
            Some(LogLevel::Trace)
        );
        assert_eq!(LogLevel::parse("0"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse("6"), None);
    }

    #[test]
    fn unknown_and_bad_values_are_reported_not_fatal() {
        let c = Cmdline::parse("quiet loglevel=loud test=1 poweroff loglevel");
        assert!(c.options().poweroff);
        assert!(!c.options().test);
        assert_eq!(c.options().loglevel, None);
        let problems: Vec<_> = c.problems().collect();
        assert_eq!(
            problems,
            vec![
                Problem::Unknown("quiet"),
                Problem::BadValue {
                    option: "loglevel",
                    value: "loud"
                },
                Problem::UnexpectedValue("test=1"),
                Problem::BadValue {
                    option: "loglevel",
                    value: ""
                },
            ]
        );
        assert_eq!(problems[0].to_string(), "unknown option `quiet` ignored");
        assert_eq!(
            problems[1].to_string(),
            "bad value `loud` for `loglevel=` ignored; valid: off, error, warn, info, debug, \
             trace (or 0 to 5)"
        );
    }

    #[test]
    fn bad_values_list_every_valid_one() {
        for (line, option, names) in [
            ("loglevel=bogus", "loglevel", &LogLevel::NAMES[..]),
            ("inject=bogus", "inject", &Inject::NAMES[..]),
            ("fault=bogus", "fault", &Fault::NAMES[..]),
        ] {
            let problem = Cmdline::parse(line).problems().next().unwrap();
            let text = problem.to_string();
            let expected = format!("bad value `bogus` for `{option}=` ignored; valid: ");
            assert!(text.starts_with(&expected), "{text}");
            let listed: Vec<&str> = text[expected.len()..]
                .trim_end_matches(" (or 0 to 5)")
                .split(", ")
                .collect();
            assert_eq!(listed, names, "{text}");
            // Each listed value is accepted.
            for name in listed {
                let line = format!("{option}={name}");
                assert_eq!(Cmdline::parse(&line).problems().count(), 0, "{line}");
            }
        }
        let digits = (0..6).map(|d| LogLevel::parse(&d.to_string()));
        assert!(digits.eq(LogLevel::ALL.map(Some)));
        assert_eq!(LogLevel::parse("00"), None);
    }

    #[test]
    fn inject_and_fault_options() {
        let c = Cmdline::parse("test inject=desc-size fault=stack-overflow");
        assert_eq!(c.options().inject, Some(Inject::DescSize));
        assert_eq!(c.options().fault, Some(Fault::StackOverflow));
        for (v, i) in [
            ("overlap", Inject::Overlap),
            ("truncate", Inject::Truncate),
            ("no-efi-map", Inject::NoEfiMap),
            ("svam-version", Inject::SvamVersion),
            ("lower-half", Inject::LowerHalf),
        ] {
            assert_eq!(Inject::parse(v), Some(i));
        }
        for (v, f) in [
            ("null", Fault::NullRead),
            ("rodata", Fault::RodataWrite),
            ("nx", Fault::PhysmapExec),
            ("ud", Fault::InvalidOpcode),
            ("vmalloc-stack-overflow", Fault::VmallocStackOverflow),
            ("heap-oom", Fault::HeapOutOfMemory),
            ("heap-frames", Fault::HeapOutOfFrames),
        ] {
            assert_eq!(Fault::parse(v), Some(f));
        }
        let c = Cmdline::parse("inject=everything fault");
        assert_eq!(c.options().inject, None);
        assert_eq!(
            c.problems().collect::<Vec<_>>(),
            vec![
                Problem::BadValue {
                    option: "inject",
                    value: "everything"
                },
                Problem::BadValue {
                    option: "fault",
                    value: ""
                },
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_its_offset_given() {
        let mut text = String::new();
        let bad = decode_lossy(b"test caf\xe9 poweroff \xff\xfeloglevel=warn", &mut text);
        assert_eq!(bad, Some(8));
        assert_eq!(
            text,
            "test caf\u{fffd} poweroff \u{fffd}\u{fffd}loglevel=warn"
        );
        let c = Cmdline::parse(&text);
        assert!(c.options().test && c.options().poweroff);
        // The bytes glued to the option make it unknown, reported as such.
        assert_eq!(
            c.problems().collect::<Vec<_>>(),
            [
                Problem::Unknown("caf\u{fffd}"),
                Problem::Unknown("\u{fffd}\u{fffd}loglevel=warn")
            ]
        );
        let mut text = String::new();
        assert_eq!(decode_lossy("test é".as_bytes(), &mut text), None);
        assert_eq!(text, "test é");
        // A sequence cut short at the end.
        let mut text = String::new();
        assert_eq!(decode_lossy(b"ok \xe2\x82", &mut text), Some(3));
        assert_eq!(text, "ok \u{fffd}");
    }

    #[test]
    fn log_levels_are_ordered_by_verbosity() {
        assert!(LogLevel::Off < LogLevel::Error);
        assert!(LogLevel::Debug < LogLevel::Trace);
    }
}
