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
    /// Parses `off|error|warn|info|debug|trace` or the digits `0` to `5`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "off" | "0" => Self::Off,
            "error" | "1" => Self::Error,
            "warn" | "2" => Self::Warn,
            "info" | "3" => Self::Info,
            "debug" | "4" => Self::Debug,
            "trace" | "5" => Self::Trace,
            _ => return None,
        })
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
    /// 256 MiB of usable RAM, aligned, become ACPI NVS in Limine's memory
    /// map (`inject=reserved-256m`, BIOS boots): reserved RAM whose
    /// descriptors fill a 2 MiB vmemmap page, which the kernel backs with
    /// one.
    Reserved256M,
}

impl Inject {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "overlap" => Inject::Overlap,
            "truncate" => Inject::Truncate,
            "no-efi-map" => Inject::NoEfiMap,
            "desc-size" => Inject::DescSize,
            "svam-version" => Inject::SvamVersion,
            "lower-half" => Inject::LowerHalf,
            "reserved-256m" => Inject::Reserved256M,
            _ => return None,
        })
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
    /// (`fault=heap-frames`; within the heap's reservation under a small
    /// `-m`).
    HeapOutOfFrames,
}

impl Fault {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "null" => Fault::NullRead,
            "rodata" => Fault::RodataWrite,
            "nx" => Fault::PhysmapExec,
            "stack-overflow" => Fault::StackOverflow,
            "vmalloc-stack-overflow" => Fault::VmallocStackOverflow,
            "ud" => Fault::InvalidOpcode,
            "heap-oom" => Fault::HeapOutOfMemory,
            "heap-frames" => Fault::HeapOutOfFrames,
            _ => return None,
        })
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
                write!(f, "bad value `{value}` for `{option}=` ignored")
            }
            Problem::UnexpectedValue(tok) => {
                write!(f, "option `{tok}` takes no value; ignored")
            }
        }
    }
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
            ("reserved-256m", Inject::Reserved256M),
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
    fn log_levels_are_ordered_by_verbosity() {
        assert!(LogLevel::Off < LogLevel::Error);
        assert!(LogLevel::Debug < LogLevel::Trace);
    }
}
