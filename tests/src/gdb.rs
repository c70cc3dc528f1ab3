//! The GDB cases: what GDB is told to do with baton.gdb and the helpers
//! of baton-gdb.py, and how its output is judged against the serial log.

use crate::cases::Gdb;

/// Marks the start of a helper's output in GDB's (`echo`), up to [`END`].
const PTDUMP: &str = "@@ptdump";
/// The header of the EFI address space in the kernel's ptdump.
const EFI_SPACE: &str = "---[ EFI address space";
const MEMMAP: &str = "@@memmap";
const END: &str = "@@end";

/// The commands GDB runs after baton.gdb has attached.
pub fn commands(session: Gdb) -> Vec<String> {
    let script: &[&str] = match session {
        Gdb::BreakKmain | Gdb::KmainSourceLine => {
            &["break kmain", "continue", "info symbol $pc", "bt 1"]
        }
        Gdb::Handoff => &[
            // Right before the switch: Limine's tables, the mov next.
            "baton-break-switch",
            "continue",
            "x/i $pc",
            "baton-layout",
            // Right after: baton's tables; the physmap alias of the root
            // table ($rdi still holds it) must lead back to it.
            "continue",
            "baton-walk $baton_physmap($rdi)",
            // At the end of the boot, after the kernel's own ptdump.
            "delete",
            "break baton::finish",
            "continue",
            "baton-walk kmain",
            "echo @@ptdump\\n",
            "baton-ptdump",
            "echo @@end\\n",
            "echo @@memmap\\n",
            "baton-memmap",
            "echo @@end\\n",
        ],
    };
    script
        .iter()
        .map(|s| s.to_string())
        .chain(["kill".to_owned()])
        .collect()
}

/// What is wrong with GDB's `output` for `session`, given the serial log.
pub fn judge(session: Gdb, output: &str, serial: &[String]) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let has = |f: &dyn Fn(&str) -> bool| lines.iter().any(|l| f(l));
    let mut problems = Vec::new();
    let mut require = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    match session {
        Gdb::BreakKmain => {
            // GDB may name a callee inlined at the stop; the symbol of
            // the stop address is what proves the breakpoint.
            require(
                has(&|l| l.starts_with("Breakpoint 1, ")),
                "GDB did not stop at the breakpoint",
            );
            require(
                has(&|l| {
                    l.ends_with(" in section .text")
                        && (l.starts_with("kmain in") || l.starts_with("kmain + "))
                }),
                "the stop is not in kmain",
            );
        }
        Gdb::KmainSourceLine => require(
            has(&|l| l.starts_with("Breakpoint 1, baton::kmain () at kernel/src/main.rs:"))
                && has(&|l| l.starts_with("#0  baton::kmain () at kernel/src/main.rs:")),
            "`break kmain` did not stop in kmain's own source (an inlined callee instead?)",
        ),
        Gdb::Handoff => return judge_handoff(&lines, serial),
    }
    problems
}

/// The number written in hex right after `prefix` in the first line of
/// `lines` holding it.
fn hex_after<S: AsRef<str>>(lines: &[S], prefix: &str) -> Option<u64> {
    lines.iter().find_map(|l| {
        let rest = &l.as_ref()[l.as_ref().find(prefix)? + prefix.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        u64::from_str_radix(&digits, 16).ok()
    })
}

/// The lines between `start` and the next [`END`].
fn section<'a>(lines: &[&'a str], start: &str) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| **l != start)
        .skip(1)
        .take_while(|l| **l != END)
        .copied()
        .collect()
}

fn is_ptdump_line(line: &str) -> bool {
    line.starts_with("---[ ") || (line.starts_with("0x") && line.get(18..21) == Some("-0x"))
}

fn judge_handoff(lines: &[&str], serial: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let has = |f: &dyn Fn(&str) -> bool| lines.iter().any(|l| f(l));
    let root = hex_after(serial, "page-table frames at 0x")
        .and(hex_after(serial, "; root 0x"))
        .unwrap_or(0);
    let physmap = hex_after(serial, "layout: physmap 0x").unwrap_or(0);
    let kernel = hex_after(serial, "boot: kernel at physical 0x").unwrap_or(0);
    if root == 0 || physmap == 0 || kernel == 0 {
        problems.push(
            "the serial log lacks the root table, the physmap's base or the kernel's address"
                .to_owned(),
        );
        return problems;
    }
    let checks: [(bool, String); 7] = [
        (
            has(&|l| l.starts_with("Breakpoint 1, ") && l.ends_with(" in baton_cr3_switch ()")),
            "no stop at baton_cr3_switch".to_owned(),
        ),
        (
            has(&|l| l.contains("<baton_cr3_switch>:") && l.ends_with("mov    cr3,rdi")),
            "the instruction at baton_cr3_switch is not `mov cr3, rdi`".to_owned(),
        ),
        (
            has(&|l| l.contains(&format!("baton's (root {root:#x}, not loaded)"))),
            format!("before the switch, baton-layout did not show root {root:#x} as not loaded"),
        ),
        (
            has(&|l| l.starts_with(&format!("CR3 {root:#x}: baton's "))),
            format!("after the switch, CR3 is not baton's root {root:#x}"),
        ),
        (
            has(&|l| {
                l.starts_with(&format!("{:#x} -> physical {root:#x} (", physmap + root))
                    && l.contains(" RW ")
                    && l.contains(" NX")
            }),
            format!(
                "baton-walk of the root's physmap alias {:#x} did not give {root:#x}, RW NX",
                physmap + root
            ),
        ),
        (
            has(&|l| l.contains("memory types from baton's PAT"))
                && has(&|l| {
                    l.contains("-> physical ") && l.contains(" ro ") && l.ends_with(", WB)")
                }),
            "baton-walk kmain: not read-only write-back under baton's PAT".to_owned(),
        ),
        (
            section(lines, MEMMAP).iter().any(|l| {
                let mut words = l.split_whitespace();
                let (Some(range), Some("Kernel")) = (words.next(), words.next()) else {
                    return false;
                };
                let Some((start, end)) = range.split_once('-') else {
                    return false;
                };
                let parse = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
                matches!((parse(start), parse(end)), (Some(s), Some(e)) if (s..e).contains(&kernel))
            }),
            format!("baton-memmap has no Kernel region holding the kernel at {kernel:#x}"),
        ),
    ];
    problems.extend(checks.into_iter().filter(|(ok, _)| !ok).map(|(_, why)| why));
    let ours = section(lines, PTDUMP);
    // baton-ptdump walks CR3: the kernel's tables, not the EFI address
    // space the kernel prints after them.
    let theirs: Vec<&str> = serial
        .iter()
        .map(String::as_str)
        .filter(|l| is_ptdump_line(l))
        .take_while(|l| !l.starts_with(EFI_SPACE))
        .collect();
    if ours.is_empty() || ours != theirs {
        problems.push(format!(
            "baton-ptdump ({} lines) differs from the kernel's ptdump ({} lines)",
            ours.len(),
            theirs.len()
        ));
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        if let Some(i) = first {
            problems.push(format!("first difference: GDB `{}`", ours[i]));
            problems.push(format!("             kernel `{}`", theirs[i]));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_sections_are_read_from_output() {
        let serial = ["x: handoff: built 12 page-table frames at 0x10-0x20; root 0x394f2000"];
        assert_eq!(hex_after(&serial, "; root 0x"), Some(0x394f_2000));
        assert_eq!(hex_after(&serial, "nothing"), None);
        let lines = ["a", PTDUMP, "---[ User Space ]---", END, "b"];
        assert_eq!(section(&lines, PTDUMP), ["---[ User Space ]---"]);
        assert!(is_ptdump_line(
            "0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud"
        ));
        assert!(!is_ptdump_line("0x000000000000fff0 in ?? ()"));
    }
}
