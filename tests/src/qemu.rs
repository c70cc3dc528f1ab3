//! Running one QEMU boot with a timeout and collecting its output.

use std::fs;
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
}

/// Boots QEMU with `args`; the serial console goes to `serial_log` and
/// QEMU's reset log (which records triple faults) to `qemu_log`. `watch`
/// says when to stop it early.
pub fn boot(
    args: &[String],
    serial_log: &Path,
    qemu_log: &Path,
    timeout: Duration,
    watch: Watch<'_>,
) -> Run {
    let _ = fs::remove_file(serial_log);
    let _ = fs::remove_file(qemu_log);
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(args)
        .arg("-serial")
        .arg(format!("file:{}", serial_log.display()))
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .args(["-d", "cpu_reset", "-trace", SHUTDOWN_TRACE, "-D"])
        .arg(qemu_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start qemu-system-x86_64");
    let mut polls = 0u32;
    let ending = loop {
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
    Run {
        ending,
        serial: fs::read(serial_log).unwrap_or_default(),
        qemu_log: fs::read_to_string(qemu_log).unwrap_or_default(),
        stderr,
        elapsed: start.elapsed(),
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
