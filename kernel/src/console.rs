//! The serial console on COM1 and the `log` backend that writes to it.
//!
//! Every line is prefixed with the time since the CPU came out of reset
//! (from the TSC, see [`crate::time`]) and the level, Linux-style:
//! `[    0.004211] INFO  handoff: ...`.

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550Tty};

const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);
static LOGGER: Logger = Logger;

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

/// Writes to the console, also when the lock is held by the interrupted
/// code (a fault or panic while printing). Only for paths that stop the
/// machine afterwards.
pub fn emergency_print(args: fmt::Arguments<'_>) {
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
        if let Some(tty) = SERIAL.lock().as_mut() {
            tty.write_str(s)?;
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
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        if let Some(tty) = SERIAL.lock().as_mut() {
            let _ = writeln!(tty, "[{secs:5}.{micros:06}] {level} {}", record.args());
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
