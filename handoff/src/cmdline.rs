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
    /// The values `loglevel=` takes, for messages.
    pub const VALID: &'static str = "off, error, warn, info, debug, trace, 0-5";

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
    /// The firmware faults in its first runtime call: the page of GetTime's
    /// entry is left unmapped in the EFI address space (`inject=efi-fault`);
    /// the fault must be contained and runtime services switched off.
    EfiFault,
    /// The firmware's memory attributes table is ignored
    /// (`inject=efi-no-mat`): the window's permissions come from the
    /// runtime images' PE/COFF headers.
    EfiNoMat,
    /// A free variable MTRR is set to uncached over 1 MiB of usable RAM
    /// half-way into a 2 MiB page (`inject=mtrr-uc`): the physmap must cut
    /// its large pages there.
    MtrrUc,
    /// As [`MtrrUc`](Self::MtrrUc), write-through (`inject=mtrr-wt`).
    MtrrWt,
    /// A conventional-memory descriptor of the EFI map allows uncached
    /// only, not write-back (`inject=efi-uc-ram`): the physmap maps it
    /// uncached, cut from its neighbours.
    EfiUcRam,
    /// 256 MiB of usable RAM, aligned, become ACPI NVS in Limine's memory
    /// map (`inject=reserved-256m`, BIOS boots): reserved RAM whose
    /// descriptors fill a 2 MiB vmemmap page, which the kernel backs with
    /// one.
    Reserved256M,
}

impl Inject {
    /// The values `inject=` takes, for messages.
    pub const VALID: &'static str = "overlap, truncate, no-efi-map, desc-size, svam-version, \
         lower-half, efi-fault, efi-no-mat, mtrr-uc, mtrr-wt, efi-uc-ram, reserved-256m";

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "overlap" => Inject::Overlap,
            "truncate" => Inject::Truncate,
            "no-efi-map" => Inject::NoEfiMap,
            "desc-size" => Inject::DescSize,
            "svam-version" => Inject::SvamVersion,
            "lower-half" => Inject::LowerHalf,
            "efi-fault" => Inject::EfiFault,
            "efi-no-mat" => Inject::EfiNoMat,
            "mtrr-uc" => Inject::MtrrUc,
            "mtrr-wt" => Inject::MtrrWt,
            "efi-uc-ram" => Inject::EfiUcRam,
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
    /// (`fault=heap-frames`; the heap reserves more virtual space than
    /// there is RAM).
    HeapOutOfFrames,
    /// Read address 0 from inside the console, halfway through writing a
    /// log line with its locks held (`fault=console`): the report must
    /// still reach every console.
    InConsole,
}

impl Fault {
    /// The values `fault=` takes, for messages.
    pub const VALID: &'static str = "null, rodata, nx, stack-overflow, vmalloc-stack-overflow, \
                                     ud, heap-oom, heap-frames, console";

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
            "console" => Fault::InConsole,
            _ => return None,
        })
    }
}

/// The consoles that get the log (`console=`). As in Linux, every
/// console named gets it, and only those; `console=` may repeat. Without
/// any, the log goes to the serial port and to the screen where there is
/// a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consoles {
    /// COM1: `console=serial`, or Linux's `ttyS0` (with or without
    /// `,115200n8`-style settings, which baton ignores: it always runs at
    /// 115200 8N1).
    pub serial: bool,
    /// The framebuffer: `console=fb`, or Linux's `tty0`.
    pub screen: bool,
    /// Whether `console=` chose them, rather than the default.
    pub named: bool,
}

impl Consoles {
    /// Both, when no `console=` is given.
    pub const DEFAULT: Consoles = Consoles {
        serial: true,
        screen: true,
        named: false,
    };

    /// The values `console=` takes, for messages.
    pub const VALID: &'static str = "serial (or ttyS0), fb (or tty0)";

    fn parse(value: &str) -> Option<Token<'_>> {
        match value {
            "serial" | "ttyS0" => Some(Token::Console(true)),
            "fb" | "tty0" => Some(Token::Console(false)),
            v if v.starts_with("ttyS0,") => Some(Token::Console(true)),
            _ => None,
        }
    }
}

/// The font sizes of the screen console (`fbcon=font:<size>`), the heights
/// of its font's cells in pixels.
pub const FONT_SIZES: [u16; 4] = [16, 20, 24, 32];

/// The values `fbcon=` takes, for messages.
pub const FBCON_VALID: &str = "font:16, font:20, font:24, font:32";

/// Parses `fbcon=`'s value: `font:<size>`.
fn parse_fbcon(value: &str) -> Option<Token<'_>> {
    let size = match value.strip_prefix("font:")? {
        "16" => 16,
        "20" => 20,
        "24" => 24,
        "32" => 32,
        _ => return None,
    };
    Some(Token::Font(size))
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
    /// `nokaslr`: Linux's fixed bases for the physmap, vmalloc and the
    /// vmemmap instead of randomised ones (for debugging, and to compare
    /// with Linux's documented layout).
    pub nokaslr: bool,
    /// `inject=`: damage to the boot data (honoured in test runs only).
    pub inject: Option<Inject>,
    /// `fault=`: a fault to provoke (honoured in test runs only).
    pub fault: Option<Fault>,
    /// `console=`: where the log goes.
    pub consoles: Consoles,
    /// `fbcon=font:<size>`: the screen console's font size (one of
    /// [`FONT_SIZES`]); chosen from the screen's size when not given.
    pub font: Option<u16>,
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
        /// The values it takes.
        valid: &'static str,
    },
    /// A flag option given a value (`test=1`).
    UnexpectedValue(&'a str),
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unknown(tok) => write!(f, "unknown option `{tok}` ignored"),
            Problem::BadValue {
                option,
                value,
                valid,
            } => write!(
                f,
                "bad value `{value}` for `{option}=` ignored; valid: {valid}"
            ),
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
    /// `console=`: the serial port (`true`) or the screen.
    Console(bool),
    /// `fbcon=font:`.
    Font(u16),
    Problem(Problem<'a>),
}

fn classify(tok: &str) -> Token<'_> {
    let (name, value) = match tok.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (tok, None),
    };
    let bad = |valid| {
        Token::Problem(Problem::BadValue {
            option: name,
            value: value.unwrap_or(""),
            valid,
        })
    };
    let flag: fn(&mut Options) = match name {
        "inject" => {
            return value
                .and_then(Inject::parse)
                .map_or_else(|| bad(Inject::VALID), Token::Inject);
        }
        "fault" => {
            return value
                .and_then(Fault::parse)
                .map_or_else(|| bad(Fault::VALID), Token::Fault);
        }
        "loglevel" => {
            return value
                .and_then(LogLevel::parse)
                .map_or_else(|| bad(LogLevel::VALID), Token::LogLevel);
        }
        "console" => {
            return value
                .and_then(Consoles::parse)
                .unwrap_or_else(|| bad(Consoles::VALID));
        }
        "fbcon" => {
            return value
                .and_then(parse_fbcon)
                .unwrap_or_else(|| bad(FBCON_VALID));
        }
        "test" => |o| o.test = true,
        "poweroff" => |o| o.poweroff = true,
        "reboot" => |o| o.reboot = true,
        "ptdump" => |o| o.ptdump = true,
        "nokaslr" => |o| o.nokaslr = true,
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
            nokaslr: false,
            inject: None,
            fault: None,
            consoles: Consoles::DEFAULT,
            font: None,
        };
        for tok in text.split_ascii_whitespace() {
            match classify(tok) {
                Token::Flag(set) => set(&mut options),
                Token::LogLevel(level) => options.loglevel = Some(level),
                Token::Inject(inject) => options.inject = Some(inject),
                Token::Fault(fault) => options.fault = Some(fault),
                Token::Console(serial) => {
                    let c = &mut options.consoles;
                    if !c.named {
                        *c = Consoles {
                            serial: false,
                            screen: false,
                            named: true,
                        };
                    }
                    if serial {
                        c.serial = true;
                    } else {
                        c.screen = true;
                    }
                }
                Token::Font(size) => options.font = Some(size),
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
                nokaslr: false,
                inject: None,
                fault: None,
                consoles: Consoles::DEFAULT,
                font: None,
            }
        );
        assert_eq!(c.problems().count(), 0);
    }

    #[test]
    fn flags_and_loglevel() {
        let c = Cmdline::parse("  test\tloglevel=debug   poweroff ptdump ");
        let o = c.options();
        assert!(o.test && o.poweroff && o.ptdump && !o.reboot && !o.nokaslr);
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
                    value: "loud",
                    valid: LogLevel::VALID,
                },
                Problem::UnexpectedValue("test=1"),
                Problem::BadValue {
                    option: "loglevel",
                    value: "",
                    valid: LogLevel::VALID,
                },
            ]
        );
        assert_eq!(problems[0].to_string(), "unknown option `quiet` ignored");
        assert_eq!(
            problems[1].to_string(),
            "bad value `loud` for `loglevel=` ignored; valid: off, error, warn, info, debug, \
             trace, 0-5"
        );
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
            ("efi-fault", Inject::EfiFault),
            ("efi-no-mat", Inject::EfiNoMat),
            ("mtrr-uc", Inject::MtrrUc),
            ("mtrr-wt", Inject::MtrrWt),
            ("efi-uc-ram", Inject::EfiUcRam),
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
            ("console", Fault::InConsole),
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
                    value: "everything",
                    valid: Inject::VALID,
                },
                Problem::BadValue {
                    option: "fault",
                    value: "",
                    valid: Fault::VALID,
                },
            ]
        );
    }

    #[test]
    fn every_listed_value_parses() {
        let list = |valid: &'static str| valid.split(", ").map(|v| v.to_owned());
        for v in list(Fault::VALID) {
            assert!(Fault::parse(&v).is_some(), "fault={v}");
        }
        for v in list(Inject::VALID) {
            assert!(Inject::parse(&v).is_some(), "inject={v}");
        }
        for v in list(FBCON_VALID) {
            assert!(parse_fbcon(&v).is_some(), "fbcon={v}");
        }
        for v in ["off", "error", "warn", "info", "debug", "trace", "0", "5"] {
            assert!(LogLevel::VALID.contains(v.chars().next().unwrap()));
            assert!(LogLevel::parse(v).is_some());
        }
    }

    #[test]
    fn every_value_is_listed() {
        let listed = |valid: &'static str| valid.split(", ").collect::<Vec<_>>();
        let injects = listed(Inject::VALID);
        for i in [
            Inject::Overlap,
            Inject::Truncate,
            Inject::NoEfiMap,
            Inject::DescSize,
            Inject::SvamVersion,
            Inject::LowerHalf,
            Inject::EfiFault,
            Inject::EfiNoMat,
            Inject::MtrrUc,
            Inject::MtrrWt,
            Inject::EfiUcRam,
            Inject::Reserved256M,
        ] {
            assert!(injects.iter().any(|v| Inject::parse(v) == Some(i)), "{i:?}");
        }
        let faults = listed(Fault::VALID);
        for f in [
            Fault::NullRead,
            Fault::RodataWrite,
            Fault::PhysmapExec,
            Fault::StackOverflow,
            Fault::VmallocStackOverflow,
            Fault::InvalidOpcode,
            Fault::HeapOutOfMemory,
            Fault::HeapOutOfFrames,
            Fault::InConsole,
        ] {
            assert!(faults.iter().any(|v| Fault::parse(v) == Some(f)), "{f:?}");
        }
    }

    #[test]
    fn both_consoles_by_default() {
        let c = Cmdline::parse("test loglevel=debug").options().consoles;
        assert_eq!(c, Consoles::DEFAULT);
        assert!(c.serial && c.screen && !c.named);
    }

    #[test]
    fn named_consoles_accumulate_and_only_they_get_the_log() {
        let only = |line| Cmdline::parse(line).options().consoles;
        let c = only("console=serial");
        assert_eq!((c.serial, c.screen, c.named), (true, false, true));
        let c = only("console=fb");
        assert_eq!((c.serial, c.screen, c.named), (false, true, true));
        let c = only("console=fb test console=serial");
        assert_eq!((c.serial, c.screen, c.named), (true, true, true));
        // Linux's names, settings after the comma included.
        let c = only("console=ttyS0,115200n8");
        assert_eq!((c.serial, c.screen), (true, false));
        let c = only("console=tty0 console=ttyS0");
        assert_eq!((c.serial, c.screen), (true, true));
        // A console twice is still one.
        let c = only("console=fb console=fb");
        assert_eq!((c.serial, c.screen), (false, true));
    }

    #[test]
    fn bad_console_values_are_one_problem_each_listing_the_valid_ones() {
        let c = Cmdline::parse("console=vga console=ttyS1 console console=fb");
        // The bad ones are ignored; the good one still counts.
        let consoles = c.options().consoles;
        assert_eq!((consoles.serial, consoles.screen), (false, true));
        let problems: Vec<_> = c.problems().collect();
        assert_eq!(problems.len(), 3);
        assert_eq!(
            problems[0].to_string(),
            "bad value `vga` for `console=` ignored; valid: serial (or ttyS0), fb (or tty0)"
        );
        assert_eq!(
            problems[1],
            Problem::BadValue {
                option: "console",
                value: "ttyS1",
                valid: Consoles::VALID,
            }
        );
        // Only bad values: no console named, so the default stays.
        let c = Cmdline::parse("console=lp0");
        assert_eq!(c.options().consoles, Consoles::DEFAULT);
    }

    #[test]
    fn font_sizes() {
        for (line, size) in [
            ("fbcon=font:16", Some(16)),
            ("fbcon=font:32", Some(32)),
            ("fbcon=font:20 fbcon=font:24", Some(24)),
            ("", None),
        ] {
            assert_eq!(Cmdline::parse(line).options().font, size, "{line}");
        }
        for bad in [
            "fbcon=font:18",
            "fbcon=font:",
            "fbcon=16",
            "fbcon=font:+16",
            "fbcon",
        ] {
            let c = Cmdline::parse(bad);
            assert_eq!(c.options().font, None, "{bad}");
            let problems: Vec<_> = c.problems().collect();
            assert_eq!(problems.len(), 1, "{bad}");
            assert!(
                problems[0]
                    .to_string()
                    .ends_with("ignored; valid: font:16, font:20, font:24, font:32"),
                "{}",
                problems[0]
            );
        }
    }

    #[test]
    fn the_font_sizes_are_the_consoles() {
        let sizes: Vec<u16> = fbcon::FontSize::ALL
            .iter()
            .map(|f| f.height() as u16)
            .collect();
        assert_eq!(sizes, FONT_SIZES);
        for size in FONT_SIZES {
            assert!(FBCON_VALID.contains(&std::format!("font:{size}")));
        }
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
    fn nokaslr_is_a_flag() {
        assert!(Cmdline::parse("test nokaslr").options().nokaslr);
        assert!(!Cmdline::parse("test kaslr").options().nokaslr);
        let c = Cmdline::parse("nokaslr=1");
        assert!(!c.options().nokaslr);
        assert_eq!(
            c.problems().collect::<Vec<_>>(),
            vec![Problem::UnexpectedValue("nokaslr=1")]
        );
    }

    #[test]
    fn log_levels_are_ordered_by_verbosity() {
        assert!(LogLevel::Off < LogLevel::Error);
        assert!(LogLevel::Debug < LogLevel::Trace);
    }
}
