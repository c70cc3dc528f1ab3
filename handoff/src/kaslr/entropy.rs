//! The seed of the randomisation: words from several sources mixed into
//! one pool, and the small generator the layout's offsets are drawn from.
//!
//! Linux's `kaslr_get_random_long` XORs RDRAND, the TSC (or the i8254) and
//! a hash of the boot parameters, then diffuses the bits with one
//! multiplication. baton mixes every word through a bijective 64-bit
//! finaliser instead of XOR, so that no source can cancel another and a
//! single flipped input bit changes about half of the seed; the kernel
//! reads the hardware, this module only mixes.

use core::fmt;

/// Where a word of entropy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RDSEED: the CPU's conditioned entropy source.
    RdSeed = 0,
    /// RDRAND: the CPU's generator, reseeded from that source.
    RdRand,
    /// The time-stamp counter: firmware and loader timing make it differ
    /// from boot to boot, but an attacker can guess much of it.
    Tsc,
    /// Limine's HHDM base, when Limine randomised it.
    LimineHhdm,
    /// Where Limine's KASLR loaded the kernel image.
    LimineImage,
    /// The RTC's time at boot in seconds (Limine's date-at-boot response).
    BootTime,
}

/// Every source, in the order the log names them.
pub const SOURCES: [Source; 6] = [
    Source::RdSeed,
    Source::RdRand,
    Source::Tsc,
    Source::LimineHhdm,
    Source::LimineImage,
    Source::BootTime,
];

impl Source {
    /// The name the log uses.
    pub const fn name(self) -> &'static str {
        match self {
            Source::RdSeed => "RDSEED",
            Source::RdRand => "RDRAND",
            Source::Tsc => "TSC",
            Source::LimineHhdm => "Limine's HHDM base",
            Source::LimineImage => "Limine's kernel slide",
            Source::BootTime => "boot time",
        }
    }

    /// Whether the CPU's random number generator gave the word: only then
    /// is the layout strongly randomised.
    pub const fn is_hardware(self) -> bool {
        matches!(self, Source::RdSeed | Source::RdRand)
    }

    /// A constant per source, so that the same word from two sources
    /// mixes differently.
    const fn tag(self) -> u64 {
        (self as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// A set of sources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources(u8);

impl Sources {
    /// Whether `source` is in the set.
    pub const fn contains(self, source: Source) -> bool {
        self.0 & (1 << source as u8) != 0
    }

    /// Whether the CPU's generator is among them.
    pub const fn has_hardware(self) -> bool {
        self.contains(Source::RdSeed) || self.contains(Source::RdRand)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn insert(&mut self, source: Source) {
        self.0 |= 1 << source as u8;
    }
}

impl fmt::Display for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for source in SOURCES.into_iter().filter(|s| self.contains(*s)) {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(source.name())?;
            first = false;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// The words gathered so far, mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    state: u64,
    sources: Sources,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            // Any constant; the fractional digits of pi hide nothing.
            state: 0x243f_6a88_85a3_08d3,
            sources: Sources(0),
        }
    }

    /// Mixes `word` from `source` into the pool. For a given pool the
    /// result is a bijection of `word`: no input is lost or cancelled.
    pub fn add(&mut self, source: Source, word: u64) {
        self.state = mix(self.state.rotate_left(29) ^ mix(word ^ source.tag()));
        self.sources.insert(source);
    }

    /// The sources that went in.
    pub const fn sources(&self) -> Sources {
        self.sources
    }

    /// The seed: everything added, mixed once more.
    pub const fn seed(&self) -> u64 {
        mix(self.state ^ 0x6a09_e667_f3bc_c908)
    }

    /// A generator seeded from the pool.
    pub const fn rng(&self) -> Rng {
        Rng::new(self.seed())
    }
}

/// A bijective 64-bit finaliser (the SplitMix64 output function): every
/// input bit affects every output bit.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast and statistically sound for drawing a few
/// offsets; not a cryptographic generator (neither is Linux's
/// `prandom_u32_state` it stands in for). Its strength is the seed's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A number in `0..n`, every value equally likely (Lemire's
    /// multiply-and-reject); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Products whose low half falls below this would make the
        // smallest results likelier: redraw them.
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}
