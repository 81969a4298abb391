//! How much text fulfillkit accepts and keeps from outside: the bounds [`Order::validate`]
//! enforces on the host's orders and that tracking applies to what providers report.
//!
//! Every text that comes in is stored (records, exceptions, events) and sent on (providers,
//! the host's triggers): a multi-megabyte tracking number or a name with control characters in
//! it must stop at the door, not travel through every copy.
//!
//! [`Order::validate`]: super::Order::validate

use crate::error::FieldError;

/// Longest id accepted, in characters: order ids, skus, directory and pickup-point ids,
/// product types, tags and custom-field keys.
pub const ID_MAX_CHARS: usize = 100;
/// Longest free text accepted or kept, in characters: names, address parts, e-mail, custom
/// field values, and carrier names, tracking numbers and pickup-point texts from providers.
pub const TEXT_MAX_CHARS: usize = 500;
/// Most street lines in one address.
pub const ADDRESS_LINES_MAX: usize = 10;
/// Most lines in one cart.
pub const CART_LINES_MAX: usize = 1_000;
/// Most tags, and most custom fields, on one order.
pub const LABELS_MAX: usize = 100;

/// The character that joins an order id and its re-export count in the number a provider
/// sees after a re-export (`SO-8~R1`). Host order ids must not contain it, so such a number
/// can never be another order's id.
pub const REEXPORT_MARKER: char = '~';

/// Records a problem when `value` is longer than `max` characters or holds a control
/// character. Cheap for the common short ASCII text: lengths are compared in bytes first.
pub(crate) fn check_text(path: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.len() > max && value.chars().count() > max {
        errors.push(FieldError::new(
            path,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        errors.push(FieldError::new(path, "must not contain control characters"));
    }
}

/// `text` trimmed and cut to `max` characters, without control characters (replaced by a
/// space): how a provider's free text is kept.
pub(crate) fn bound_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let trimmed = text.trim();
    let clean = !trimmed.chars().any(char::is_control);
    if clean && trimmed.len() <= max {
        return std::borrow::Cow::Borrowed(trimmed);
    }
    let cut: String = trimmed
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    std::borrow::Cow::Owned(cut.trim_end().to_owned())
}

/// `value` when it is a usable identifier from a provider (a tracking number, a reference):
/// not blank, at most `max` characters, no control characters. An identifier cannot be cut
/// and stay right, so an unusable one is dropped rather than shortened.
pub(crate) fn usable_id(value: &str, max: usize) -> bool {
    let value = value.trim();
    !value.is_empty()
        && (value.len() <= max || value.chars().count() <= max)
        && !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_checked_for_length_and_control_characters() {
        let mut errors = Vec::new();
        check_text("a", "fine", 10, &mut errors);
        check_text("b", &"é".repeat(10), 10, &mut errors); // 20 bytes, 10 characters
        assert!(errors.is_empty(), "{errors:?}");
        check_text("c", &"x".repeat(11), 10, &mut errors);
        check_text("d", "line\nbreak", 100, &mut errors);
        check_text("e", "nul\0", 100, &mut errors);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["c", "d", "e"]);
    }

    #[test]
    fn provider_texts_are_cut_and_cleaned() {
        assert_eq!(bound_text("  SDA  ", 10), "SDA");
        assert_eq!(bound_text("abcdefghijkl", 5), "abcde");
        assert_eq!(bound_text("a\u{0}b\tc", 10), "a b c");
        assert!(usable_id(" 383148H047484 ", 20));
        assert!(!usable_id("", 20));
        assert!(!usable_id(&"9".repeat(21), 20));
        assert!(!usable_id("12\n34", 20));
    }
}
