//! A stable 64-bit FNV-1a hash: same value on every platform, build and run, so fingerprints
//! computed in the browser, in the agent and in a snapshot agree.

/// FNV-1a, 64 bit.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A fresh hasher.
    pub const fn new() -> Self {
        Fnv64(Self::OFFSET)
    }

    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The hash so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes byte strings separated by a 0xff byte, so ["ab","c"] and ["a","bc"] differ; returns
/// 16 lowercase hex digits.
pub fn fingerprint_hex<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Fnv64::new();
    for p in parts {
        h.write(p.as_bytes());
        h.write(&[0xff]);
    }
    format!("{:016x}", h.finish())
}

/// SplitMix64: a small, well-mixed pseudo-random sequence (for sampling decisions: spread, not
/// secrecy). The caller seeds it (from the clock, or a constant under test).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The sequence from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_separation() {
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fingerprint_hex(["ab", "c"]), fingerprint_hex(["a", "bc"]));
        assert_eq!(fingerprint_hex(["x"]).len(), 16);
    }
}
