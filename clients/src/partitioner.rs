//! Partition choice identical to the Java client's: murmur2 of the key bytes for keyed records, so the same
//! key lands on the same partition whichever client produced it; null keys stick to one partition until its
//! batch is sent, then move on (KIP-480's sticky partitioning).

/// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    let length = data.len() as i32;
    let seed: i32 = 0x9747_b28c_u32 as i32;
    let m: i32 = 0x5bd1_e995;
    let r = 24;
    let mut h: i32 = seed ^ length;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= ((k as u32) >> r) as i32;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= i32::from(tail[2]) << 16;
            h ^= i32::from(tail[1]) << 8;
            h ^= i32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= i32::from(tail[1]) << 8;
            h ^= i32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= i32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(m);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % partitions`, as the Java client computes it.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    if partitions == 0 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions) as i32
}

/// A small xorshift generator: enough to spread sticky choices, no extra dependency.
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    pub fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            | 1;
        Xorshift(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values printed by org.apache.kafka.common.utils.Utils.murmur2 from kafka-clients 4.3.1.
        for (input, expected) in JAVA_VECTORS {
            assert_eq!(murmur2(input.as_bytes()), *expected, "murmur2({input:?})");
        }
    }

    pub(crate) const JAVA_VECTORS: &[(&str, i32)] = &[
        ("", 275646681),
        ("a", -1563381124),
        ("ab", 316155434),
        ("abc", 479470107),
        ("abcd", -1323649548),
        ("21", -973932308),
        ("hello world", 1221641059),
        ("key-12345", -952703915),
        ("\u{e9}t\u{e9}", -2101193575),
    ];
}
