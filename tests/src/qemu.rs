//! Running one QEMU boot with a timeout and collecting its output.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited with this status.
    Exited(i32),
    /// QEMU was killed by a signal.
    Signalled,
    /// QEMU ran past the timeout and was killed.
    TimedOut,
    /// The runner stopped QEMU as the case asked (a line matched, or its
    /// deadline passed); says which.
    Stopped(String),
}

/// When the runner stops QEMU before it ends on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watch<'a> {
    /// Stop once a serial line matches one of these (see `check::matches`).
    pub stop_at: &'a [&'a str],
    /// Stop after this long.
    pub deadline: Option<Duration>,
}

impl Watch<'_> {
    /// Why QEMU should be stopped now, if it should.
    fn stop(&self, serial_log: &Path, elapsed: Duration) -> Option<String> {
        if !self.stop_at.is_empty() {
            let lines = crate::check::clean_lines(&fs::read(serial_log).unwrap_or_default());
            for pattern in self.stop_at {
                if crate::check::find(&lines, pattern).is_some() {
                    return Some(format!("a line matched \"{pattern}\""));
                }
            }
        }
        self.deadline
            .filter(|d| elapsed > *d)
            .map(|d| format!("its deadline of {} s passed", d.as_secs()))
    }
}

/// QEMU's trace point for a shutdown request (the guest powering off, not
/// resetting), written to the log `-D` names as
/// `qemu_system_shutdown_request reason=N`.
pub const SHUTDOWN_TRACE: &str = "qemu_system_shutdown_request";

/// QEMU's trace point for a command written to the keyboard controller
/// (port 0x64), written as `pckbd_kbd_write_command 0xNN`: 0xfe pulses
/// the reset line, the fallback baton uses where the firmware cannot
/// reset.
pub const KBC_COMMAND_TRACE: &str = "pckbd_kbd_write_command";

/// Whether QEMU's log shows the keyboard controller's reset command.
pub fn kbc_reset_in(qemu_log: &str) -> bool {
    qemu_log
        .lines()
        .any(|l| l.contains(KBC_COMMAND_TRACE) && l.trim_end().ends_with(" 0xfe"))
}

/// `reason=` of a shutdown the guest asked for (QEMU's
/// `SHUTDOWN_CAUSE_GUEST_SHUTDOWN`).
pub const GUEST_SHUTDOWN: &str = "qemu_system_shutdown_request reason=6";

/// Whether this QEMU writes the shutdown-request trace to its `-D` log
/// (it needs the `log` trace backend): a machine without devices is asked
/// to quit from its monitor, which is a shutdown request too.
pub fn shutdown_trace_works(scratch: &Path) -> bool {
    let _ = fs::create_dir_all(scratch);
    let log = scratch.join("qemu-trace-probe.log");
    let _ = fs::remove_file(&log);
    let child = Command::new("qemu-system-x86_64")
        .args(["-M", "none", "-display", "none", "-nodefaults"])
        .args(["-monitor", "stdio", "-trace", SHUTDOWN_TRACE, "-D"])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"quit\n");
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    fs::read_to_string(&log).is_ok_and(|l| l.contains(SHUTDOWN_TRACE))
}

/// The outcome of a boot: how it ended, the serial log and QEMU's own log.
pub struct Run {
    pub ending: Ending,
    pub serial: Vec<u8>,
    /// QEMU's reset log (`-d cpu_reset`): records triple faults, and the
    /// shutdown-request trace.
    pub qemu_log: String,
    /// QEMU's own error output.
    pub stderr: String,
    pub elapsed: Duration,
    /// With a [`Screendump`]: why the screen could not be read, if so.
    pub screendump: Option<Result<(), String>>,
}

/// Reading the screen at the end of a boot: once the serial log holds
/// `marker` as a whole line and every CPU has halted, the runner asks
/// QEMU's monitor for a screendump (PPM) into `ppm`, then ends QEMU.
#[derive(Debug, Clone, Copy)]
pub struct Screendump<'a> {
    pub marker: &'a str,
    pub ppm: &'a Path,
}

/// A connection to QEMU's human monitor.
struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    fn connect(path: &Path) -> Result<Monitor, String> {
        let stream =
            UnixStream::connect(path).map_err(|e| format!("monitor {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut m = Monitor { stream };
        m.until_prompt()?;
        Ok(m)
    }

    /// Everything up to the next `(qemu) ` prompt.
    fn until_prompt(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !out.ends_with(b"(qemu) ") {
            let n = self
                .stream
                .read(&mut buf)
                .map_err(|e| format!("reading the monitor: {e}"))?;
            if n == 0 {
                return Err("the monitor closed".into());
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn command(&mut self, command: &str) -> Result<String, String> {
        self.stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("writing to the monitor: {e}"))?;
        self.until_prompt()
    }
}

/// Waits until every CPU is halted (the kernel's final `hlt` with
/// interrupts off: nothing more will be drawn), then dumps the screen.
fn screendump(monitor_path: &Path, ppm: &Path) -> Result<(), String> {
    let mut m = Monitor::connect(monitor_path)?;
    let start = Instant::now();
    loop {
        // Each CPU's state has a line with `HLT=0` or `HLT=1`.
        let cpus = m.command("info registers -a")?;
        let listed = cpus.matches(" HLT=").count();
        let halted = cpus.matches(" HLT=1").count();
        if listed > 0 && halted == listed {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!("the CPUs did not halt: {cpus}"));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(ppm);
    let reply = m.command(&format!("screendump {}", ppm.display()))?;
    if !ppm.is_file() {
        return Err(format!("screendump wrote no file: {reply}"));
    }
    // Until QEMU closes the monitor: it has taken the command.
    m.stream
        .write_all(b"quit\n")
        .map_err(|e| format!("writing to the monitor: {e}"))?;
    let _ = m.stream.read_to_end(&mut Vec::new());
    Ok(())
}

/// Whether the serial log holds `marker` as a whole line (its newline
/// written, so the kernel has drawn it on the screen before).
fn logged(serial_log: &Path, marker: &str) -> bool {
    fs::read(serial_log).is_ok_and(|log| {
        String::from_utf8_lossy(&log)
            .lines()
            .any(|l| l.trim_end_matches('\r').ends_with(marker))
            && log.ends_with(b"\n")
    })
}

/// Boots QEMU with `args`; the serial console goes to `serial_log` and
/// QEMU's reset log (which records triple faults) to `qemu_log`. With
/// `screen`, the screen is read at the end (see [`Screendump`]); `watch`
/// says when to stop it early.
pub fn boot(
    args: &[String],
    serial_log: &Path,
    qemu_log: &Path,
    timeout: Duration,
    screen: Option<Screendump<'_>>,
    watch: Watch<'_>,
) -> Run {
    let _ = fs::remove_file(serial_log);
    let _ = fs::remove_file(qemu_log);
    // A short path: socket addresses hold about 100 bytes.
    let monitor_path = std::env::temp_dir().join(format!(
        "baton-{}-{}.monitor",
        std::process::id(),
        serial_log
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    ));
    let _ = fs::remove_file(&monitor_path);
    let monitor = match screen {
        Some(_) => format!("unix:{},server=on,wait=off", monitor_path.display()),
        None => "none".to_owned(),
    };
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(args)
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .args(["-display", "none", "-monitor", &monitor, "-no-reboot"])
        .args(["-d", "cpu_reset", "-trace", SHUTDOWN_TRACE])
        .args(["-trace", KBC_COMMAND_TRACE, "-D"])
        .arg(qemu_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start qemu-system-x86_64");
    let mut screendumped = None;
    let mut polls = 0u32;
    let ending = loop {
        if let Some(s) = screen
            && screendumped.is_none()
            && logged(serial_log, s.marker)
        {
            screendumped = Some(screendump(&monitor_path, s.ppm));
            if screendumped.as_ref().is_some_and(Result::is_err) {
                let _ = child.kill();
            }
        }
        polls += 1;
        // The log is read every 250 ms, not at every 50 ms poll.
        let stop = polls
            .is_multiple_of(5)
            .then(|| watch.stop(serial_log, start.elapsed()))
            .flatten();
        if let Some(why) = stop {
            let _ = child.kill();
            let _ = child.wait();
            break Ending::Stopped(why);
        }
        match child.try_wait().expect("waiting for QEMU") {
            Some(status) => {
                break match status.code() {
                    Some(code) => Ending::Exited(code),
                    None => Ending::Signalled,
                };
            }
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Ending::TimedOut;
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = fs::remove_file(&monitor_path);
    Run {
        ending,
        serial: fs::read(serial_log).unwrap_or_default(),
        qemu_log: fs::read_to_string(qemu_log).unwrap_or_default(),
        stderr,
        elapsed: start.elapsed(),
        screendump: screen.map(|_| {
            screendumped.unwrap_or_else(|| Err("the boot ended before the last line".into()))
        }),
    }
}

/// Whether a program is on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
