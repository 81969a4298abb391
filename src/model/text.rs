//! Text normalization for searching names and addresses the way people type them.
//!
//! An operator types "lodz" for "Łódź" and "zurich" for "Zürich": [`normalize_search_text`]
//! makes both sides comparable by removing case, accents and runs of whitespace. Cyrillic is
//! only case-folded and keeps its letters (Bulgarian "й" is a letter of its own, not "и" with an
//! accent), so "софия" finds "София" but "sofia" does not: transliteration is not guessing we
//! want to do. Searching itself lives in the orchestrator's directory cache.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// `text` lowercased, without accents or other combining marks, with letters that have no
/// decomposition folded to their plain Latin spelling (`ł` → `l`, `ß` → `ss`, `æ` → `ae`,
/// `ø` → `o` …), every run of whitespace collapsed into one space, and trimmed. Punctuation is
/// kept. Cyrillic letters are only lowercased.
///
/// Compatibility decomposition (NFKD) is used rather than NFD so that ligatures, full-width
/// letters and superscript digits fold too (`ﬁ` → `fi`, `Ｗ` → `w`).
///
/// # Examples
///
/// ```
/// use fulfillkit::model::normalize_search_text;
///
/// assert_eq!(normalize_search_text("  Łódź,   Piotrkowska "), "lodz, piotrkowska");
/// assert_eq!(normalize_search_text("Zürich Hauptstraße"), "zurich hauptstrasse");
/// assert_eq!(normalize_search_text("СОФИЯ"), "софия");
/// ```
pub fn normalize_search_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_normalized(text, &mut out);
    out
}

/// Appends the normalized `text` to `out` (see [`normalize_search_text`]).
fn push_normalized(text: &str, out: &mut String) {
    let start = out.len();
    let mut writer = Writer {
        out,
        start,
        pending_space: false,
    };
    // Ids, postcodes and house numbers are mostly ASCII: they need no Unicode tables.
    if text.is_ascii() {
        text.chars()
            .for_each(|c| writer.push(c.to_ascii_lowercase()));
        return;
    }
    // Composing first puts a decomposed Cyrillic "и" + breve back together as "й", so that
    // the Cyrillic path sees the whole letter. Only text with combining marks can need it.
    if text.chars().any(is_combining_mark) {
        text.nfc().for_each(|c| push_char(c, &mut writer));
    } else {
        text.chars().for_each(|c| push_char(c, &mut writer));
    }
}

fn push_char(c: char, writer: &mut Writer<'_>) {
    if c.is_ascii() {
        writer.push(c.to_ascii_lowercase());
        return;
    }
    if is_cyrillic(c) {
        c.to_lowercase().for_each(|l| writer.push(l));
        return;
    }
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        for lower in d.to_lowercase() {
            // `İ` lowercases to `i` + a combining dot.
            if is_combining_mark(lower) {
                continue;
            }
            match fold(lower) {
                Some(folded) => folded.chars().for_each(|f| writer.push(f)),
                None => writer.push(lower),
            }
        }
    });
}

/// Writes characters, collapsing whitespace: a space is written only before the next
/// non-space character, which both collapses runs and trims both ends.
struct Writer<'a> {
    out: &'a mut String,
    start: usize,
    pending_space: bool,
}

impl Writer<'_> {
    fn push(&mut self, c: char) {
        if c.is_whitespace() {
            self.pending_space = self.out.len() > self.start;
            return;
        }
        if self.pending_space {
            self.out.push(' ');
            self.pending_space = false;
        }
        self.out.push(c);
    }
}

/// Cyrillic blocks (basic, supplement, extended-A/B/C): kept as letters.
fn is_cyrillic(c: char) -> bool {
    matches!(c,
        '\u{0400}'..='\u{052F}' | '\u{1C80}'..='\u{1C8F}' | '\u{2DE0}'..='\u{2DFF}'
        | '\u{A640}'..='\u{A69F}')
}

/// Lowercase letters that Unicode does not decompose into a base letter and a mark, spelled
/// the way a keyboard without them spells them.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ł' => "l",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŧ' => "t",
        'ŋ' => "n",
        'ĸ' => "k",
        'ſ' => "s",
        'ς' => "σ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(normalize_search_text(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn polish() {
        check(&[
            ("Łódź", "lodz"),
            ("ŁÓDŹ", "lodz"),
            ("Gdańsk", "gdansk"),
            ("Kraków", "krakow"),
            ("Żółkiewskiego", "zolkiewskiego"),
            ("Bielsko-Biała", "bielsko-biala"),
            ("ul. Świętokrzyska 31/33", "ul. swietokrzyska 31/33"),
        ]);
    }

    #[test]
    fn german() {
        check(&[
            ("Zürich", "zurich"),
            ("München", "munchen"),
            ("Hauptstraße 5", "hauptstrasse 5"),
            ("GROẞE STRASSE", "grosse strasse"),
            ("Köln  Ehrenfeld", "koln ehrenfeld"),
        ]);
    }

    #[test]
    fn czech() {
        check(&[
            ("Plzeň", "plzen"),
            ("Ústí nad Labem", "usti nad labem"),
            ("České Budějovice", "ceske budejovice"),
            ("Hradec Králové", "hradec kralove"),
            ("Říčany", "ricany"),
        ]);
    }

    #[test]
    fn bulgarian_cyrillic_is_kept_and_case_folded() {
        check(&[
            ("София", "софия"),
            ("СОФИЯ", "софия"),
            ("Пловдив", "пловдив"),
            // й stays й, also when it arrives decomposed (и + combining breve).
            ("Айтос", "айтос"),
            ("А\u{0438}\u{0306}тос", "айтос"),
            ("бул. Витоша 1", "бул. витоша 1"),
        ]);
        assert_ne!(normalize_search_text("София"), "sofia");
    }

    #[test]
    fn other_folds_and_compatibility_forms() {
        check(&[
            ("Øresund", "oresund"),
            ("Þórshöfn", "thorshofn"),
            ("Æbeltoft", "aebeltoft"),
            ("Œuvre", "oeuvre"),
            ("Đakovo", "dakovo"),
            ("İstanbul", "istanbul"),
            ("Iğdır", "igdir"),
            ("ﬁnale", "finale"),
            ("ＷＡＷ０１", "waw01"),
            ("Αθήνα", "αθηνα"),
            ("ΟΔΟΣ", "οδοσ"),
        ]);
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        check(&[
            ("  a \t\n b  ", "a b"),
            ("a\u{00A0}b", "a b"),
            ("", ""),
            ("   ", ""),
            // A spacing diaeresis decomposes to a space and a mark: no stray space.
            ("a \u{00A8} b", "a b"),
        ]);
    }
}
