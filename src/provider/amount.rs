//! Money on the wire as an exact JSON number: the Wapi and ShipBob adapters write amounts
//! from a [`Decimal`] without any binary float arithmetic.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::ser::Error as _;
use serde::{Serialize, Serializer};

/// A money amount on the wire: a JSON number with at most 2 decimals, written from an exact
/// [`Decimal`] without any f64 arithmetic (Wapi §4 \[assumed], ShipBob §4.1 "money").
///
/// The value is rounded half away from zero to 2 decimals and written as its canonical text:
/// trailing zeros dropped, but `.0` kept when the decimal had a fractional part
/// (`59.00` → `59.0`, `24.50` → `24.5`, `59` → `59`, `0` → `0`), which is exactly what the
/// protocol's fixtures show. That text goes through [`serde_json::Number::from_str`]; without
/// serde_json's `arbitrary_precision` feature (this crate does not enable it) the number is held
/// as an f64 there, but only as a carrier of the text: the serializer checks that the number
/// prints back as the very same text and fails otherwise, so an amount is either written
/// exactly or not at all. With `arbitrary_precision` the text is kept verbatim, so the bytes are
/// the same either way. Amounts up to 13 integer digits are always exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Amount(pub(crate) Decimal);

impl Amount {
    /// The JSON text of the amount: rounded to 2 decimals, canonical as described above.
    pub(crate) fn json_text(self) -> String {
        let rounded = self
            .0
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        let had_fraction = rounded.scale() > 0;
        let canonical = rounded.normalize();
        let text = canonical.to_string();
        if had_fraction && canonical.scale() == 0 {
            format!("{text}.0")
        } else {
            text
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let text = self.json_text();
        let number = serde_json::Number::from_str(&text).map_err(S::Error::custom)?;
        if number.to_string() != text {
            return Err(S::Error::custom(format!(
                "amount {text} cannot be written exactly as a JSON number"
            )));
        }
        number.serialize(serializer)
    }
}
