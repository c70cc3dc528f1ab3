//! The CPU's random sources for the layout's seed: RDSEED and RDRAND where
//! CPUID says the CPU has them, and the time-stamp counter. Mixing is
//! `handoff::kaslr`'s; this module only reads.

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdrand64_step, _rdseed64_step, _rdtsc};

use handoff::kaslr::{Pool, Source};

/// Intel's advice for RDRAND: ten tries in a row all failing mean a broken
/// generator, not a busy one.
pub const RDRAND_TRIES: u32 = 10;
/// RDSEED fails more often under load (its source refills more slowly):
/// Intel advises retrying with PAUSE in between; baton gives up after this
/// many tries and relies on RDRAND.
pub const RDSEED_TRIES: u32 = 100;

/// What became of one of the CPU's generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// CPUID does not list it.
    Absent,
    /// Listed, but it gave no usable word (every try failed, or it returned
    /// all zeros or all ones, as some broken firmware leaves RDRAND).
    Failed,
    /// A word went into the pool.
    Used,
}

/// What the CPU contributed.
#[derive(Debug, Clone, Copy)]
pub struct Hardware {
    /// RDSEED's outcome.
    pub rdseed: Outcome,
    /// RDRAND's outcome.
    pub rdrand: Outcome,
}

/// Adds a word from RDSEED, one from RDRAND and the TSC to `pool`.
pub fn gather(pool: &mut Pool) -> Hardware {
    let leaf1 = __cpuid(1);
    let max_leaf = __cpuid(0).eax;
    let has_rdrand = leaf1.ecx & (1 << 30) != 0;
    let has_rdseed = max_leaf >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0;
    let rdseed = add(pool, Source::RdSeed, has_rdseed.then(rdseed));
    let rdrand = add(pool, Source::RdRand, has_rdrand.then(rdrand));
    // SAFETY: RDTSC exists on every x86_64 CPU and only reads the counter.
    pool.add(Source::Tsc, unsafe { _rdtsc() });
    Hardware { rdseed, rdrand }
}

fn add(pool: &mut Pool, source: Source, word: Option<Option<u64>>) -> Outcome {
    match word {
        None => Outcome::Absent,
        Some(None) => Outcome::Failed,
        Some(Some(w)) => {
            pool.add(source, w);
            Outcome::Used
        }
    }
}

/// A plausible word: all zeros or all ones is what a broken generator
/// returns with the carry flag set anyway.
fn plausible(word: u64) -> Option<u64> {
    (word != 0 && word != u64::MAX).then_some(word)
}

/// One word from RDRAND. Call only when CPUID lists it.
fn rdrand() -> Option<u64> {
    #[target_feature(enable = "rdrand")]
    fn step(out: &mut u64) -> bool {
        _rdrand64_step(out) == 1
    }
    let mut word = 0;
    for _ in 0..RDRAND_TRIES {
        // SAFETY: `gather` calls this only when CPUID.01H:ECX.RDRAND is set.
        if unsafe { step(&mut word) } {
            return plausible(word);
        }
    }
    None
}

/// One word from RDSEED. Call only when CPUID lists it.
fn rdseed() -> Option<u64> {
    #[target_feature(enable = "rdseed")]
    fn step(out: &mut u64) -> bool {
        _rdseed64_step(out) == 1
    }
    let mut word = 0;
    for _ in 0..RDSEED_TRIES {
        // SAFETY: `gather` calls this only when CPUID.07H:EBX.RDSEED is set.
        if unsafe { step(&mut word) } {
            return plausible(word);
        }
        core::hint::spin_loop();
    }
    None
}
