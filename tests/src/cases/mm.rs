//! Boot cases: memory services and SMP.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // Memory services and SMP.
        Case {
            name: "mm-128m",
            about: "memory services with 128 MiB and one CPU",
            memory: "128M",
            cpu: Some("qemu64"),
            lines: &[
                "handoff: RAM 127 MiB up to 0x8000000: *",
                "smp: 1 of 1 CPUs online*",
            ],
            ..BASE
        },
        Case {
            name: "mm-8g-smp4",
            exercises: &["smp:", "mm:"],
            about: "memory services with 8 GiB and 4 CPUs: shootdowns reach them all",
            memory: "8G",
            smp: 4,
            // The stacks lie in vmalloc space after the heap's reservation,
            // which grows with RAM.
            lines: &[
                "smp: local APIC in *APIC mode at 0x*",
                "smp: CPU 1 (APIC *) online: CR3 0x*, stack top {vmalloc}",
                "smp: CPU 1 protections: NXE on, WP on, *, global pages on",
                "smp: CPU 3 (APIC *) online: CR3 0x*, stack top {vmalloc}",
                "smp: CPU 3 protections: NXE on, WP on, *, global pages on",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "mm: 1 GiB block at 0x*",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
                "mm: Limine's memory released with 4 of 4 CPUs on baton's tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
                "selftest: ok   mm: ioremap maps the local APIC's registers uncached",
                "selftest: ok   mm: ioremap maps the framebuffer write-combining and write-through",
            ],
            ..BASE
        },
        Case {
            name: "mm-64g-file",
            about: "64 GiB of sparse file-backed RAM: free memory costs nothing (a few hundred \
                    KiB of vmemmap), 1 GiB blocks, self-tests as fast as on 1 GiB",
            memory: "64G",
            memory_file: true,
            cpu: Some("max,phys-bits=48"),
            lines: &[
                "handoff: RAM 65535 MiB up to 0x*",
                "mm: vmemmap: * KiB backed for 65535 MiB of RAM*",
                "mm: vmemmap: * pages backed (0 2 MiB), * page tables; an eager one: 131070 pages",
                "mm: 1 GiB block at 0x*",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
            ],
            ..BASE
        },
        Case {
            name: "mm-large-vmemmap-page",
            about: "256 MiB of reserved RAM (injected on a BIOS boot): initialisation writes a whole \
                    2 MiB of descriptors, backed with one 2 MiB page",
            firmware: Firmware::SeaBios,
            memory: "2G",
            cmdline: "test inject=reserved-256m",
            lines: &[
                "inject: the 256 MiB at 0x10000000 (usable) are ACPI NVS in Limine's map now",
                "mm: vmemmap: * KiB backed for * MiB of RAM (* 4K and 1 2M pages, *",
                "mm: vmemmap: * pages backed (1 2 MiB), *",
            ],
            ..BASE
        },
        Case {
            name: "mm-1t-file",
            about: "a terabyte of sparse file-backed RAM boots and passes the self-tests",
            memory: "1T",
            memory_file: true,
            cpu: Some("max,phys-bits=48"),
            lines: &[
                "handoff: RAM 1048575 MiB up to 0x*",
                "mm: vmemmap: * KiB backed for 1048575 MiB of RAM*",
                "mm: vmemmap: * pages backed (0 2 MiB), * page tables; an eager one: 2097150 pages",
                "selftest: ok   mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-5-level",
            exercises: &["smp:"],
            across_releases: true,
            about: "4 CPUs on 5-level tables (-cpu max)",
            cpu: Some("max"),
            smp: 4,
            lines: &[
                "boot: paging 5-level",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "smp: CPU 2 protections: NXE on, WP on, SMEP on, SMAP on, UMIP on, global pages on",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "smp4-bios",
            exercises: &["smp:"],
            about: "4 CPUs and memory services on a BIOS boot",
            firmware: Firmware::SeaBios,
            smp: 4,
            lines: &[
                "boot: bootloader Limine *, firmware BIOS",
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "selftest: ok   smp: every CPU runs on baton's CR3",
                "selftest: ok   smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
                "selftest: ok   smp: an unmapped page leaves every CPU's TLB (shootdown)",
                "selftest: ok   smp: a multi-page unmap leaves no page of it readable on any CPU",
                "selftest: ok   smp: a large unmap flushes every CPU's whole TLB",
            ],
            ..BASE
        },
        Case {
            name: "fault-vmalloc-stack-overflow",
            about: "overflowing a vmalloc stack: its guard page, a double fault, where it happened, \
                    a call trace from the vmalloc stack back to the boot stack",
            cmdline: "test fault=vmalloc-stack-overflow",
            faults: true,
            block: &[
                " ... the line above * more times",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
            ],
            lines: &[
                "fault: recursing on the vmalloc stack 0x*-0x*",
                "baton: EXCEPTION #DF double fault (vector 8) error code 0x0",
                "  on the double-fault IST stack (RSP 0x*); CR2 0x*",
                "baton: kernel stack overflow: the vmalloc stack 0x*-0x* ran into its guard page 0x*-0x* (RSP 0x*, RIP 0x*)",
                "  CR2 is in that guard page too",
            ],
            ..STOPS
        },
    ]
}
