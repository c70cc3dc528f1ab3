//! The synthetic machines: memory maps laid out as firmware lays them out,
//! with the MTRRs, kernel image and CPU that go with them.

use handoff::Levels;
use handoff::layout::Layout;
use handoff::memmap::{self, LimineEntry, LimineMap, MemoryMap, Scratch, limine};
use handoff::memtype::{MemType, MtrrRegisters, Mtrrs, Pat, VariableRangeMsrs};
use handoff::plan::{CpuCaps, Inputs, KernelImage, KernelSection, Perm, Plan};
use x86_64::PhysAddr;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// MAXPHYADDR of the synthetic CPU.
pub const PHYS_BITS: u8 = 48;

/// The paging mode: the `x86_64` crate's mappers are 4-level only.
pub const LEVELS: Levels = Levels::Four;

/// Where the kernel is loaded: in an `EXECUTABLE_AND_MODULES` entry of every
/// map.
pub const KERNEL_PHYS: u64 = 16 * MIB;

/// Where low RAM ends at most: the PCI hole takes 3 GiB to 4 GiB, and RAM
/// beyond goes above 4 GiB.
pub const LOW_RAM_TOP: u64 = 3 * GIB;

/// One synthetic machine.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A short id, safe as a directory name (criterion's group).
    pub id: String,
    /// What the table calls the map.
    pub label: String,
    /// Limine's memory map of the machine.
    pub entries: Vec<LimineEntry>,
    /// Whether the CPU has 1 GiB pages.
    pub gb_pages: bool,
}

/// Every scenario the benchmark runs, smallest first, each with and
/// without 1 GiB pages.
pub fn scenarios() -> Vec<Scenario> {
    let sizes = [
        ("256MiB", "256 MiB", 256 * MIB),
        ("4GiB", "4 GiB", 4 * GIB),
        ("64GiB", "64 GiB", 64 * GIB),
        ("1TiB", "1 TiB", TIB),
        ("64TiB", "64 TiB", 64 * TIB),
    ];
    let mut all = Vec::new();
    let mut push = |id: &str, label: &str, entries: Vec<LimineEntry>| {
        for gb_pages in [true, false] {
            let pages = if gb_pages { "1G" } else { "2M" };
            all.push(Scenario {
                id: format!("{id}-{pages}"),
                label: label.to_owned(),
                entries: entries.clone(),
                gb_pages,
            });
        }
    };
    for (id, label, ram) in sizes {
        push(id, label, firmware_map(ram));
    }
    push(
        "frag1024",
        "fragmented (1024 entries)",
        fragmented_map(1024),
    );
    all
}

fn entry(base: u64, length: u64, ty: u64) -> LimineEntry {
    LimineEntry { base, length, ty }
}

/// A PC's map with `ram` bytes of RAM, as a BIOS e820 map or OVMF lays it
/// out (and Limine passes it on):
///
/// - below 1 MiB: RAM up to the EBDA at 636 KiB, then the VGA and ROM hole
///   and the BIOS area;
/// - from 1 MiB: RAM holding the kernel and Limine's own allocations, up to
///   the end of low RAM (at most 3 GiB), whose top holds the ACPI tables,
///   ACPI NVS and firmware-reserved memory;
/// - 3 GiB to 4 GiB: the PCI hole, with the IOAPIC, local APIC and flash
///   reserved;
/// - from 4 GiB: the rest of the RAM.
pub fn firmware_map(ram: u64) -> Vec<LimineEntry> {
    assert!(ram >= 64 * MIB && ram.is_multiple_of(MIB));
    let low_top = ram.min(LOW_RAM_TOP);
    // The top MiB of low RAM: ACPI tables, ACPI NVS, then reserved.
    let firmware = low_top - MIB;
    let mut map = vec![
        entry(0, 0x9f000, limine::USABLE),
        entry(0x9f000, 0x1000, limine::RESERVED),
        entry(0xf0000, 0x1_0000, limine::RESERVED),
        entry(MIB, KERNEL_PHYS - MIB, limine::USABLE),
        entry(KERNEL_PHYS, 2 * MIB, limine::EXECUTABLE_AND_MODULES),
        entry(
            KERNEL_PHYS + 2 * MIB,
            4 * MIB,
            limine::BOOTLOADER_RECLAIMABLE,
        ),
        entry(
            KERNEL_PHYS + 6 * MIB,
            firmware - (KERNEL_PHYS + 6 * MIB),
            limine::USABLE,
        ),
        entry(firmware, 128 * KIB, limine::ACPI_RECLAIMABLE),
        entry(firmware + 128 * KIB, 64 * KIB, limine::ACPI_NVS),
        entry(firmware + 192 * KIB, MIB - 192 * KIB, limine::RESERVED),
        entry(0xfec0_0000, 4 * KIB, limine::RESERVED),
        entry(0xfee0_0000, 4 * KIB, limine::RESERVED),
        entry(0xff00_0000, 16 * MIB, limine::RESERVED),
    ];
    if ram > low_top {
        map.push(entry(4 * GIB, ram - low_top, limine::USABLE));
    }
    map
}

/// A map of `entries` entries (even): RAM runs of every size from one page
/// to a few GiB at every alignment, separated by reserved, ACPI or
/// bad-memory entries or plain holes, as on a machine whose firmware
/// carves memory up (or a hypervisor that balloons it). Deterministic.
pub fn fragmented_map(entries: usize) -> Vec<LimineEntry> {
    assert!(entries.is_multiple_of(2) && entries >= 4);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64*.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut map = vec![
        entry(0, 0x9f000, limine::USABLE),
        entry(0x9f000, 0x1000, limine::RESERVED),
        entry(MIB, KERNEL_PHYS - MIB, limine::USABLE),
        entry(KERNEL_PHYS, 2 * MIB, limine::EXECUTABLE_AND_MODULES),
    ];
    let mut at = KERNEL_PHYS + 2 * MIB;
    while map.len() < entries {
        // A separator: mostly reserved, sometimes ACPI or bad memory.
        let ty = [
            limine::RESERVED,
            limine::RESERVED,
            limine::ACPI_NVS,
            limine::BAD_MEMORY,
        ][(next() % 4) as usize];
        let len = (1 + next() % 512) * 4 * KIB;
        map.push(entry(at, len, ty));
        at += len;
        // Sometimes a hole as well.
        if next() % 4 == 0 {
            at += (1 + next() % 256) * 4 * KIB;
        }
        // A RAM run: a page to a few MiB, tens of MiB, or up to 4 GiB.
        let pages = match next() % 8 {
            0..=2 => 1 + next() % 1024,
            3..=5 => 1 + next() % (64 * MIB / (4 * KIB)),
            _ => 1 + next() % (4 * GIB / (4 * KIB)),
        };
        let len = pages * 4 * KIB;
        map.push(entry(at, len, limine::USABLE));
        at += len;
    }
    map
}

/// The MTRRs of a PC: write-back by default, the PCI hole uncached, and the
/// fixed ranges write-back below 640 KiB and uncached above.
pub fn firmware_mtrrs() -> Mtrrs {
    const CAP_FIX: u64 = 1 << 8;
    const CAP_WC: u64 = 1 << 10;
    const DEF_E: u64 = 1 << 11;
    const DEF_FE: u64 = 1 << 10;
    const MASK_VALID: u64 = 1 << 11;
    let fill = |ty: MemType| u64::from_le_bytes([ty.encoding(); 8]);
    let mut regs = MtrrRegisters::new(
        8 | CAP_FIX | CAP_WC,
        DEF_E | DEF_FE | u64::from(MemType::Wb.encoding()),
        PHYS_BITS,
    );
    regs.fixed[0] = fill(MemType::Wb);
    regs.fixed[1] = fill(MemType::Wb);
    let hole = GIB;
    regs.variable[0] = VariableRangeMsrs {
        base: LOW_RAM_TOP | u64::from(MemType::Uc.encoding()),
        mask: (((1 << PHYS_BITS) - 1) & !(hole - 1)) | MASK_VALID,
    };
    Mtrrs::new(&regs).expect("valid MTRRs")
}

/// A kernel image of 2 MiB at [`KERNEL_PHYS`]: 1 MiB of text, 512 KiB of
/// read-only data, 512 KiB of data and bss.
pub fn kernel_image() -> KernelImage {
    let base = Layout::fixed(LEVELS).kernel_image_start();
    let section = |name, start: u64, end: u64, perm| KernelSection {
        name,
        start: base + start,
        end: base + end,
        perm,
    };
    KernelImage {
        virt_base: base,
        phys_base: PhysAddr::new(KERNEL_PHYS),
        sections: [
            section("text", 0, MIB, Perm::ReadExecute),
            section("rodata", MIB, MIB + 512 * KIB, Perm::ReadOnly),
            section("data", MIB + 512 * KIB, MIB + 768 * KIB, Perm::ReadWrite),
            // The boot stack's guard page between data and bss stays unmapped.
            section("bss", MIB + 772 * KIB, 2 * MIB, Perm::ReadWrite),
        ],
    }
}

/// A scenario made ready: its normalised map and everything else the plan
/// is made from, and the plan.
pub struct Machine {
    /// The scenario.
    pub scenario: Scenario,
    /// The normalised memory map.
    pub map: Box<MemoryMap>,
    /// The MTRRs.
    pub mtrrs: Mtrrs,
    /// The kernel image.
    pub kernel: KernelImage,
    /// The CPU.
    pub cpu: CpuCaps,
    /// The plan made from all of it.
    pub plan: Box<Plan>,
}

impl core::fmt::Debug for Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine")
            .field("scenario", &self.scenario.id)
            .field("mappings", &self.plan.mappings().len())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// Normalises the scenario's map and makes the plan.
    ///
    /// # Panics
    ///
    /// If the map or the plan is refused: the scenarios are meant to be
    /// valid.
    pub fn new(scenario: &Scenario) -> Machine {
        let limine = LimineMap::parse(&scenario.entries, PHYS_BITS).expect("valid Limine map");
        let mut map = Box::new(MemoryMap::new());
        let mut scratch = Box::new(Scratch::new());
        memmap::build(None, &limine, &mut scratch, &mut map).expect("map normalises");
        let mut machine = Machine {
            scenario: scenario.clone(),
            map,
            mtrrs: firmware_mtrrs(),
            kernel: kernel_image(),
            cpu: CpuCaps {
                gb_pages: scenario.gb_pages,
                nx: true,
                global: true,
            },
            plan: Box::new(Plan::new()),
        };
        let mut plan = Box::new(Plan::new());
        plan.make(&machine.inputs()).expect("plan");
        machine.plan = plan;
        machine
    }

    /// What the plan is made from.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            map: &self.map,
            layout: Layout::fixed(LEVELS),
            mtrrs: &self.mtrrs,
            pat: &Pat::BATON,
            cpu: self.cpu,
            kernel: &self.kernel,
            framebuffer: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_plans() {
        for scenario in scenarios() {
            let machine = Machine::new(&scenario);
            assert!(machine.plan.physmap_bytes > 0, "{}", scenario.id);
        }
    }

    #[test]
    fn firmware_maps_hold_the_ram_asked_for() {
        for ram in [256 * MIB, 4 * GIB, 64 * GIB] {
            let machine = Machine::new(&Scenario {
                id: String::new(),
                label: String::new(),
                entries: firmware_map(ram),
                gb_pages: true,
            });
            // RAM minus the EBDA and ROM area below 1 MiB and the reserved
            // top of low RAM (ACPI tables and NVS count as RAM).
            let reserved = (MIB - 0x9f000) + (MIB - 192 * KIB);
            assert_eq!(machine.map.ram_bytes(), ram - reserved);
            assert_eq!(machine.plan.unmapped_ram, 0);
        }
    }

    #[test]
    fn the_fragmented_map_has_its_entries() {
        let entries = fragmented_map(1024);
        assert_eq!(entries.len(), 1024);
        assert!(
            entries
                .windows(2)
                .all(|w| w[0].base + w[0].length <= w[1].base)
        );
    }
}
