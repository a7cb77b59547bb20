//! `--shard I/N`: a deterministic, stable slice of a fleet, so that N workers of a scheduler
//! that already exists (a Kubernetes Indexed Job, a CI matrix) cover every target exactly once.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Slice `index` (from 1) of `count`: the targets whose name hashes to it.
///
/// A target's slice depends on its name only (SHA-256 of the name, its first 8 bytes as a
/// big-endian number, modulo `count`), never on its position in the list: adding or removing a
/// target moves no other target to another worker, and every machine, platform and release
/// computes the same slice. The slices are not equal in size; over many targets they are
/// close to `total / count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Slice `index` of `count` (`1 <= index <= count`).
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1 (I/N: 1/3, 2/3, 3/3)".to_owned());
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard {index}/{count} does not exist: I goes from 1 to {count} (1/{count} ... \
                 {count}/{count})"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The slice's number, from 1.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many slices there are.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the target named `name` belongs to this slice.
    pub fn contains(self, name: &str) -> bool {
        slice_of(name, self.count) == self.index
    }
}

/// The slice (from 1) of `count` that the target named `name` belongs to.
pub fn slice_of(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`, for example `2/3`. Kubernetes' `JOB_COMPLETION_INDEX` counts from 0: pass
    /// `$((JOB_COMPLETION_INDEX + 1))/N`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let shape = || format!("`{text}` is not a shard: write I/N, for example 1/3");
        let (index, count) = text.trim().split_once('/').ok_or_else(shape)?;
        let index = index.trim().parse::<u32>().map_err(|_| shape())?;
        let count = count.trim().parse::<u32>().map_err(|_| shape())?;
        Shard::new(index, count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_in_exactly_one_slice_for_every_count() {
        for count in 1..=12u32 {
            let shards: Vec<Shard> = (1..=count).map(|i| Shard::new(i, count).unwrap()).collect();
            for n in 0..2000 {
                let name = format!("tenant_{n}");
                let holders = shards.iter().filter(|s| s.contains(&name)).count();
                assert_eq!(holders, 1, "{name} with {count} shards");
            }
        }
    }

    #[test]
    fn a_slice_depends_on_the_name_only() {
        // Pinned: a change here moves targets between the workers of a running rollout.
        assert_eq!(slice_of("tenant_1", 3), slice_of("tenant_1", 3));
        let pinned: Vec<u32> = ["a", "b", "tenant_1", "eu-1/acme"]
            .iter()
            .map(|n| slice_of(n, 7))
            .collect();
        let again: Vec<u32> = ["eu-1/acme", "tenant_1", "b", "a"]
            .iter()
            .rev()
            .map(|n| slice_of(n, 7))
            .collect();
        assert_eq!(pinned, again);
    }

    #[test]
    fn slices_are_balanced_over_many_names() {
        let count = 4;
        let mut sizes = [0usize; 4];
        for n in 0..4000 {
            sizes[(slice_of(&format!("t{n}"), count) - 1) as usize] += 1;
        }
        for size in sizes {
            assert!((800..1200).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn parses_i_over_n_and_refuses_the_rest() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard::new(2, 3).unwrap());
        assert_eq!(
            "0/3".parse::<Shard>().unwrap_err(),
            "shard 0/3 does not exist: I goes from 1 to 3 (1/3 ... 3/3)"
        );
        assert_eq!(
            "4/3".parse::<Shard>().unwrap_err(),
            "shard 4/3 does not exist: I goes from 1 to 3 (1/3 ... 3/3)"
        );
        assert_eq!(
            "2".parse::<Shard>().unwrap_err(),
            "`2` is not a shard: write I/N, for example 1/3"
        );
        assert!("1/0".parse::<Shard>().is_err());
    }
}
