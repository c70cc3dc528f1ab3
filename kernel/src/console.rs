//! The consoles: COM1 and the screen (`fb`), and the `log` backend that
//! writes every line to each (`console=` picks them; both by default).
//!
//! Every line is prefixed with the time since the CPU came out of reset
//! (from the TSC, see [`crate::time`]) and the level, Linux-style:
//! `[    0.004211] INFO  handoff: ...`. The screen gets the same text, its
//! level shown by colour, drawn before the serial port gets it.

pub mod fb;
pub mod tests;

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use log::{LevelFilter, Log, Metadata, Record, info};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550Tty};

const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);
static LOGGER: Logger = Logger;
/// Whether the serial port gets the log (`console=`); it also does
/// whenever the screen does not draw ([`serial_wanted`]).
static SERIAL_ON: AtomicBool = AtomicBool::new(true);

/// Brings up COM1 at 115200 8N1 and installs the logger at `info`.
/// Without a working UART the kernel runs on silently.
pub fn init() {
    let config = Config {
        baud_rate: BaudRate::Baud115200,
        ..Config::DEFAULT
    };
    // SAFETY: COM1 is the standard PC serial port; nothing else in baton
    // touches ports 0x3f8-0x3ff, and the device lives as long as the kernel.
    let tty = unsafe { Uart16550Tty::new_port(COM1, config) };
    if let Ok(tty) = tty {
        *SERIAL.lock() = Some(tty);
    }
    // Only fails if a logger is already set, which would be a bug here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Picks the consoles `console=` names and brings up the screen console
/// (in font size `font`, if given); call before the first log line. With
/// the screen alone asked for but no screen to be had, the serial port
/// keeps the log. `report` logs the outcome.
pub fn configure(
    consoles: handoff::cmdline::Consoles,
    font: Option<u16>,
    bootloader_maps: fb::MapsCheck,
) {
    let screen = consoles.screen && matches!(fb::init(font, bootloader_maps), fb::Setup::Drawing);
    // The serial port too while the screen waits for baton's window.
    SERIAL_ON.store(
        consoles.serial || !screen || !fb::draws_before_switch(),
        Ordering::Relaxed,
    );
    *CONSOLES.lock() = Some((consoles, screen));
}

static CONSOLES: Mutex<Option<(handoff::cmdline::Consoles, bool)>> = Mutex::new(None);

/// Whether the serial port has the whole log: `console=` names it, or the
/// screen is not up before the switch.
fn serial_asked() -> bool {
    SERIAL_ON.load(Ordering::Relaxed) || !fb::draws()
}

/// Whether the command line left the screen among the consoles.
pub fn screen_asked() -> bool {
    CONSOLES.lock().is_some_and(|(asked, _)| asked.screen)
}

/// Logs which consoles get the log, and the screen console's setup.
pub fn report() {
    let Some((asked, screen)) = *CONSOLES.lock() else {
        return;
    };
    let serial = SERIAL_ON.load(Ordering::Relaxed);
    let source = if asked.named {
        "as console= asks"
    } else {
        "by default"
    };
    match (serial, screen) {
        (true, true) => info!("console: the log goes to COM1 and the screen, {source}"),
        (false, true) => info!("console: the log goes to the screen only, {source}"),
        (true, false) if asked.screen => {
            info!("console: the log goes to COM1 only: the screen console is not available")
        }
        _ => info!("console: the log goes to COM1 only, {source}"),
    }
    fb::report_setup();
}

/// Writes to the consoles, also when a lock is held by the interrupted
/// code (a fault or panic while printing). Only for paths that stop the
/// machine afterwards.
pub fn emergency_print(args: fmt::Arguments<'_>) {
    // The screen first: whether it drew decides for the serial port.
    if !fb::emergency(args) || SERIAL_ON.load(Ordering::Relaxed) {
        emergency_serial(args);
    }
}

/// Whether the serial port gets what is written now: when `console=`
/// names it, and whenever the screen does not draw (given up, paused, or
/// without a window since the CR3 switch), so that no line is lost.
pub(crate) fn serial_wanted() -> bool {
    SERIAL_ON.load(Ordering::Relaxed) || !fb::draws()
}

fn emergency_serial(args: fmt::Arguments<'_>) {
    let mut guard = match SERIAL.try_lock() {
        Some(guard) => guard,
        None => {
            // SAFETY: the fatal paths stop every other CPU first
            // (`smp::stop_others`), so the holder is the code this fault or
            // panic interrupted on this CPU, which never resumes, or a CPU
            // just stopped mid-print (its line is cut short, nothing else).
            unsafe { SERIAL.force_unlock() };
            SERIAL.lock()
        }
    };
    if let Some(tty) = guard.as_mut() {
        let _ = tty.write_fmt(args);
    }
}

/// A [`fmt::Write`] straight to the console, without log prefixes (for
/// multi-line reports such as the ptdump).
pub struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut serial = serial_wanted().then(|| SERIAL.lock());
        let mut screen = fb::lock();
        if let Some(screen) = screen.as_mut() {
            screen.set_style(fbcon::Style::Plain);
        }
        Tee {
            serial: serial.as_mut().and_then(|s| s.as_mut()),
            screen: screen.as_mut(),
        }
        .write_str(s)
    }
}

/// Both consoles at once: the screen first, so that a line on the serial
/// port is on the screen already.
struct Tee<'a> {
    serial: Option<&'a mut Uart16550Tty<PioBackend>>,
    screen: Option<&'a mut fb::Lock>,
}

impl Write for Tee<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(screen) = self.screen.as_mut() {
            screen.write_str(s)?;
        }
        if let Some(serial) = self.serial.as_mut() {
            serial.write_str(s)?;
        }
        Ok(())
    }
}

/// A [`fmt::Write`] over [`emergency_print`], for fault and panic reports.
pub struct EmergencyWriter;

impl Write for EmergencyWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        emergency_print(format_args!("{s}"));
        Ok(())
    }
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (secs, micros) = crate::time::since_reset();
        let level = match record.level() {
            log::Level::Error => fbcon::Level::Error,
            log::Level::Warn => fbcon::Level::Warn,
            log::Level::Info => fbcon::Level::Info,
            log::Level::Debug => fbcon::Level::Debug,
            log::Level::Trace => fbcon::Level::Trace,
        };
        let mut serial = serial_wanted().then(|| SERIAL.lock());
        let mut screen = fb::lock();
        if let Some(screen) = screen.as_mut() {
            screen.set_style(fbcon::Style::Time);
        }
        let mut out = Tee {
            serial: serial.as_mut().and_then(|s| s.as_mut()),
            screen: screen.as_mut(),
        };
        let _ = write!(out, "[{secs:5}.{micros:06}] ");
        if let Some(screen) = out.screen.as_mut() {
            screen.set_style(fbcon::Style::Level(level));
        }
        let _ = writeln!(out, "{} {}", level.word(), record.args());
        if let Some(screen) = screen.as_mut() {
            screen.record();
        }
    }

    fn flush(&self) {}
}

/// Maps the command line's level onto the `log` facade.
pub fn set_level(level: handoff::cmdline::LogLevel) {
    use handoff::cmdline::LogLevel as L;
    log::set_max_level(match level {
        L::Off => LevelFilter::Off,
        L::Error => LevelFilter::Error,
        L::Warn => LevelFilter::Warn,
        L::Info => LevelFilter::Info,
        L::Debug => LevelFilter::Debug,
        L::Trace => LevelFilter::Trace,
    });
}
