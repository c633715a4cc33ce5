//! The detail blob's binary form: entries sorted by (dimension, key), each
//! `dim (1 byte) · key length (varint) · key (UTF-8) · sales · units · gross · returns`,
//! figures as zigzag varints. Sorted, so a push adds its figures in one pass over the old
//! bytes (a merge of two sorted lists) without decoding them into a map.
#[cfg(test)]
use super::Detail;
use super::Tally;
use crate::store::common::corrupt;
use crate::store::StoreError;
use std::cmp::Ordering;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_entry(out: &mut Vec<u8>, dim: i64, key: &[u8], t: &Tally) {
    out.push(dim as u8);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    for v in [t.sales, t.units, t.gross, t.returns] {
        put_i64(out, v);
    }
}

/// One entry read back, its key borrowed from the blob.
pub(crate) struct Entry<'a> {
    pub dim: i64,
    pub key: &'a [u8],
    pub tally: Tally,
}

/// The entries of a blob, in order; an error ends it.
pub(crate) struct Entries<'a> {
    rest: &'a [u8],
}

pub(crate) fn entries(blob: &[u8]) -> Entries<'_> {
    Entries { rest: blob }
}

fn bad() -> StoreError {
    corrupt("report detail blob".to_string())
}

impl<'a> Entries<'a> {
    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.rest.split_first().ok_or_else(bad)?;
            self.rest = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(bad())
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn entry(&mut self) -> Result<Entry<'a>, StoreError> {
        let (&dim, rest) = self.rest.split_first().ok_or_else(bad)?;
        self.rest = rest;
        let n = usize::try_from(self.varint()?).map_err(|_| bad())?;
        if n > self.rest.len() {
            return Err(bad());
        }
        let (key, rest) = self.rest.split_at(n);
        self.rest = rest;
        let tally = Tally {
            sales: self.i64()?,
            units: self.i64()?,
            gross: self.i64()?,
            returns: self.i64()?,
        };
        Ok(Entry {
            dim: i64::from(dim),
            key,
            tally,
        })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, StoreError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let e = self.entry();
        if e.is_err() {
            self.rest = &[];
        }
        Some(e)
    }
}

/// A detail blob as stored.
#[cfg(test)]
pub(crate) fn encode_detail(d: &Detail) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len() * 16);
    for ((dim, key), t) in d {
        put_entry(&mut out, *dim, key.as_bytes(), t);
    }
    out
}

/// Reads a detail blob back ([`encode_detail`]'s bytes) into a map.
#[cfg(test)]
pub(crate) fn decode_detail(blob: &[u8]) -> Result<Detail, StoreError> {
    let mut out = Detail::new();
    for e in entries(blob) {
        let e = e?;
        let key = std::str::from_utf8(e.key).map_err(|_| bad())?.to_string();
        out.entry((e.dim, key)).or_default().add(&e.tally);
    }
    Ok(out)
}

/// Adds `add` into the stored blob `old` (if any), in one pass over both (each sorted by
/// dimension and key): the blob to store.
pub(crate) fn merge_detail(old: Option<&[u8]>, add: &[(i64, &str, Tally)]) -> Result<Vec<u8>, StoreError> {
    let old = old.unwrap_or_default();
    let mut out = Vec::with_capacity(old.len() + add.len() * 16);
    let mut news = add.iter().peekable();
    for e in entries(old) {
        let e = e?;
        let mut tally = e.tally;
        while let Some((dim, key, t)) = news.peek() {
            match (*dim, key.as_bytes()).cmp(&(e.dim, e.key)) {
                Ordering::Less => put_entry(&mut out, *dim, key.as_bytes(), t),
                Ordering::Equal => tally.add(t),
                Ordering::Greater => break,
            }
            news.next();
        }
        put_entry(&mut out, e.dim, e.key, &tally);
    }
    for (dim, key, t) in news {
        put_entry(&mut out, *dim, key.as_bytes(), t);
    }
    Ok(out)
}
