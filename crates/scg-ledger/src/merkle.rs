//! SHA-256 hashing with domain separation, and Merkle trees (static roots, an incrementally
//! updatable log with inclusion proofs).
//!
//! Tree rule (one rule for transaction roots, outcome roots and every state tree):
//! - a leaf hash is `SHA-256(0x00 || leaf bytes)`, computed by the caller with [`leaf_hash`];
//! - an inner node is `SHA-256(0x01 || left || right)`;
//! - the leaves are padded on the right to the next power of two with *empty* subtrees; the empty
//!   leaf is 32 zero bytes, an empty subtree of height `h + 1` is `node(empty_h, empty_h)`;
//! - the root of zero leaves is 32 zero bytes, the root of one leaf is that leaf hash.
//!
//! The leaf count is not part of the root; commitments that need it (the state root) bind it
//! next to the root. The 0x00/0x01 prefixes keep a leaf from being read as an inner node
//! (second-preimage protection, as in RFC 6962). This module must never do I/O.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The all-zero hash: the root of an empty tree and the "no parent" of the genesis block.
pub const ZERO_HASH: Hash = [0u8; 32];

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The hash of a leaf: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    sha256(&[&[0x00], bytes])
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// Lowercase hex of a hash (or any bytes).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Parse lowercase or uppercase hex into exactly `N` bytes.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Empty-subtree hashes by height (0 = an empty leaf). 64 levels cover any `u64` leaf count.
fn empty_hashes() -> &'static [Hash; 65] {
    static EMPTY: std::sync::OnceLock<[Hash; 65]> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut e = [ZERO_HASH; 65];
        for h in 1..65 {
            e[h] = node_hash(&e[h - 1], &e[h - 1]);
        }
        e
    })
}

/// Tree depth for `n` leaves: the smallest `d` with `2^d >= n` (0 for 0 or 1 leaf).
fn depth_for(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// The Merkle root of a list of leaf hashes (see the module doc for the rule).
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return ZERO_HASH;
    }
    let empty = empty_hashes();
    let depth = depth_for(leaves.len());
    let mut level: Vec<Hash> = leaves.to_vec();
    for e in empty.iter().take(depth) {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], pair.get(1).unwrap_or(e)))
            .collect();
    }
    debug_assert_eq!(level.len(), 1);
    level[0]
}

/// An inclusion proof: the sibling hashes from the leaf up to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    /// Position of the leaf (0-based).
    pub index: u64,
    /// Sibling hashes, leaf level first.
    pub siblings: Vec<Hash>,
}

impl MerkleProof {
    /// The root implied by `leaf` at this proof's position.
    pub fn root_for(&self, leaf: &Hash) -> Hash {
        let mut acc = *leaf;
        let mut i = self.index;
        for sib in &self.siblings {
            acc = if i & 1 == 0 {
                node_hash(&acc, sib)
            } else {
                node_hash(sib, &acc)
            };
            i >>= 1;
        }
        acc
    }
}

/// An append-only Merkle tree whose leaves can be replaced: `O(log n)` per append or update.
/// It keeps every level, so proofs are cheap. Its root equals [`merkle_root`] of its leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleLog {
    /// `levels[0]` are the leaves; `levels[h]` holds `ceil(n / 2^h)` nodes.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// True when there are no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append a leaf; returns its index.
    pub fn push(&mut self, leaf: Hash) -> usize {
        let index = self.len();
        self.set(index, leaf);
        index
    }

    /// Replace leaf `index` (or append it when `index == len()`).
    ///
    /// # Panics
    /// When `index > len()`: callers index by positions they created, so a gap is a bug.
    pub fn set(&mut self, index: usize, leaf: Hash) {
        assert!(index <= self.len(), "merkle log: leaf {index} out of range");
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        if index == self.levels[0].len() {
            self.levels[0].push(leaf);
        } else {
            self.levels[0][index] = leaf;
        }
        let depth = depth_for(self.len());
        let empty = empty_hashes();
        let mut i = index;
        for (h, e) in empty.iter().enumerate().take(depth) {
            let p = i >> 1;
            let left = self.levels[h][2 * p];
            let right = self.levels[h].get(2 * p + 1).copied().unwrap_or(*e);
            let parent = node_hash(&left, &right);
            if self.levels.len() <= h + 1 {
                self.levels.push(Vec::new());
            }
            let up = &mut self.levels[h + 1];
            if p == up.len() {
                up.push(parent);
            } else {
                up[p] = parent;
            }
            i = p;
        }
    }

    /// Replace or append many leaves, in order (each `index <= len()` at its turn, as for
    /// [`MerkleLog::set`]), then rehash every inner node above a changed leaf once, level by
    /// level. The tree is the one the same `set` calls build (a node is a function of the
    /// leaves below it), but a node shared by several changed leaves is hashed once, not once
    /// per leaf: a block's new certificates sit side by side, so most of their paths coincide.
    ///
    /// # Panics
    /// When an index is past the end at its turn: callers index by positions they created.
    pub fn set_many(&mut self, updates: &[(usize, Hash)]) {
        if updates.is_empty() {
            return;
        }
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        for &(index, leaf) in updates {
            let leaves = &mut self.levels[0];
            assert!(
                index <= leaves.len(),
                "merkle log: leaf {index} out of range"
            );
            if index == leaves.len() {
                leaves.push(leaf);
            } else {
                leaves[index] = leaf;
            }
        }
        let mut dirty: Vec<usize> = updates.iter().map(|(i, _)| *i).collect();
        dirty.sort_unstable();
        dirty.dedup();
        let depth = depth_for(self.len());
        let empty = empty_hashes();
        for (h, e) in empty.iter().enumerate().take(depth) {
            // Sorted and deduplicated: parents of sorted indices stay sorted.
            dirty = dirty.iter().map(|i| i >> 1).collect();
            dirty.dedup();
            if self.levels.len() <= h + 1 {
                self.levels.push(Vec::new());
            }
            let (below, above) = self.levels.split_at_mut(h + 1);
            let (level, up) = (&below[h], &mut above[0]);
            for &p in &dirty {
                let right = level.get(2 * p + 1).copied().unwrap_or(*e);
                let parent = node_hash(&level[2 * p], &right);
                assert!(p <= up.len(), "merkle log: node {p} past level {}", h + 1);
                if p == up.len() {
                    up.push(parent);
                } else {
                    up[p] = parent;
                }
            }
        }
    }

    /// Leaf hash at `index`.
    pub fn leaf(&self, index: usize) -> Option<Hash> {
        self.levels.first()?.get(index).copied()
    }

    /// The root (see [`merkle_root`]).
    pub fn root(&self) -> Hash {
        let n = self.len();
        if n == 0 {
            return ZERO_HASH;
        }
        self.levels[depth_for(n)][0]
    }

    /// Inclusion proof for leaf `index`.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        let n = self.len();
        if index >= n {
            return None;
        }
        let empty = empty_hashes();
        let mut siblings = Vec::new();
        let mut i = index;
        for (h, e) in empty.iter().enumerate().take(depth_for(n)) {
            siblings.push(self.levels[h].get(i ^ 1).copied().unwrap_or(*e));
            i >>= 1;
        }
        Some(MerkleProof {
            index: index as u64,
            siblings,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn small_roots_by_hand() {
        assert_eq!(merkle_root(&[]), ZERO_HASH);
        let l = leaves(3);
        assert_eq!(merkle_root(&l[..1]), l[0]);
        assert_eq!(merkle_root(&l[..2]), node_hash(&l[0], &l[1]));
        // Three leaves: padded with one empty leaf.
        let expect = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &ZERO_HASH));
        assert_eq!(merkle_root(&l), expect);
    }

    #[test]
    fn sha256_known_vector() {
        // FIPS 180-2 example: SHA-256("abc").
        assert_eq!(
            to_hex(&sha256(&[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(from_hex::<2>("0aF"), None);
        assert_eq!(from_hex::<1>("zz"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn set_many_builds_the_tree_of_the_same_sets(n in 0usize..70, appended in 0usize..70, updates in proptest::collection::vec((0usize..140, any::<u64>()), 0..20)) {
            let mut one = MerkleLog::new();
            let mut many = MerkleLog::new();
            let first: Vec<(usize, Hash)> = leaves(n).into_iter().enumerate().collect();
            many.set_many(&first);
            // Appends interleaved with updates of existing leaves, as a block's changes.
            let mut batch: Vec<(usize, Hash)> = first.clone();
            let mut len = n;
            for (k, (i, v)) in updates.into_iter().enumerate() {
                let h = leaf_hash(&v.to_le_bytes());
                if len > 0 { batch.push((i % len, h)); }
                if k < appended { batch.push((len, h)); len += 1; }
            }
            for &(i, h) in &batch { one.set(i, h); }
            many.set_many(&batch[n..]);
            prop_assert_eq!(&many, &one);
            let leaves_now: Vec<Hash> = (0..one.len()).filter_map(|i| one.leaf(i)).collect();
            prop_assert_eq!(many.root(), merkle_root(&leaves_now));
        }

        #[test]
        fn log_matches_static_root_and_proofs_verify(n in 0usize..70, updates in proptest::collection::vec((0usize..70, any::<u64>()), 0..20)) {
            let mut l = leaves(n);
            let mut log = MerkleLog::new();
            for h in &l { log.push(*h); }
            for (i, v) in updates {
                if n > 0 {
                    let i = i % n;
                    l[i] = leaf_hash(&v.to_le_bytes());
                    log.set(i, l[i]);
                }
            }
            prop_assert_eq!(log.root(), merkle_root(&l));
            for (i, leaf) in l.iter().enumerate() {
                let p = log.proof(i).unwrap();
                prop_assert_eq!(p.root_for(leaf), log.root());
                if n > 1 {
                    let wrong = leaf_hash(b"not this leaf");
                    prop_assert_ne!(p.root_for(&wrong), log.root());
                }
            }
        }
    }
}
