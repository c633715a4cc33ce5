//! The search index: an immutable snapshot of the catalog's names, ids and barcodes, built
//! once and scanned by every `GET /products/search` without touching SQLite.
//!
//! Layout: every product's folded name and folded id ([`fold`]) are concatenated into one
//! haystack, products sorted by folded name (then id), each as `name \x01 id \n`. A text
//! query is folded the same way and found with `memchr::memmem`; a match offset maps back to
//! its product by a binary search of the products' start offsets, and the scan resumes at
//! the next product, so each product is reported once. Because products are in name order,
//! the first `limit` matches *are* the first `limit` by name: the scan stops there.
//!
//! Invariants:
//! - [`fold`] drops control characters, so a folded query never contains the separators
//!   and no match can straddle two products or a name and its id.
//! - A snapshot holds what changes only with a pull (names, ids, barcodes). Stock, price,
//!   schedule and `active` are read from the inventory at query time, so a snapshot never
//!   serves a stale price or a product made inactive since it was built.
use compact_str::CompactString;
use memchr::memmem;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Case- and accent-insensitive form: NFD, combining marks and control characters dropped,
/// lowercase. "AZÚCAR", "azucar" and "Azúcar" fold alike.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(&mut out, s);
    out
}

fn fold_into(out: &mut String, s: &str) {
    for c in s.nfd() {
        if is_combining_mark(c) || c.is_control() {
            continue;
        }
        out.extend(c.to_lowercase());
    }
}

/// One product of the snapshot: 12 bytes, so 100,000 products cost 1.2 MB of entries (the
/// text itself lives in two shared strings). Offsets are `u32`: a haystack of 4 GiB would be
/// 40 million products of 100 bytes, far past any branch.
#[derive(Debug)]
struct Entry {
    /// Where its id, then its display name, start in `text`; the name ends where the next
    /// entry's text starts.
    text_start: u32,
    id_len: u32,
    /// Where its block starts in the haystack.
    hay_start: u32,
}

/// A product as the index is built from: id, display name, barcode.
pub type CatalogRow = (String, String, Option<String>);

/// One product found: its id, display name and barcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub product_id: &'a str,
    pub name: &'a str,
    pub barcode: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    entries: Vec<Entry>,
    haystack: String,
    /// Every product's id and display name, one after the other, in entry order.
    text: String,
    /// `(barcode, entry)`, sorted: several products may briefly share one while a barcode
    /// moves between products across two pulls.
    barcodes: Vec<(CompactString, u32)>,
    /// Per entry, its place in `barcodes` (`u32::MAX`: none), so a hit finds its barcode.
    barcode_of: Vec<u32>,
}

impl Snapshot {
    pub fn build(rows: Vec<CatalogRow>) -> Snapshot {
        let mut keyed: Vec<(String, CatalogRow)> = rows.into_iter().map(|r| (fold(&r.1), r)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1 .0.cmp(&b.1 .0)));
        let mut s = Snapshot {
            entries: Vec::with_capacity(keyed.len()),
            haystack: String::new(),
            text: String::new(),
            barcodes: Vec::new(),
            barcode_of: Vec::new(),
        };
        for (folded, (id, name, barcode)) in keyed {
            let hay_start = offset(s.haystack.len());
            s.haystack.push_str(&folded);
            s.haystack.push('\u{1}');
            fold_into(&mut s.haystack, &id);
            s.haystack.push('\n');
            let text_start = offset(s.text.len());
            s.text.push_str(&id);
            s.text.push_str(&name);
            let index = offset(s.entries.len());
            if let Some(b) = barcode {
                s.barcodes.push((CompactString::from(b), index));
            }
            s.entries.push(Entry {
                text_start,
                id_len: offset(id.len()),
                hay_start,
            });
        }
        s.barcodes.sort_unstable();
        s.barcode_of = vec![u32::MAX; s.entries.len()];
        for (k, (_, e)) in s.barcodes.iter().enumerate() {
            if let Some(slot) = s.barcode_of.get_mut(*e as usize) {
                *slot = offset(k);
            }
        }
        s.haystack.shrink_to_fit();
        s.text.shrink_to_fit();
        s
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes this snapshot holds on the heap (for the memory figures of BENCHMARKS.md).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.haystack.capacity()
            + self.text.capacity()
            + self.barcodes.capacity() * std::mem::size_of::<(CompactString, u32)>()
            + self.barcode_of.capacity() * std::mem::size_of::<u32>()
    }

    /// The id of entry `i`.
    fn id(&self, i: usize) -> &str {
        let e = &self.entries[i];
        let start = e.text_start as usize;
        self.text.get(start..start + e.id_len as usize).unwrap_or("")
    }

    fn found(&self, i: usize) -> Found<'_> {
        let e = &self.entries[i];
        let name_start = e.text_start as usize + e.id_len as usize;
        let name_end = self
            .entries
            .get(i + 1)
            .map_or(self.text.len(), |n| n.text_start as usize);
        let barcode = self
            .barcode_of
            .get(i)
            .and_then(|b| self.barcodes.get(*b as usize))
            .map(|(b, _)| b.as_str());
        Found {
            product_id: self.id(i),
            name: self.text.get(name_start..name_end).unwrap_or(""),
            barcode,
        }
    }

    /// The products whose folded name or id contains the folded `query`, in name order,
    /// those `keep` accepts, at most `limit`.
    pub fn find_text(&self, query: &str, limit: usize, mut keep: impl FnMut(&str) -> bool) -> Vec<Found<'_>> {
        let needle = fold(query);
        let finder = memmem::Finder::new(needle.as_bytes());
        let hay = self.haystack.as_bytes();
        let mut out = Vec::new();
        let mut pos = 0;
        while out.len() < limit && pos < hay.len() {
            let Some(i) = finder.find(&hay[pos..]) else { break };
            let at = pos + i;
            // The entry whose block holds `at`: the last one starting at or before it.
            let e = self
                .entries
                .partition_point(|e| e.hay_start as usize <= at)
                .saturating_sub(1);
            if keep(self.id(e)) {
                out.push(self.found(e));
            }
            pos = self.entries.get(e + 1).map_or(hay.len(), |n| n.hay_start as usize);
        }
        out
    }

    /// The products with exactly this barcode, in name order, those `keep` accepts.
    pub fn find_barcode(&self, barcode: &str, mut keep: impl FnMut(&str) -> bool) -> Vec<Found<'_>> {
        let from = self.barcodes.partition_point(|(b, _)| b.as_str() < barcode);
        let mut hits: Vec<usize> = self.barcodes[from..]
            .iter()
            .take_while(|(b, _)| b.as_str() == barcode)
            .map(|(_, e)| *e as usize)
            .collect();
        hits.sort_unstable();
        hits.into_iter()
            .filter(|e| keep(self.id(*e)))
            .map(|e| self.found(e))
            .collect()
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, barcode: Option<&str>) -> CatalogRow {
        (id.to_string(), name.to_string(), barcode.map(str::to_string))
    }

    fn ids(found: &[Found]) -> Vec<String> {
        found.iter().map(|f| f.product_id.to_string()).collect()
    }

    fn small() -> Snapshot {
        Snapshot::build(vec![
            row("AZUCAR-1KG", "Azúcar rubia 1 kg", Some("7750885000018")),
            row("ARROZ-1KG", "Arroz Costeño 1 kg", None),
            row("ACEITE-1L", "Aceite vegetal 1 L", Some("7751271000011")),
            row("SAL-1KG", "Sal de mesa", None),
        ])
    }

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("AZÚCAR Ñandú"), "azucar nandu");
        assert_eq!(fold("a\u{1}b\nc"), "abc");
    }

    #[test]
    fn a_query_finds_names_without_regard_to_case_or_accents() {
        let s = small();
        for q in ["azucar", "AZÚCAR", "zúc", "Rubia"] {
            assert_eq!(ids(&s.find_text(q, 20, |_| true)), ["AZUCAR-1KG"], "{q}");
        }
        assert_eq!(ids(&s.find_text("costeno", 20, |_| true)), ["ARROZ-1KG"]);
    }

    #[test]
    fn a_query_finds_product_ids_and_answers_in_name_order() {
        let s = small();
        assert_eq!(
            ids(&s.find_text("1kg", 20, |_| true)),
            ["ARROZ-1KG", "AZUCAR-1KG", "SAL-1KG"]
        );
        assert_eq!(
            ids(&s.find_text("1 ", 20, |_| true)),
            ["ACEITE-1L", "ARROZ-1KG", "AZUCAR-1KG"]
        );
    }

    #[test]
    fn each_product_is_reported_once_and_the_limit_holds() {
        let s = small();
        // "a" is in every name several times and in some ids.
        assert_eq!(s.find_text("a", 20, |_| true).len(), 4);
        assert_eq!(ids(&s.find_text("a", 2, |_| true)), ["ACEITE-1L", "ARROZ-1KG"]);
    }

    #[test]
    fn no_match_straddles_a_name_and_its_id() {
        let s = small();
        // "...mesa" followed by "sal-1kg": "mesasal" appears only across the separator.
        assert!(s.find_text("mesasal", 20, |_| true).is_empty());
        assert!(s.find_text("kgarroz", 20, |_| true).is_empty());
    }

    #[test]
    fn rejected_products_are_skipped_without_shortening_the_answer() {
        let s = small();
        let found = s.find_text("1", 2, |id| id != "ACEITE-1L");
        assert_eq!(ids(&found), ["ARROZ-1KG", "AZUCAR-1KG"]);
    }

    #[test]
    fn a_barcode_finds_its_product_exactly() {
        let s = small();
        let found = s.find_barcode("7750885000018", |_| true);
        assert_eq!(ids(&found), ["AZUCAR-1KG"]);
        assert_eq!(found[0].name, "Azúcar rubia 1 kg");
        assert_eq!(found[0].barcode, Some("7750885000018"));
        assert!(s.find_barcode("775088500001", |_| true).is_empty());
        assert_eq!(s.find_text("azucar", 1, |_| true)[0].barcode, Some("7750885000018"));
        assert_eq!(s.find_text("arroz", 1, |_| true)[0].barcode, None);
    }

    #[test]
    fn a_hundred_thousand_products_are_searched_right() {
        let names = [
            "Azúcar rubia",
            "Arroz Costeño",
            "Leche evaporada",
            "Café tostado",
            "Fideo canuto",
        ];
        let rows: Vec<CatalogRow> = (0..100_000)
            .map(|i| {
                let name = format!("{} {:06}", names[i % names.len()], i);
                let barcode = (i % 10 == 0).then(|| format!("{:013}", 7_750_000_000_000u64 + i as u64));
                (format!("P{i:06}"), name, barcode)
            })
            .collect();
        let s = Snapshot::build(rows);
        assert_eq!(s.len(), 100_000);
        // One product by a unique part of its name.
        let found = s.find_text("CAFE TOSTADO 012343", 20, |_| true);
        assert_eq!(ids(&found), ["P012343"]);
        // The first 20 "azúcar" by name: names sort by their numbers.
        let found = s.find_text("AZUCAR", 20, |_| true);
        let want: Vec<String> = (0..20).map(|k| format!("P{:06}", k * 5)).collect();
        assert_eq!(ids(&found), want);
        // By id.
        assert_eq!(ids(&s.find_text("p099999", 20, |_| true)), ["P099999"]);
        // By barcode, and none for a product without one.
        assert_eq!(ids(&s.find_barcode("7750000054320", |_| true)), ["P054320"]);
        assert!(s.find_barcode("7750000054321", |_| true).is_empty());
        // Nothing found scans it all and answers empty.
        assert!(s.find_text("quinua", 20, |_| true).is_empty());
    }
}
