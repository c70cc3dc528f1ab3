//! CPU exceptions: names and the page-fault error code, for the fault
//! handlers' reports.

use core::fmt;

/// The mnemonic and name of exception `vector` (0 to 31).
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range exceeded",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        9 => "coprocessor segment overrun",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack-segment fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 floating-point",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating-point",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        28 => "#HV hypervisor injection",
        29 => "#VC VMM communication",
        30 => "#SX security",
        15 | 22..=27 | 31 => "reserved exception",
        _ => "interrupt",
    }
}

/// Whether the CPU pushes an error code for exception `vector`.
pub fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The page-fault error code, decoded (Intel SDM vol. 3, 4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFaultError(pub u64);

impl PageFaultError {
    const BITS: [(u64, &'static str, &'static str); 7] = [
        (1 << 0, "protection violation", "not present"),
        (1 << 1, "write", "read"),
        (1 << 2, "user", "supervisor"),
        (1 << 3, "reserved bit set", ""),
        (1 << 4, "instruction fetch", ""),
        (1 << 5, "protection key", ""),
        (1 << 6, "shadow stack", ""),
    ];
}

impl fmt::Display for PageFaultError {
    /// `not present, write, supervisor` style, then any extra bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, set, clear) in Self::BITS {
            let word = if self.0 & bit != 0 { set } else { clear };
            if word.is_empty() {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(word)?;
            first = false;
        }
        if self.0 & (1 << 15) != 0 {
            f.write_str(", SGX")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_page_fault_bits() {
        assert_eq!(
            PageFaultError(0).to_string(),
            "not present, read, supervisor"
        );
        assert_eq!(
            PageFaultError(0b11).to_string(),
            "protection violation, write, supervisor"
        );
        assert_eq!(
            PageFaultError(0x11).to_string(),
            "protection violation, read, supervisor, instruction fetch"
        );
        assert_eq!(
            PageFaultError(0b1000).to_string(),
            "not present, read, supervisor, reserved bit set"
        );
    }

    #[test]
    fn error_code_vectors() {
        let with: Vec<u64> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
        assert_eq!(exception_name(14), "#PF page fault");
        assert_eq!(exception_name(15), "reserved exception");
        assert_eq!(exception_name(32), "interrupt");
    }
}
