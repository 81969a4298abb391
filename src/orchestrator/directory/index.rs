//! The search index of one fetched directory: normalized words in byte order (a prefix is a
//! range found by binary search), each word's entries, each entry's words, and byte trigrams
//! for words found inside other words — built once per fetch, so typing in the order card
//! costs no normalizing per entry. The cache around it and the orchestrator's calls are in
//! the parent module.

use std::collections::HashMap;
use std::ops::Range;

use chrono::{DateTime, Utc};

use crate::model::{AddressKind, AddressOption, AddressQuery, normalize_search_text};

/// Query words shorter than this match only at the start of a word: one or two letters inside
/// words match nearly everything and help nobody.
const MIN_INFIX_CHARS: usize = 3;

/// The words of normalized text: maximal runs of letters and digits.
fn words(normalized: &str) -> impl Iterator<Item = &str> {
    normalized
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Normalized text without anything but letters and digits: `90-001` → `90001`.
fn compact(text: &str) -> String {
    words(&normalize_search_text(text)).collect()
}

/// How a query word, or a whole entry, matches; lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    /// At the start of a word.
    WordStart,
    /// Only inside a word.
    Inside,
}

/// Marker for "no such word".
const NO_WORD: u32 = u32::MAX;

/// Per entry: what ranking and filtering need besides its words.
#[derive(Debug, Clone, Copy)]
struct EntryMeta {
    /// The compact id as a word.
    id_word: u32,
    /// The compact postcode as a word, or [`NO_WORD`].
    postcode_word: u32,
    /// Not a door address.
    pickup: bool,
}

/// Strings kept end to end, in byte order: string `i` is `text[starts[i]..starts[i + 1]]`,
/// and the strings starting with a prefix are one range of indices.
#[derive(Default)]
struct SortedStrings {
    text: String,
    starts: Vec<u32>,
}

impl SortedStrings {
    /// From strings already sorted.
    fn from_sorted<'a>(sorted: impl IntoIterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        let mut starts = Vec::new();
        for s in sorted {
            starts.push(text.len() as u32);
            text.push_str(s);
        }
        starts.push(text.len() as u32);
        Self { text, starts }
    }

    fn len(&self) -> u32 {
        (self.starts.len() - 1) as u32
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        &self.text[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The indices of strings starting with `prefix`.
    fn prefix_range(&self, prefix: &str) -> Range<u32> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid) < prefix {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let start = lo;
        hi = self.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid).starts_with(prefix) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        start..lo
    }

    /// The index of `s`, if present.
    fn find(&self, s: &str) -> Option<u32> {
        let range = self.prefix_range(s);
        (!range.is_empty() && self.get(range.start) == s).then_some(range.start)
    }
}

/// A set of entry indices, walked in ascending order.
struct EntrySet(Vec<u64>);

impl EntrySet {
    fn new(entries: usize) -> Self {
        Self(vec![0; entries.div_ceil(64)])
    }

    fn insert(&mut self, e: u32) {
        self.0[(e / 64) as usize] |= 1 << (e % 64);
    }

    fn contains(&self, e: u32) -> bool {
        self.0[(e / 64) as usize] & (1 << (e % 64)) != 0
    }

    fn ascending(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, bits)| {
            let mut bits = *bits;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros();
                    bits &= bits - 1;
                    i as u32 * 64 + bit
                })
            })
        })
    }
}

/// One directory, indexed for search.
///
/// Entries are kept in the byte order of their label's normalized words (the "label key"),
/// so that "first in the index" is the tie-break and the entries whose label starts with the
/// query are one range. Every distinct normalized word gets an id in byte order, so the words
/// starting with a query word are one range of ids; each word lists its entries in ascending
/// order (postings), each entry lists its words, and byte trigrams of the words find the
/// words containing a query word. A query walks the postings of its most selective word in
/// entry order and stops once the answer is full, checking other words by id: no string work
/// per entry.
pub(super) struct DirectoryIndex {
    pub(super) fetched_at: DateTime<Utc>,
    pub(super) entries: Vec<AddressOption>,
    meta: Vec<EntryMeta>,
    label_keys: SortedStrings,
    by_id: HashMap<String, u32>,
    vocabulary: SortedStrings,
    /// Entry `e`'s words are `entry_words[entry_word_starts[e]..entry_word_starts[e + 1]]`.
    entry_word_starts: Vec<u32>,
    entry_words: Vec<u32>,
    /// Word `w`'s entries, ascending, are `postings[posting_starts[w]..posting_starts[w + 1]]`.
    posting_starts: Vec<u32>,
    postings: Vec<u32>,
    /// (trigram, word) for every distinct byte trigram of every word, sorted.
    trigrams: Vec<(u32, u32)>,
}

/// What one query word matches in the vocabulary.
struct WordMatch {
    /// Words starting with it.
    prefix: Range<u32>,
    /// Words containing it elsewhere than at the start, ascending.
    inside: Vec<u32>,
    /// Postings over all of the above (entries may repeat).
    postings: usize,
}

impl DirectoryIndex {
    pub(super) fn build(options: Vec<AddressOption>, fetched_at: DateTime<Utc>) -> Self {
        let mut keyed: Vec<(String, AddressOption)> = options
            .into_iter()
            .map(|o| {
                let label = normalize_search_text(&o.label);
                let key = words(&label).collect::<Vec<_>>().join(" ");
                (key, o)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let label_keys = SortedStrings::from_sorted(keyed.iter().map(|(k, _)| k.as_str()));

        // Words get provisional ids in order of appearance, renumbered in byte order below.
        let mut interned: HashMap<String, u32> = HashMap::new();
        let mut spelled: Vec<String> = Vec::new();
        let mut intern = |word: &str| -> u32 {
            if let Some(id) = interned.get(word) {
                return *id;
            }
            let id = spelled.len() as u32;
            spelled.push(word.to_owned());
            interned.insert(word.to_owned(), id);
            id
        };

        let mut meta = Vec::with_capacity(keyed.len());
        let mut entry_word_starts = Vec::with_capacity(keyed.len() + 1);
        let mut entry_words: Vec<u32> = Vec::new();
        entry_word_starts.push(0);
        for (label_key, option) in &keyed {
            let first = entry_words.len();
            entry_words.extend(
                label_key
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(&mut intern),
            );
            let address = &option.address;
            let fields = address
                .lines
                .iter()
                .map(String::as_str)
                .chain([address.city.as_str()])
                .chain(address.region.as_deref());
            for field in fields {
                entry_words.extend(words(&normalize_search_text(field)).map(&mut intern));
            }
            // Compact forms make "90001" find "90-001" and "waw01a" find "WAW-01A".
            let id = normalize_search_text(&option.id);
            entry_words.extend(words(&id).map(&mut intern));
            let id_word = intern(&words(&id).collect::<String>());
            let postcode = normalize_search_text(&address.postcode);
            entry_words.extend(words(&postcode).map(&mut intern));
            let postcode: String = words(&postcode).collect();
            let postcode_word = if postcode.is_empty() {
                NO_WORD
            } else {
                intern(&postcode)
            };
            for extra in [id_word, postcode_word] {
                if extra != NO_WORD && !entry_words[first..].contains(&extra) {
                    entry_words.push(extra);
                }
            }
            entry_word_starts.push(entry_words.len() as u32);
            meta.push(EntryMeta {
                id_word,
                postcode_word,
                pickup: option.kind != AddressKind::Door,
            });
        }

        // Renumber words in byte order, so that a prefix is a range of ids.
        let mut order: Vec<u32> = (0..spelled.len() as u32).collect();
        order.sort_unstable_by(|a, b| spelled[*a as usize].cmp(&spelled[*b as usize]));
        let mut renumbered = vec![0u32; spelled.len()];
        for (new, old) in order.iter().enumerate() {
            renumbered[*old as usize] = new as u32;
        }
        let vocabulary =
            SortedStrings::from_sorted(order.iter().map(|w| spelled[*w as usize].as_str()));
        for w in &mut entry_words {
            *w = renumbered[*w as usize];
        }
        for m in &mut meta {
            m.id_word = renumbered[m.id_word as usize];
            if m.postcode_word != NO_WORD {
                m.postcode_word = renumbered[m.postcode_word as usize];
            }
        }

        // Postings, counted then filled; an entry is listed once per word, in entry order.
        let n_words = spelled.len();
        let mut distinct: Vec<u32> = Vec::new();
        let entry_distinct = |e: usize, distinct: &mut Vec<u32>| {
            distinct.clear();
            let range = entry_word_starts[e] as usize..entry_word_starts[e + 1] as usize;
            distinct.extend_from_slice(&entry_words[range]);
            distinct.sort_unstable();
            distinct.dedup();
        };
        let mut posting_starts = vec![0u32; n_words + 1];
        for e in 0..keyed.len() {
            entry_distinct(e, &mut distinct);
            for w in &distinct {
                posting_starts[*w as usize + 1] += 1;
            }
        }
        for w in 0..n_words {
            posting_starts[w + 1] += posting_starts[w];
        }
        let mut next = posting_starts.clone();
        let mut postings = vec![0u32; posting_starts[n_words] as usize];
        for e in 0..keyed.len() {
            entry_distinct(e, &mut distinct);
            for w in &distinct {
                let slot = &mut next[*w as usize];
                postings[*slot as usize] = e as u32;
                *slot += 1;
            }
        }

        let mut trigrams = Vec::new();
        let mut grams: Vec<u32> = Vec::new();
        for w in 0..vocabulary.len() {
            grams.clear();
            grams.extend(vocabulary.get(w).as_bytes().windows(3).map(trigram));
            grams.sort_unstable();
            grams.dedup();
            trigrams.extend(grams.iter().map(|t| (*t, w)));
        }
        trigrams.sort_unstable();

        let entries: Vec<AddressOption> = keyed.into_iter().map(|(_, o)| o).collect();
        let mut by_id = HashMap::with_capacity(entries.len());
        for (e, option) in entries.iter().enumerate() {
            // Of duplicate ids, the one listed first wins.
            by_id.entry(option.id.clone()).or_insert(e as u32);
        }
        Self {
            fetched_at,
            entries,
            meta,
            label_keys,
            by_id,
            vocabulary,
            entry_word_starts,
            entry_words,
            posting_starts,
            postings,
            trigrams,
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<&AddressOption> {
        self.by_id.get(id).map(|e| &self.entries[*e as usize])
    }

    fn postings_of(&self, words: Range<u32>) -> &[u32] {
        let start = self.posting_starts[words.start as usize] as usize;
        let end = self.posting_starts[words.end as usize] as usize;
        &self.postings[start..end]
    }

    fn words_of(&self, entry: u32) -> &[u32] {
        let e = entry as usize;
        let start = self.entry_word_starts[e] as usize;
        let end = self.entry_word_starts[e + 1] as usize;
        &self.entry_words[start..end]
    }

    fn match_word(&self, query_word: &str) -> WordMatch {
        let prefix = self.vocabulary.prefix_range(query_word);
        let inside = if query_word.chars().count() >= MIN_INFIX_CHARS {
            self.words_containing(query_word, &prefix)
        } else {
            Vec::new()
        };
        let postings = self.postings_of(prefix.clone()).len()
            + inside
                .iter()
                .map(|w| self.postings_of(*w..*w + 1).len())
                .sum::<usize>();
        WordMatch {
            prefix,
            inside,
            postings,
        }
    }

    /// Words containing `needle` (at least three characters) other than those in `prefix`: the
    /// words of its rarest trigram, checked.
    fn words_containing(&self, needle: &str, prefix: &Range<u32>) -> Vec<u32> {
        let Some(rarest) = needle
            .as_bytes()
            .windows(3)
            .map(|t| self.trigram_words(trigram(t)))
            .min_by_key(|words| words.len())
        else {
            return Vec::new();
        };
        rarest
            .iter()
            .map(|(_, w)| *w)
            .filter(|w| !prefix.contains(w) && self.vocabulary.get(*w).contains(needle))
            .collect()
    }

    fn trigram_words(&self, key: u32) -> &[(u32, u32)] {
        let start = self.trigrams.partition_point(|(t, _)| *t < key);
        let end = start + self.trigrams[start..].partition_point(|(t, _)| *t == key);
        &self.trigrams[start..end]
    }

    /// How `entry` matches all query words: at word starts, or some only inside words; `None`
    /// if a word does not match.
    fn fit(&self, entry: u32, matches: &[WordMatch]) -> Option<Fit> {
        let words = self.words_of(entry);
        let mut fit = Fit::WordStart;
        for m in matches {
            if words.iter().any(|w| m.prefix.contains(w)) {
                continue;
            }
            if words.iter().any(|w| m.inside.binary_search(w).is_ok()) {
                fit = Fit::Inside;
                continue;
            }
            return None;
        }
        Some(fit)
    }

    /// The answer to `query`, best first, at most `limit` entries.
    ///
    /// Ranks are filled in order, each in entry order, and the walk stops once `limit`
    /// entries are found: (1) the query is an entry's compact id or postcode, (2) the entry's
    /// label key starts with the query's words, (3) every query word starts a word of the
    /// entry, (4) the rest.
    pub(super) fn search(&self, query: &AddressQuery, limit: usize) -> Vec<AddressOption> {
        let postcode = query
            .postcode
            .as_deref()
            .map(compact)
            .filter(|p| !p.is_empty());
        let passes = |e: u32| {
            let meta = &self.meta[e as usize];
            (!query.pickup_points_only || meta.pickup)
                && postcode.as_deref().is_none_or(|p| {
                    meta.postcode_word != NO_WORD
                        && self.vocabulary.get(meta.postcode_word).starts_with(p)
                })
        };
        let text = normalize_search_text(query.text.as_deref().unwrap_or(""));
        let query_words: Vec<&str> = words(&text).collect();
        if limit == 0 {
            return Vec::new();
        }
        if query_words.is_empty() {
            return (0..self.entries.len() as u32)
                .filter(|e| passes(*e))
                .take(limit)
                .map(|e| self.entries[e as usize].clone())
                .collect();
        }
        let matches: Vec<WordMatch> = query_words.iter().map(|w| self.match_word(w)).collect();
        let Some(driver) = matches.iter().min_by_key(|m| m.postings) else {
            return Vec::new();
        };
        if driver.postings == 0 {
            return Vec::new();
        }

        let n = self.entries.len();
        let mut found: Vec<u32> = Vec::with_capacity(limit);
        let mut taken = EntrySet::new(n);
        let full = |found: &Vec<u32>| found.len() >= limit;

        // (1) The id or postcode, exactly.
        if let Some(whole) = self.vocabulary.find(&query_words.concat()) {
            for e in self.postings_of(whole..whole + 1) {
                let meta = &self.meta[*e as usize];
                if (meta.id_word == whole || meta.postcode_word == whole)
                    && passes(*e)
                    && self.fit(*e, &matches).is_some()
                {
                    taken.insert(*e);
                    found.push(*e);
                    if full(&found) {
                        return self.answer(&found);
                    }
                }
            }
        }

        // (2) The label starts with the query.
        let phrase = query_words.join(" ");
        for e in self.label_keys.prefix_range(&phrase) {
            if !taken.contains(e) && passes(e) {
                taken.insert(e);
                found.push(e);
                if full(&found) {
                    return self.answer(&found);
                }
            }
        }

        // (3) Every word at a word start, walking the driver's word-start postings in entry
        // order; entries where another word fits only inside a word are kept for (4).
        let mut candidates = EntrySet::new(n);
        for e in self.postings_of(driver.prefix.clone()) {
            candidates.insert(*e);
        }
        let mut inside: Vec<u32> = Vec::new();
        for e in candidates.ascending() {
            if taken.contains(e) || !passes(e) {
                continue;
            }
            match self.fit(e, &matches) {
                Some(Fit::WordStart) => {
                    found.push(e);
                    if full(&found) {
                        return self.answer(&found);
                    }
                }
                Some(Fit::Inside) if inside.len() < limit => inside.push(e),
                _ => {}
            }
        }

        // (4) The rest: those kept above, and the entries reached only through words that
        // contain the driver inside them, merged in entry order.
        let wanted = limit - found.len();
        let mut reached = EntrySet::new(n);
        for w in &driver.inside {
            for e in self.postings_of(*w..*w + 1) {
                if !candidates.contains(*e) {
                    reached.insert(*e);
                }
            }
        }
        let mut more: Vec<u32> = Vec::with_capacity(wanted);
        for e in reached.ascending() {
            if more.len() == wanted {
                break;
            }
            if !taken.contains(e) && passes(e) && self.fit(e, &matches).is_some() {
                more.push(e);
            }
        }
        inside.extend(more);
        inside.sort_unstable();
        found.extend(inside.into_iter().take(wanted));
        self.answer(&found)
    }

    fn answer(&self, found: &[u32]) -> Vec<AddressOption> {
        found
            .iter()
            .map(|e| self.entries[*e as usize].clone())
            .collect()
    }
}

fn trigram(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_order;

    fn entry(id: &str, label: &str, city: &str, street: &str, postcode: &str) -> AddressOption {
        let mut address = sample_order("x").address;
        address.city = city.into();
        address.lines = vec![street.into()];
        address.postcode = postcode.into();
        AddressOption {
            id: id.into(),
            kind: AddressKind::PickupPoint,
            label: label.into(),
            address,
            carrier: None,
            opening_hours: None,
        }
    }

    fn ids(found: &[AddressOption]) -> Vec<&str> {
        found.iter().map(|o| o.id.as_str()).collect()
    }

    fn index() -> DirectoryIndex {
        DirectoryIndex::build(
            vec![
                entry(
                    "LOD02",
                    "Punkt Łódź Bałuty",
                    "Łódź",
                    "ul. Zgierska 2",
                    "91-002",
                ),
                entry(
                    "LOD01",
                    "Paczkomat LOD01",
                    "Łódź",
                    "ul. Piotrkowska 12",
                    "90-001",
                ),
                entry(
                    "WAW01",
                    "Kiosk Kowalski",
                    "Warszawa",
                    "ul. Prosta 1",
                    "00-850",
                ),
                entry(
                    "WAW-9",
                    "Punkt Praga",
                    "Warszawa",
                    "ul. Targowa 9",
                    "03-728",
                ),
            ],
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    fn search(index: &DirectoryIndex, text: &str) -> Vec<String> {
        let found = index.search(&AddressQuery::in_country("PL").with_text(text), 10);
        ids(&found).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn ranks_exact_then_label_prefix_then_word_prefix_then_infix() {
        let index = index();
        // "lod01" is LOD01's id: exact first.
        assert_eq!(search(&index, "lod01"), ["LOD01"]);
        // "punkt" starts two labels; both are label prefixes, in label order.
        assert_eq!(search(&index, "punkt"), ["LOD02", "WAW-9"]);
        // "lodz" is a word of both Łódź entries; the one whose label starts with it is none,
        // so label order decides.
        assert_eq!(search(&index, "lodz"), ["LOD01", "LOD02"]);
        // "kow" starts "Kowalski" (word prefix) and sits inside "Piotrkowska" (infix).
        assert_eq!(search(&index, "kow"), ["WAW01", "LOD01"]);
        // Every word must match.
        assert_eq!(search(&index, "lodz piotr"), ["LOD01"]);
        assert!(search(&index, "lodz prosta").is_empty());
    }

    #[test]
    fn ids_and_postcodes_match_without_punctuation() {
        let index = index();
        assert_eq!(search(&index, "waw9"), ["WAW-9"]);
        assert_eq!(search(&index, "WAW-9"), ["WAW-9"]);
        assert_eq!(search(&index, "90001"), ["LOD01"]);
        assert_eq!(search(&index, "90-001"), ["LOD01"]);
        // A prefix of the compact postcode.
        assert_eq!(search(&index, "9000"), ["LOD01"]);
        // "9" starts the Łódź postcodes and is a word of "WAW-9" and "Targowa 9".
        assert_eq!(search(&index, "9"), ["LOD01", "LOD02", "WAW-9"]);
        let query = AddressQuery {
            postcode: Some("03-7".into()),
            ..AddressQuery::in_country("PL")
        };
        assert_eq!(ids(&index.search(&query, 10)), ["WAW-9"]);
    }

    #[test]
    fn short_words_match_only_at_word_starts() {
        let index = index();
        // "ow" is inside "Kowalski" and "Piotrkowska" but starts no word.
        assert!(search(&index, "ow").is_empty());
    }

    #[test]
    fn limit_and_filters() {
        let mut options = vec![entry("D1", "Door", "Łódź", "ul. Piotrkowska 1", "90-001")];
        options[0].kind = AddressKind::Door;
        options.push(entry("P1", "Point", "Łódź", "ul. Piotrkowska 2", "90-001"));
        let index = DirectoryIndex::build(options, DateTime::<Utc>::UNIX_EPOCH);
        let all = AddressQuery::in_country("PL").with_text("piotrkowska");
        assert_eq!(ids(&index.search(&all, 10)), ["D1", "P1"]);
        assert_eq!(ids(&index.search(&all, 1)), ["D1"]);
        let points = AddressQuery {
            pickup_points_only: true,
            ..all
        };
        assert_eq!(ids(&index.search(&points, 10)), ["P1"]);
        // No text: everything, in label order, limited.
        let everything = AddressQuery::in_country("PL");
        assert_eq!(ids(&index.search(&everything, 1)), ["D1"]);
    }

    /// The ranking rules written the slow, obvious way.
    fn reference(options: &[AddressOption], query: &AddressQuery, limit: usize) -> Vec<String> {
        let text = normalize_search_text(query.text.as_deref().unwrap_or(""));
        let query_words: Vec<&str> = words(&text).collect();
        let phrase = query_words.join(" ");
        let whole = query_words.concat();
        let postcode = query.postcode.as_deref().map(compact).unwrap_or_default();
        let mut ranked: Vec<(u8, String, String)> = options
            .iter()
            .filter(|o| !query.pickup_points_only || o.kind != AddressKind::Door)
            .filter(|o| compact(&o.address.postcode).starts_with(&postcode))
            .filter(|o| postcode.is_empty() || !compact(&o.address.postcode).is_empty())
            .filter_map(|o| {
                let label = words(&normalize_search_text(&o.label))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut fields = vec![label.clone()];
                fields.extend(o.address.lines.iter().map(|l| normalize_search_text(l)));
                fields.push(normalize_search_text(&o.address.city));
                fields.extend(o.address.region.as_deref().map(normalize_search_text));
                fields.push(normalize_search_text(&o.id));
                fields.push(normalize_search_text(&o.address.postcode));
                fields.push(compact(&o.id));
                fields.push(compact(&o.address.postcode));
                let entry_words: Vec<&str> = fields.iter().flat_map(|f| words(f)).collect();
                let mut inside = false;
                for q in &query_words {
                    if entry_words.iter().any(|w| w.starts_with(q)) {
                        continue;
                    }
                    if q.chars().count() >= MIN_INFIX_CHARS
                        && entry_words.iter().any(|w| w.contains(q))
                    {
                        inside = true;
                        continue;
                    }
                    return None;
                }
                let exact = whole == compact(&o.id) || whole == compact(&o.address.postcode);
                let rank = if query_words.is_empty() || exact {
                    0
                } else if label.starts_with(&phrase) {
                    1
                } else if !inside {
                    2
                } else {
                    3
                };
                Some((rank, label, o.id.clone()))
            })
            .collect();
        ranked.sort();
        ranked
            .into_iter()
            .take(limit)
            .map(|(_, _, id)| id)
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn the_index_answers_like_the_reference(
            rows in proptest::collection::vec(
                (0usize..8, 0usize..8, 0usize..8, 0usize..6, 0usize..6, 0usize..3, proptest::bool::ANY),
                0..40,
            ),
            query in (0usize..12, 0usize..12, 0usize..3, 1usize..6, proptest::bool::ANY, 0usize..4),
        ) {
            const WORDS: [&str; 8] = ["Łódź", "lodz", "Kowal", "Piotrkowska", "ab", "Straße", "софия", "Ab Abc"];
            const IDS: [&str; 6] = ["A-1", "a1", "LODZ", "90001", "Ab-9", "X"];
            const POSTCODES: [&str; 6] = ["90-001", "90001", "", "9", "AB 12", "00-1"];
            const QUERY: [&str; 12] =
                ["lodz", "ŁÓDŹ", "kow", "owa", "ab", "a", "strasse", "сОф", "90-001", "a1", "9", "rkow"];
            let options: Vec<AddressOption> = rows
                .iter()
                .enumerate()
                .map(|(i, (l1, l2, street, id, postcode, kind, two_lines))| {
                    let mut o = entry(
                        &format!("{}{}", IDS[*id], i % 3),
                        &format!("{} {}", WORDS[*l1], WORDS[*l2]),
                        WORDS[(*l1 + *l2) % 8],
                        WORDS[*street],
                        POSTCODES[*postcode],
                    );
                    if *two_lines {
                        o.address.lines.push(format!("{} 12", WORDS[*l2]));
                    }
                    o.kind = [AddressKind::Door, AddressKind::Locker, AddressKind::PickupPoint][*kind];
                    o
                })
                .collect();
            let (first, second, words_used, limit, pickup, postcode) = query;
            let text = match words_used {
                0 => String::new(),
                1 => QUERY[first].to_owned(),
                _ => format!("{} {}", QUERY[first], QUERY[second]),
            };
            let query = AddressQuery {
                pickup_points_only: pickup,
                postcode: [None, Some("9"), Some("90-0"), Some("ab")][postcode].map(str::to_owned),
                ..AddressQuery::in_country("PL").with_text(text)
            };
            let index = DirectoryIndex::build(options.clone(), DateTime::<Utc>::UNIX_EPOCH);
            let got: Vec<String> = index.search(&query, limit).into_iter().map(|o| o.id).collect();
            proptest::prop_assert_eq!(got, reference(&options, &query, limit), "{:?}", query);
        }
    }
}
