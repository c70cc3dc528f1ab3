//! Boot cases: deliberate faults and their reports.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        // Deliberate faults: the exact diagnostic, then the
        // failure verdict; never a triple fault or a timeout.
        Case {
            name: "fault-null",
            across_releases: true,
            about: "a null-pointer read: #PF in the empty lower half, with the walk of CR2, \
                    the faulting function and the call trace through it",
            cmdline: "test fault=null",
            faults: true,
            lines: &[
                "fault: provoking NullRead",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  RIP {kernel-image} CS 0x8 RFLAGS 0x* RSP {kernel-image} SS 0x10",
                "  RIP: 0008:baton::faults::provoke+0x*/0x*",
                "  CR2 0x0000000000000000: not present, read, supervisor",
                "  page-table walk of CR2: PML4[0]=0x0 not present",
            ],
            block: &[
                "Call Trace:",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-null-smp4",
            about: "a null-pointer read with 3 other CPUs busy, interrupts off: an NMI \
                    stops each of them, then the report and a clean stop",
            cmdline: "test fault=null",
            smp: 4,
            faults: true,
            lines: &[
                "smp: 4 of 4 CPUs online, all on baton's page tables*",
                "fault: 3 other CPUs spin with interrupts off",
                "fault: provoking NullRead",
                "smp: 3 of 3 other CPUs stopped (NMI)",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x0",
                "  CR2 0x0000000000000000: not present, read, supervisor",
            ],
            ..STOPS
        },
        Case {
            name: "fault-rodata",
            about: "a write to rodata: #PF, protection violation, the leaf is read-only",
            cmdline: "test fault=rodata",
            faults: true,
            lines: &[
                "fault: provoking RodataWrite",
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x3",
                "  CR2 {kernel-image}: protection violation, write, supervisor",
                "  page-table walk of CR2: PML4[511]=0x* PDPT[*]=0x* PD[*]=0x* PT[*]=0x* ( ro GLB NX ) -> 0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-nx",
            about: "a jump into the physmap: #PF on instruction fetch, the leaf is NX",
            cmdline: "test fault=nx",
            faults: true,
            lines: &[
                "baton: EXCEPTION #PF page fault (vector 14) error code 0x11",
                "  RIP {physmap} CS 0x8 *",
                "  CR2 {physmap}: protection violation, read, supervisor, instruction fetch",
                "  page-table walk of CR2: PML4[*]=0x* ( RW * GLB NX ) -> 0x*",
            ],
            // No function holds RIP: the return address on the stack
            // names the caller.
            block: &[
                "Call Trace:",
                " {physmap}",
                " ? baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-stack-overflow",
            about: "a kernel stack overflow: guard page, double fault on its IST stack, the \
                    recursion in the call trace as one line",
            cmdline: "test fault=stack-overflow",
            faults: true,
            block: &[
                "Call Trace:",
                " baton::faults::recurse+0x*/0x*",
                " baton::faults::recurse+0x*/0x*",
                " ... the line above * more times",
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
            ],
            lines: &[
                "  RIP: 0008:baton::faults::recurse+0x*/0x*",
                "baton: EXCEPTION #DF double fault (vector 8) error code 0x0",
                "  on the double-fault IST stack (RSP 0x*); CR2 0x*",
                "baton: kernel stack overflow: the boot stack ran into its guard page 0x*-0x* (RSP 0x*, RIP 0x*)",
                "  CR2 is in that guard page too",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-oom",
            about: "heap out of memory: the request and the heap's state reported, the panic's \
                    call trace, a clean stop",
            cmdline: "test fault=heap-oom",
            faults: true,
            block: &[
                " baton::faults::provoke+0x*/0x*",
                " kmain+0x*/0x*",
                " _start+0x*/0x*",
            ],
            lines: &[
                "fault: provoking HeapOutOfMemory",
                "ERROR heap: out of memory: 4294967296 bytes (align 1) requested; growing failed: its 2048 MiB of virtual space are used up",
                "ERROR heap:   * KiB mapped, * KiB used, 2048 MiB reserved",
                "baton: PANIC at *: memory allocation of 4294967296 bytes failed",
                "Call Trace:",
                " __rustc::rust_begin_unwind+0x*/0x*",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-frames",
            about: "the heap grows until physical memory runs out (128 MiB): the request, \
                    the heap's state and the cause reported, a clean stop",
            cmdline: "test fault=heap-frames",
            memory: "128M",
            faults: true,
            lines: &[
                "fault: provoking HeapOutOfFrames",
                "fault: the heap holds 32 MiB",
                "ERROR heap: out of memory: 1048576 bytes (align 1) requested; growing failed: out of physical memory",
                "ERROR heap:   * KiB mapped, * KiB used, 2048 MiB reserved",
                "baton: PANIC at *: memory allocation of 1048576 bytes failed",
            ],
            absent: &[
                "vmalloc: unmapping",
                "vmalloc: freeing frame",
                "mapper: freeing",
            ],
            ..STOPS
        },
        Case {
            name: "fault-heap-frames-4g",
            about: "the heap grows until physical memory runs out on a 4 GiB guest, past 1 GiB: \
                    its reservation is larger than RAM",
            cmdline: "test fault=heap-frames",
            memory: "4G",
            faults: true,
            lines: &[
                "mm: vmalloc: heap of up to 5120 MiB there, * KiB mapped",
                "fault: the heap holds 3072 MiB",
                "ERROR heap: out of memory: 1048576 bytes (align 1) requested; growing failed: out of physical memory",
                "ERROR heap:   * KiB mapped, * KiB used, 5120 MiB reserved",
                "baton: PANIC at *: memory allocation of 1048576 bytes failed",
            ],
            absent: &["virtual space are used up"],
            ..STOPS
        },
        Case {
            name: "fault-ud",
            about: "an invalid opcode: #UD with its RIP",
            cmdline: "test fault=ud",
            faults: true,
            lines: &[
                "fault: provoking InvalidOpcode",
                "baton: EXCEPTION #UD invalid opcode (vector 6) error code 0x0",
                "  RIP {kernel-image} CS 0x8 *",
            ],
            ..STOPS
        },
    ]
}
