//! A push's figures summed per branch and quarter hour as its events are added: one
//! hash-map update per figure (keys borrowed from the events, a cheap hash), no text
//! copied. [`Acc::finish`] spreads them over the levels and shards and sorts them into the
//! rows a store writes.
use super::{
    level_width, levels, RollupKey, Rollups, Tally, CHAIN_LEVELS, CHAIN_SHARDS, DIM_CHAIN, DIM_TOTAL, QUARTER_MS,
};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash (FxHash's): these maps live for one push and are keyed by
/// product ids, cashiers and methods the branch itself sent, so a keyed hash buys nothing.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Fx {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_i64(&mut self, v: i64) {
        self.add(v as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (the table's index) weak: bring high ones down
        // (as rustc-hash 2 does).
        self.0.rotate_left(26)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A key as the map compares it: a short one (a product id, a cashier, a method) copied
/// into the map's own slot, so a lookup never follows a pointer into some other event
/// (those cache misses were most of the cost); a long one by reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Short(u8, [u8; INLINE]),
    Long(&'a str),
}

const INLINE: usize = 22;

impl<'a> Key<'a> {
    fn of(key: &'a str) -> Key<'a> {
        let b = key.as_bytes();
        if b.len() > INLINE {
            return Key::Long(key);
        }
        let mut inline = [0u8; INLINE];
        inline[..b.len()].copy_from_slice(b);
        Key::Short(b.len() as u8, inline)
    }
}

/// The figures of the events added so far, by quarter hour.
#[derive(Debug, Default)]
pub(crate) struct Acc<'a> {
    /// (branch key, quarter bucket) → the branch's totals.
    totals: FxMap<(i64, i64), Tally>,
    /// (branch key, quarter bucket, dimension, key) → (the key, figures).
    details: FxMap<(i64, i64, i64, Key<'a>), (&'a str, Tally)>,
}

impl<'a> Acc<'a> {
    pub(super) fn put(&mut self, dim: i64, branch_key: i64, at: i64, key: &'a str, t: &Tally) {
        let q = at.div_euclid(QUARTER_MS);
        if dim == DIM_TOTAL {
            self.totals.entry((branch_key, q)).or_default().add(t);
        } else {
            self.details
                .entry((branch_key, q, dim, Key::of(key)))
                .or_insert((key, Tally::default()))
                .1
                .add(t);
        }
    }

    /// The rows to write: every level of every quarter added, sorted.
    pub(crate) fn finish(&self) -> Rollups<'a> {
        spread(
            self.totals.iter().map(|(&(b, q), t)| (b, q, *t)),
            self.details
                .iter()
                .map(|(&(b, q, dim, _), &(key, t))| (b, q, dim, key, t)),
        )
    }

    /// The figures, owned and sorted, for a branch to be named later ([`Prepared`]).
    fn prepared(&self) -> Prepared {
        let mut totals: Vec<(i64, Tally)> = self.totals.iter().map(|(&(_, q), t)| (q, *t)).collect();
        totals.sort_unstable_by_key(|e| e.0);
        let mut details: Vec<(i64, i64, String, Tally)> = self
            .details
            .iter()
            .map(|(&(_, q, dim, _), &(key, t))| (q, dim, key.to_string(), t))
            .collect();
        details.sort_unstable_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        Prepared { totals, details }
    }
}

/// A push's rollup figures summed before its branch's key is known: on SQLite on the
/// request's own thread, so the single writer only writes them. Valid for the push's
/// events when they all turn out new (the usual case; a retried batch with duplicates
/// is summed again from its new events).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// (quarter bucket, figures), sorted.
    totals: Vec<(i64, Tally)>,
    /// (quarter bucket, dimension, key, figures), sorted.
    details: Vec<(i64, i64, String, Tally)>,
}

/// Sums the rollups of `events`, all from one branch, ahead of the push's transaction.
pub(crate) fn prepare(events: &[super::Event]) -> Prepared {
    super::rollups_of(0, events).prepared()
}

impl Prepared {
    /// The rows to write for the branch `branch_key`.
    pub(crate) fn rollups(&self, branch_key: i64) -> Rollups<'_> {
        spread(
            self.totals.iter().map(|&(q, t)| (branch_key, q, t)),
            self.details
                .iter()
                .map(|(q, dim, key, t)| (branch_key, *q, *dim, key.as_str(), *t)),
        )
    }
}

/// Spreads quarter figures ((branch, quarter, figures) and (branch, quarter, dimension,
/// key, figures)) over the levels and shards, sorted into [`Rollups`].
fn spread<'k>(
    totals: impl Iterator<Item = (i64, i64, Tally)>,
    details: impl Iterator<Item = (i64, i64, i64, &'k str, Tally)>,
) -> Rollups<'k> {
    let mut out = Rollups::default();
    for (branch_key, q, t) in totals {
        let at = q * QUARTER_MS;
        for &level in levels(DIM_TOTAL) {
            let k = RollupKey {
                dim: DIM_TOTAL,
                level,
                bucket: at.div_euclid(level_width(level)),
                branch_key,
                key: String::new(),
            };
            out.totals.entry(k).or_default().add(&t);
        }
        for &level in CHAIN_LEVELS {
            let k = RollupKey {
                dim: DIM_CHAIN,
                level,
                bucket: at.div_euclid(level_width(level)),
                branch_key: -1 - branch_key.rem_euclid(CHAIN_SHARDS),
                key: String::new(),
            };
            out.totals.entry(k).or_default().add(&t);
        }
    }
    for (branch_key, q, dim, key, t) in details {
        let at = q * QUARTER_MS;
        for &level in levels(dim) {
            out.details
                .entry((level, at.div_euclid(level_width(level)), branch_key))
                .or_default()
                .push((dim, key, t));
        }
    }
    for add in out.details.values_mut() {
        add.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        // Several quarters of one coarser bucket may name the same key: add them up.
        add.dedup_by(|next, kept| {
            let same = (next.0, next.1) == (kept.0, kept.1);
            if same {
                kept.2.add(&next.2);
            }
            same
        });
    }
    out
}
