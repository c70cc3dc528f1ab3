//! Judging a boot: how QEMU ended, what the serial log holds, what the
//! screen shows.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::cases::{self, Exit};
use crate::qemu::{self, Ending};
use crate::{Job, check, screen};

/// What is wrong with how the machine ended, judged by QEMU's log (with
/// the shutdown-request and keyboard-controller traces): a power-off
/// where none was expected, or none where one was; a reset by the wrong
/// hand.
pub fn power_off_problem(exit: Exit, qemu_log: &str) -> Option<&'static str> {
    let powered_off = qemu_log.contains(qemu::GUEST_SHUTDOWN);
    let kbc_reset = qemu::kbc_reset_in(qemu_log);
    match exit {
        Exit::Shutdown if !powered_off => Some("QEMU saw no shutdown request from the guest"),
        Exit::Reset | Exit::KbcReset | Exit::Pass | Exit::Fail | Exit::Halted if powered_off => {
            Some("the guest powered off")
        }
        Exit::Reset if kbc_reset => Some(
            "the keyboard controller reset the machine (0xfe to port 0x64 in QEMU's trace), \
             not the firmware",
        ),
        Exit::KbcReset if !kbc_reset => {
            Some("QEMU's trace shows no keyboard-controller reset (0xfe to port 0x64)")
        }
        _ => None,
    }
}

/// What is wrong with how QEMU ended, for a case expecting `exit` that
/// had `timeout`.
pub fn ending_problem(exit: Exit, ending: &Ending, timeout: Duration) -> Option<String> {
    match (ending, exit) {
        (Ending::Exited(code), Exit::Stopped) => Some(format!(
            "QEMU exited with {code} by itself; the boot chain should have stopped"
        )),
        (Ending::Exited(code), _) if *code == exit.status() => None,
        (Ending::Exited(code), _) => Some(format!(
            "QEMU exited with {code}, expected {} ({exit:?})",
            exit.status()
        )),
        (Ending::Stopped(_), Exit::Stopped) => None,
        (Ending::Stopped(why), _) => Some(format!("the runner stopped QEMU: {why}")),
        (Ending::Signalled, _) => Some("QEMU was killed by a signal".to_owned()),
        (Ending::TimedOut, _) => Some(format!("timed out after {} s", timeout.as_secs())),
    }
}

/// What is wrong with the lines that must differ from boot to boot:
/// `varied[boot][i]` is the line `patterns[i]` matched in that boot.
pub fn varying_problems(patterns: &[&str], varied: &[Vec<Option<String>>]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        for (a, boot) in varied.iter().enumerate() {
            let Some(line) = &boot[i] else {
                problems.push(format!("boot {}: no line matches \"{pattern}\"", a + 1));
                continue;
            };
            if let Some(b) = varied[..a].iter().position(|o| o[i].as_ref() == Some(line)) {
                problems.push(format!(
                    "boots {} and {} both print \"{line}\"; it must differ from boot to boot",
                    b + 1,
                    a + 1
                ));
            }
        }
    }
    problems
}

/// A log line without its timestamp.
pub fn without_time(line: &str) -> &str {
    line.split_once("] ").map_or(line, |(_, rest)| rest)
}

/// What the serial log lacks or holds against the job's expectations.
pub fn log_problems(job: &Job, lines: &[String]) -> Vec<String> {
    let case = job.case;
    let mut problems = Vec::new();
    let required = release_lines(job);
    let patterns = case
        .common
        .iter()
        .chain(case.lines)
        .copied()
        .chain(required.iter().map(String::as_str));
    let regions = check::Regions::from_log(lines);
    problems.extend(check::log_shape_problems(lines));
    for pattern in patterns {
        if check::find_in(lines, pattern, &regions).is_none() {
            problems.push(format!("no line matches \"{pattern}\""));
        }
    }
    let never_unless = if case.faults {
        &[][..]
    } else {
        cases::NEVER_UNLESS_FAULTING
    };
    for prefix in case.exercises {
        if let Some((i, line)) = check::find(lines, &format!("selftest: skip {prefix}*")) {
            problems.push(format!(
                "line {}: a self-test of `{prefix}` skipped, in a case there to exercise it: {line}",
                i + 1
            ));
        }
        if check::find(lines, &format!("selftest: ok   {prefix}*")).is_none() {
            problems.push(format!("no self-test of `{prefix}` passed"));
        }
    }
    if !check::find_block(lines, case.block, &regions) {
        problems.push(format!(
            "no consecutive lines match, in order: \"{}\"",
            case.block.join("\", \"")
        ));
    }
    for pattern in cases::NEVER.iter().chain(never_unless).chain(case.absent) {
        if let Some((i, line)) = check::find_in(lines, pattern, &regions) {
            problems.push(format!(
                "line {} matches forbidden \"{pattern}\": {line}",
                i + 1
            ));
        }
    }
    problems
}

/// Lines the log must hold because of the release the job boots: the
/// kernel names it, and the base revision it hands over under.
pub fn release_lines(job: &Job) -> Vec<String> {
    if !(job.case.across_releases && job.case.kernel_starts) {
        return Vec::new();
    }
    let v = job.release.version;
    let revision = v.revision();
    vec![
        format!("boot: bootloader Limine {v}, firmware"),
        format!("boot: base revision requested 5, in effect {revision} ("),
        format!("limine: base revision {revision} promises * in the HHDM"),
    ]
}

/// Compares the screen QEMU dumped into `ppm` with the kernel's serial log
/// replayed on its console; what was expected goes to `expected`.
pub fn check_screen(
    serial: &[u8],
    lines: &[String],
    ppm: &Path,
    expected: &Path,
) -> Result<(), String> {
    let setup = screen::setup(lines)?;
    let (text, alert_from) = screen::kernel_text(serial)?;
    let want = screen::expected(&setup, &text, alert_from)?;
    screen::write_ppm(expected, setup.geometry.width, setup.geometry.height, &want);
    let got = fs::read(ppm)
        .map_err(|e| format!("{}: {e}", ppm.display()))
        .and_then(|data| screen::parse_ppm(&data))?;
    match screen::compare(&setup, &want, &got) {
        None => Ok(()),
        Some(diff) => Err(format!(
            "{} differs from the log replayed ({}): {diff}",
            ppm.display(),
            expected.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TIMEOUT;

    #[test]
    fn lines_that_must_vary_are_told_apart() {
        let line = |s: &str| Some(s.to_owned());
        let varied = vec![
            vec![line("layout: physmap 0xa"), line("x")],
            vec![line("layout: physmap 0xb"), line("x")],
            vec![line("layout: physmap 0xa"), None],
        ];
        let problems = varying_problems(&["layout: physmap *", "x"], &varied);
        assert_eq!(
            problems,
            [
                "boots 1 and 3 both print \"layout: physmap 0xa\"; it must differ from boot to boot",
                "boots 1 and 2 both print \"x\"; it must differ from boot to boot",
                "boot 3: no line matches \"x\"",
            ]
        );
        assert!(varying_problems(&["a"], &varied[..0]).is_empty());
        assert_eq!(
            without_time("[    7.95] INFO  layout: x"),
            "INFO  layout: x"
        );
    }

    #[test]
    fn power_off_and_reset_are_told_apart() {
        let off = "qemu_system_shutdown_request reason=6\n";
        let quit = "qemu_system_shutdown_request reason=2\n";
        assert_eq!(power_off_problem(Exit::Shutdown, off), None);
        assert!(power_off_problem(Exit::Shutdown, "").is_some());
        assert!(power_off_problem(Exit::Shutdown, quit).is_some());
        assert_eq!(power_off_problem(Exit::Reset, ""), None);
        assert!(power_off_problem(Exit::Reset, off).is_some());
        let kbc = "1234@1.5:pckbd_kbd_write_command 0xfe\n";
        let other = "1234@1.5:pckbd_kbd_write_command 0xad\n";
        assert!(power_off_problem(Exit::Reset, kbc).is_some());
        assert_eq!(power_off_problem(Exit::Reset, other), None);
        assert_eq!(power_off_problem(Exit::KbcReset, kbc), None);
        assert!(power_off_problem(Exit::KbcReset, other).is_some());
        assert!(power_off_problem(Exit::Pass, off).is_some());
    }

    #[test]
    fn stopping_is_a_pass_only_where_the_case_asks_for_it() {
        let t = TIMEOUT;
        let stopped = Ending::Stopped("a line matched".into());
        assert_eq!(ending_problem(Exit::Stopped, &stopped, t), None);
        assert!(ending_problem(Exit::Pass, &stopped, t).is_some());
        // A refused chain that boots anyway is caught.
        assert!(ending_problem(Exit::Stopped, &Ending::Exited(33), t).is_some());
        assert_eq!(ending_problem(Exit::Pass, &Ending::Exited(33), t), None);
        assert!(ending_problem(Exit::Pass, &Ending::TimedOut, t).is_some());
    }
}
