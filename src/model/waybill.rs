//! The provider-specific waybill: the form a provider declares ([`WaybillForm`]) and the values
//! filled in for one order ([`Waybill`]).
//!
//! Values are JSON values, exactly as a web form in the order card sends them; the form checks
//! them ([`WaybillForm::validate`]) and describes itself as JSON Schema
//! ([`WaybillForm::json_schema`]) so the card can render it.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ids::InstanceId;
use crate::error::{Error, FieldError, Result};

/// The values of a provider's waybill fields for one order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Waybill {
    /// The instance the values are meant for, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceId>,
    /// Field key → value.
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
}

impl Waybill {
    /// An empty waybill.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.values.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if set and not `null`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// The text of `key`, if it is a non-empty string.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The boolean of `key`, if it is one.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The date of `key`, if it is a `YYYY-MM-DD` string.
    pub fn date(&self, key: &str) -> Option<NaiveDate> {
        self.text(key).and_then(parse_date)
    }

    /// The whole number of `key` as JSON Schema counts integers (`2`, `2.0`, `2e0`), within
    /// ±[`INTEGER_LIMIT`].
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(json_integer)
    }

    /// The exact decimal of `key`, if it is a decimal string as [`FieldKind::Decimal`]
    /// accepts.
    pub fn decimal(&self, key: &str) -> Option<Decimal> {
        self.text(key).and_then(parse_decimal)
    }

    /// `values` of `self` over those of `defaults`: a key missing here (or `null`) takes the
    /// default's value.
    pub fn over(&self, defaults: &Waybill) -> Waybill {
        let mut merged = defaults.clone();
        merged.instance = self.instance.clone().or(merged.instance);
        for (key, value) in &self.values {
            if !value.is_null() {
                merged.values.insert(key.clone(), value.clone());
            }
        }
        merged
    }
}

/// The kind of one waybill field, with its constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// Free text, optionally limited in length (characters).
    Text {
        /// Longest accepted text, in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
    },
    /// A whole number within optional bounds (inclusive), and within ±[`INTEGER_LIMIT`].
    Integer {
        /// Smallest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// An exact decimal, as text: `"12.50"`, `"-3"` — at most 20 digits before the point and
    /// 8 after (JSON numbers are not exact, so they are refused).
    Decimal,
    /// Yes or no.
    Bool,
    /// One of the listed options (by value).
    Select {
        /// The options, in display order.
        options: Vec<SelectOption>,
    },
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A time window within a day: `{"from": "HH:MM", "to": "HH:MM"}`, `from` before `to`.
    TimeWindow,
}

/// One option of a select field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// The value stored in the waybill and sent to the provider.
    pub value: String,
    /// What the operator sees.
    pub label: String,
}

impl SelectOption {
    /// An option whose label is its value.
    pub fn plain(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            label: value.clone(),
            value,
        }
    }
}

/// One declared field of a waybill form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaybillField {
    /// Key in [`Waybill::values`].
    pub key: String,
    /// Label shown in the order card.
    pub label: String,
    /// Kind and constraints.
    pub kind: FieldKind,
    /// Whether a value must be present (after defaults are applied).
    #[serde(default)]
    pub required: bool,
    /// Value used when the operator gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Help text shown under the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl WaybillField {
    /// An optional field without default or help.
    pub fn new(key: impl Into<String>, label: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            kind,
            required: false,
            default: None,
            help: None,
        }
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default value.
    pub fn with_default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Sets the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The waybill fields a provider declares.
///
/// A form cannot be built wrong: [`WaybillForm::new`] (and deserializing one) refuses a
/// duplicate field key, a select without options or with a repeated option, and a default
/// that breaks its own field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawForm")]
pub struct WaybillForm {
    /// The fields, in display order.
    pub fields: Vec<WaybillField>,
}

/// A form as it is written, before [`WaybillForm::new`] checks it.
#[derive(Deserialize)]
struct RawForm {
    fields: Vec<WaybillField>,
}

impl TryFrom<RawForm> for WaybillForm {
    type Error = Error;

    fn try_from(raw: RawForm) -> Result<Self> {
        WaybillForm::new(raw.fields)
    }
}

/// Largest magnitude of an integer field: 2^53 − 1, the largest integer every JSON
/// implementation (JavaScript's numbers included) holds exactly. The schema carries it as
/// `minimum` / `maximum`, so a web card and fulfillkit refuse the same values.
pub const INTEGER_LIMIT: i64 = 9_007_199_254_740_991;

impl WaybillForm {
    /// A form with `fields`, checked.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] naming every problem: a duplicate field key, a select without
    /// options, a repeated option value, a default that its own field refuses.
    pub fn new(fields: Vec<WaybillField>) -> Result<Self> {
        let mut errors = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            let path = |what: &str| format!("fields[{i}]{what}");
            if field.key.trim().is_empty() {
                errors.push(FieldError::new(path(".key"), "must not be empty"));
            }
            if fields[..i].iter().any(|f| f.key == field.key) {
                errors.push(FieldError::new(
                    path(".key"),
                    format!("duplicate field key {:?}", field.key),
                ));
            }
            if let FieldKind::Select { options } = &field.kind {
                if options.is_empty() {
                    errors.push(FieldError::new(path(".kind"), "a select needs options"));
                }
                for (j, option) in options.iter().enumerate() {
                    if options[..j].iter().any(|o| o.value == option.value) {
                        errors.push(FieldError::new(
                            path(&format!(".kind.options[{j}]")),
                            format!("duplicate option {:?}", option.value),
                        ));
                    }
                }
            }
            if let FieldKind::Integer {
                min: Some(min),
                max: Some(max),
            } = field.kind
                && min > max
            {
                errors.push(FieldError::new(path(".kind"), "min must not exceed max"));
            }
            if let Some(default) = field.default.as_ref().filter(|d| !d.is_null())
                && let Err(reason) = check_value(&field.kind, default)
            {
                errors.push(FieldError::new(
                    path(".default"),
                    format!("the default breaks its field: {reason}"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self { fields })
        } else {
            Err(Error::validation("waybill form", errors))
        }
    }

    /// The field with `key`.
    pub fn field(&self, key: &str) -> Option<&WaybillField> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The form with `defaults` (an instance's waybill defaults) as its fields' defaults, so
    /// that the card shows — and a renderer pre-fills — what the instance would send. Keys
    /// the form does not declare are left out.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when a default breaks its field.
    pub fn with_defaults(&self, defaults: &Waybill) -> Result<WaybillForm> {
        let mut fields = self.fields.clone();
        for field in &mut fields {
            if let Some(value) = defaults.get(&field.key) {
                field.default = Some(value.clone());
            }
        }
        WaybillForm::new(fields)
    }

    /// `waybill` with each field's declared default filled in where it has no value.
    pub fn fill_defaults(&self, waybill: &Waybill) -> Waybill {
        let mut filled = waybill.clone();
        for field in &self.fields {
            if let Some(default) = &field.default
                && waybill.get(&field.key).is_none()
            {
                filled.values.insert(field.key.clone(), default.clone());
            }
        }
        filled
    }

    /// Checks `waybill` against the form, reporting every problem: a missing required field,
    /// a key the form does not declare, and each value of the wrong kind or out of bounds.
    ///
    /// It agrees with [`Self::json_schema`] on every value, except for the one rule a schema
    /// cannot express: a time window's `from` must be before its `to` (the schema says so in
    /// the window's description). `null` counts as absent.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] with `values.<key>` paths.
    ///
    /// # Examples
    ///
    /// ```
    /// use fulfillkit::model::{FieldKind, SelectOption, Waybill, WaybillField, WaybillForm};
    ///
    /// let form = WaybillForm::new(vec![
    ///     WaybillField::new("day_part", "Day part", FieldKind::Select {
    ///         options: vec![SelectOption::plain("morning"), SelectOption::plain("evening")],
    ///     }).required(),
    /// ])?;
    /// assert!(form.validate(&Waybill::new().with("day_part", "morning")).is_ok());
    /// let err = form.validate(&Waybill::new().with("day_part", "night")).unwrap_err();
    /// assert_eq!(err.field_errors()[0].path, "values.day_part");
    /// # Ok::<(), fulfillkit::Error>(())
    /// ```
    pub fn validate(&self, waybill: &Waybill) -> Result<()> {
        let mut errors = Vec::new();
        for field in &self.fields {
            let path = || format!("values.{}", field.key);
            let value = waybill
                .get(&field.key)
                // An optional window left empty by a form renderer is no window.
                .filter(|v| {
                    field.required
                        || !matches!(field.kind, FieldKind::TimeWindow)
                        || v.as_object().is_none_or(|o| !o.is_empty())
                });
            match value {
                None if field.required => errors.push(FieldError::new(path(), "is required")),
                None => {}
                Some(value) => {
                    if let Err(reason) = check_value(&field.kind, value) {
                        errors.push(FieldError::new(path(), reason));
                    }
                }
            }
        }
        for key in waybill.values.keys() {
            if self.field(key).is_none() {
                errors.push(FieldError::new(
                    format!("values.{key}"),
                    "is not a field of this form",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation("waybill", errors))
        }
    }

    /// The form as a JSON Schema (draft 2020-12) object schema, one property per field in the
    /// declared order, for a web form library to render. Validate with a 2020-12 validator
    /// with format assertion (Ajv: `Ajv2020` plus `ajv-formats`); it compiles in Ajv's strict
    /// mode.
    ///
    /// - Optional fields also accept `null`; an optional select offers an empty choice first
    ///   (`{"const": null}`), so a renderer that starts a select on its first choice sends
    ///   nothing the operator did not pick. Selects are `oneOf` of `const` + `title`.
    /// - Texts carry `maxLength`; integers `minimum` / `maximum` (at most ±[`INTEGER_LIMIT`]);
    ///   decimals are strings of at most 20 digits before and 8 after the point (exact,
    ///   unlike JSON numbers); dates are `YYYY-MM-DD` (`format: date` and a pattern).
    /// - A time window is an object with `from` and `to` (`HH:MM`, titled "From" / "To");
    ///   both are required in a required window, and in an optional one each requires the
    ///   other (`dependentRequired`). That `from` is before `to` the schema cannot say: its
    ///   description does.
    /// - Defaults (the form's, or an instance's via [`Self::with_defaults`]) are `default`.
    ///   `additionalProperties` is false, as in [`Self::validate`].
    pub fn json_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in &self.fields {
            let mut schema = kind_schema(&field.kind, field.required);
            if let Value::Object(obj) = &mut schema {
                obj.insert("title".into(), Value::String(field.label.clone()));
                let mut description = field.help.clone().unwrap_or_default();
                if matches!(field.kind, FieldKind::TimeWindow) {
                    if !description.is_empty() {
                        description.push_str(". ");
                    }
                    description.push_str("From must be before to");
                }
                if !description.is_empty() {
                    obj.insert("description".into(), Value::String(description));
                }
                if let Some(default) = &field.default {
                    obj.insert("default".into(), default.clone());
                }
            }
            properties.insert(field.key.clone(), schema);
            if field.required {
                required.push(Value::String(field.key.clone()));
            }
        }
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Rendering hints for react-jsonschema-form and similar libraries: `ui:order`, the
    /// declared field order (JSON objects carry no order of their own).
    pub fn ui_schema(&self) -> Value {
        let order: Vec<&str> = self.fields.iter().map(|f| f.key.as_str()).collect();
        json!({ "ui:order": order })
    }
}

const TIME_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
/// At most 20 digits before the point and 8 after: every such value fits an exact decimal.
const DECIMAL_PATTERN: &str = "^-?[0-9]{1,20}(\\.[0-9]{1,8})?$";

/// The JSON type of a field: `ty`, or `[ty, "null"]` when the field is optional.
fn nullable(ty: &str, required: bool) -> Value {
    if required {
        json!(ty)
    } else {
        json!([ty, "null"])
    }
}

fn kind_schema(kind: &FieldKind, required: bool) -> Value {
    match kind {
        FieldKind::Text { max_len } => {
            let mut s = json!({"type": nullable("string", required)});
            if let Some(max) = max_len {
                s["maxLength"] = json!(max);
            }
            s
        }
        FieldKind::Integer { min, max } => json!({
            "type": nullable("integer", required),
            "minimum": min.unwrap_or(-INTEGER_LIMIT).max(-INTEGER_LIMIT),
            "maximum": max.unwrap_or(INTEGER_LIMIT).min(INTEGER_LIMIT),
        }),
        FieldKind::Decimal => json!({
            "type": nullable("string", required),
            "pattern": DECIMAL_PATTERN,
        }),
        FieldKind::Bool => json!({"type": nullable("boolean", required)}),
        FieldKind::Select { options } => {
            let mut one_of: Vec<Value> = Vec::with_capacity(options.len() + 1);
            if !required {
                one_of.push(json!({"const": null, "title": "—"}));
            }
            one_of.extend(
                options
                    .iter()
                    .map(|o| json!({"const": o.value, "title": o.label})),
            );
            json!({"type": nullable("string", required), "oneOf": one_of})
        }
        FieldKind::Date => json!({
            "type": nullable("string", required),
            "format": "date",
            "pattern": DATE_PATTERN,
        }),
        FieldKind::TimeWindow => {
            let mut s = json!({
                "type": nullable("object", required),
                "properties": {
                    "from": {"type": "string", "title": "From", "pattern": TIME_PATTERN},
                    "to": {"type": "string", "title": "To", "pattern": TIME_PATTERN},
                },
                "additionalProperties": false,
            });
            if required {
                s["required"] = json!(["from", "to"]);
            } else {
                s["dependentRequired"] = json!({"from": ["to"], "to": ["from"]});
            }
            s
        }
    }
}

/// `YYYY-MM-DD` exactly: four digits, two, two, a real date. chrono alone accepts signs,
/// spaces and single digits (`+024-05-10`, ` 2024-5-1`).
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
        return None;
    }
    if !digits(8..10) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    NaiveDate::from_ymd_opt(number(0..4) as i32, number(5..7), number(8..10))
}

/// `HH:MM` exactly, 00:00 to 23:59.
fn parse_time(text: &str) -> Option<NaiveTime> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let hours = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minutes = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    NaiveTime::from_hms_opt(hours, minutes, 0)
}

/// The integer a JSON value holds, as JSON Schema counts integers (`2`, `2.0` and `2e0`
/// alike), within ±[`INTEGER_LIMIT`].
fn json_integer(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    let int = match n.as_i64() {
        Some(i) => i,
        None => {
            let f = n.as_f64()?;
            if f.fract() != 0.0 || f.abs() > INTEGER_LIMIT as f64 {
                return None;
            }
            f as i64
        }
    };
    (int.abs() <= INTEGER_LIMIT).then_some(int)
}

/// An exact decimal string: an optional minus, 1 to 20 digits, optionally a point and 1 to 8
/// digits.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole, 20) || !fraction.is_none_or(|f| digits(f, 8)) {
        return None;
    }
    text.parse().ok()
}

fn check_value(kind: &FieldKind, value: &Value) -> std::result::Result<(), String> {
    match kind {
        FieldKind::Text { max_len } => {
            let text = value.as_str().ok_or("must be text")?;
            match max_len {
                Some(max) if text.chars().count() > *max => {
                    Err(format!("must be at most {max} characters"))
                }
                _ => Ok(()),
            }
        }
        FieldKind::Integer { min, max } => {
            let n = json_integer(value).ok_or_else(|| {
                format!("must be a whole number between -{INTEGER_LIMIT} and {INTEGER_LIMIT}")
            })?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                let lo = min.map_or("-∞".into(), |m| m.to_string());
                let hi = max.map_or("∞".into(), |m| m.to_string());
                return Err(format!("must be between {lo} and {hi}"));
            }
            Ok(())
        }
        FieldKind::Decimal => value
            .as_str()
            .and_then(parse_decimal)
            .map(|_| ())
            .ok_or_else(|| {
                "must be a decimal number as text: up to 20 digits, a point and up to 8 digits"
                    .into()
            }),
        FieldKind::Bool => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "must be true or false".into()),
        FieldKind::Select { options } => {
            let text = value.as_str().ok_or("must be one of the options")?;
            if options.iter().any(|o| o.value == text) {
                Ok(())
            } else {
                let allowed: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
                Err(format!("must be one of: {}", allowed.join(", ")))
            }
        }
        FieldKind::Date => value
            .as_str()
            .and_then(parse_date)
            .map(|_| ())
            .ok_or_else(|| "must be a date YYYY-MM-DD".into()),
        FieldKind::TimeWindow => {
            let obj = value
                .as_object()
                .ok_or("must be an object with from and to")?;
            if let Some(extra) = obj.keys().find(|k| *k != "from" && *k != "to") {
                return Err(format!("has no part {extra:?}: only from and to"));
            }
            let time = |k: &str| obj.get(k).and_then(Value::as_str).and_then(parse_time);
            match (time("from"), time("to")) {
                (Some(from), Some(to)) if from < to => Ok(()),
                (Some(_), Some(_)) => Err("from must be before to".into()),
                _ => Err("from and to must be times HH:MM".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind_form() -> WaybillForm {
        WaybillForm::new(vec![
            WaybillField::new("comment", "Comment", FieldKind::Text { max_len: Some(5) })
                .with_help("for the courier"),
            WaybillField::new(
                "parcels",
                "Parcels",
                FieldKind::Integer {
                    min: Some(1),
                    max: Some(3),
                },
            )
            .required()
            .with_default(1),
            WaybillField::new("insured", "Insured value", FieldKind::Decimal),
            WaybillField::new("check", "Check before COD", FieldKind::Bool),
            WaybillField::new(
                "courier",
                "Courier",
                FieldKind::Select {
                    options: vec![
                        SelectOption::plain("SDA"),
                        SelectOption {
                            value: "DPD PL".into(),
                            label: "DPD Poland".into(),
                        },
                    ],
                },
            )
            .required(),
            WaybillField::new("date", "Delivery date", FieldKind::Date),
            WaybillField::new("window", "Window", FieldKind::TimeWindow),
        ])
        .unwrap()
    }

    fn good() -> Waybill {
        Waybill::new()
            .with("comment", "ring")
            .with("parcels", 2)
            .with("insured", "12.50")
            .with("check", true)
            .with("courier", "DPD PL")
            .with("date", "2024-05-10")
            .with("window", json!({"from": "09:00", "to": "12:30"}))
    }

    fn single(w: &Waybill) -> (String, String) {
        let err = every_kind_form().validate(w).unwrap_err();
        let fields = err.field_errors();
        assert_eq!(fields.len(), 1, "{fields:?}");
        (fields[0].path.clone(), fields[0].reason.clone())
    }

    #[test]
    fn good_waybill_passes() {
        every_kind_form().validate(&good()).unwrap();
        // null counts as absent; whole numbers may be written as JSON Schema allows; an
        // optional window left empty by a renderer is no window.
        let w = good()
            .with("comment", Value::Null)
            .with("parcels", 2.0)
            .with("window", json!({}));
        every_kind_form().validate(&w).unwrap();
        let w = good().with("parcels", json!(1e0));
        every_kind_form().validate(&w).unwrap();
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(Waybill, &str, &str)> = vec![
            (
                good().with("comment", "too long"),
                "values.comment",
                "at most 5",
            ),
            (good().with("comment", 5), "values.comment", "text"),
            (
                good().with("parcels", 4),
                "values.parcels",
                "between 1 and 3",
            ),
            (
                good().with("parcels", 1.5),
                "values.parcels",
                "whole number",
            ),
            (
                good().with("parcels", json!(1e300)),
                "values.parcels",
                "whole number",
            ),
            (good().with("insured", "12,5"), "values.insured", "decimal"),
            (good().with("insured", "1e3"), "values.insured", "decimal"),
            (good().with("insured", "+1"), "values.insured", "decimal"),
            (good().with("insured", ".5"), "values.insured", "decimal"),
            (good().with("insured", "1_000"), "values.insured", "decimal"),
            (good().with("insured", 3.5), "values.insured", "decimal"),
            (
                good().with("insured", "123456789012345678901"),
                "values.insured",
                "decimal",
            ),
            (good().with("check", "yes"), "values.check", "true or false"),
            (
                good().with("courier", "UPS"),
                "values.courier",
                "one of: SDA, DPD PL",
            ),
            (
                good().with("date", "2024-02-30"),
                "values.date",
                "YYYY-MM-DD",
            ),
            (good().with("date", "2024-5-1"), "values.date", "YYYY-MM-DD"),
            (
                good().with("date", " 2024-5-01"),
                "values.date",
                "YYYY-MM-DD",
            ),
            (
                good().with("date", "+024-05-10"),
                "values.date",
                "YYYY-MM-DD",
            ),
            (
                good().with("window", json!({"from": "12:00", "to": "09:00"})),
                "values.window",
                "before",
            ),
            (
                good().with("window", json!({"from": "25:00", "to": "26:00"})),
                "values.window",
                "HH:MM",
            ),
            (
                good().with("window", json!({"from": "09: 0", "to": "10:00"})),
                "values.window",
                "HH:MM",
            ),
            (
                good().with(
                    "window",
                    json!({"from": "09:00", "to": "10:00", "tz": "CET"}),
                ),
                "values.window",
                "only from and to",
            ),
            (good().with("window", "9-12"), "values.window", "object"),
            (good().with("color", "red"), "values.color", "not a field"),
        ];
        for (waybill, path, reason) in cases {
            let (got_path, got_reason) = single(&waybill);
            assert_eq!(got_path, path);
            assert!(
                got_reason.contains(reason),
                "{got_reason:?} lacks {reason:?}"
            );
        }
        let mut missing = good();
        missing.values.remove("courier");
        assert_eq!(
            single(&missing),
            ("values.courier".to_string(), "is required".to_string())
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let w = Waybill::new()
            .with("comment", "far too long")
            .with("parcels", 0)
            .with("extra", 1);
        let err = every_kind_form().validate(&w).unwrap_err();
        let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "values.comment",
                "values.parcels",
                "values.courier",
                "values.extra"
            ]
        );
    }

    #[test]
    fn forms_cannot_be_built_wrong() {
        let select = |options: Vec<SelectOption>| FieldKind::Select { options };
        let err = WaybillForm::new(vec![
            WaybillField::new("a", "A", FieldKind::Bool),
            WaybillField::new("a", "A again", FieldKind::Bool),
            WaybillField::new("b", "B", select(vec![])),
            WaybillField::new(
                "c",
                "C",
                select(vec![SelectOption::plain("x"), SelectOption::plain("x")]),
            ),
            WaybillField::new("d", "D", FieldKind::Date).with_default("tomorrow"),
        ])
        .unwrap_err();
        let paths: Vec<&str> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "fields[1].key",
                "fields[2].kind",
                "fields[3].kind.options[1]",
                "fields[4].default"
            ]
        );
        // Deserializing checks the same.
        let json = r#"{"fields":[{"key":"a","label":"A","kind":{"type":"select","options":[]}}]}"#;
        assert!(serde_json::from_str::<WaybillForm>(json).is_err());
    }

    #[test]
    fn defaults_fill_missing_fields_only() {
        let form = every_kind_form();
        let filled = form.fill_defaults(&Waybill::new().with("courier", "SDA"));
        assert_eq!(filled.values["parcels"], json!(1));
        form.validate(&filled).unwrap();
        let kept = form.fill_defaults(&Waybill::new().with("parcels", 3));
        assert_eq!(kept.values["parcels"], json!(3));
    }

    #[test]
    fn instance_defaults_become_the_schema_defaults() {
        let form = every_kind_form()
            .with_defaults(&Waybill::new().with("courier", "SDA").with("unknown", 1))
            .unwrap();
        assert_eq!(form.field("courier").unwrap().default, Some(json!("SDA")));
        assert_eq!(
            form.json_schema()["properties"]["courier"]["default"],
            "SDA"
        );
        assert!(
            every_kind_form()
                .with_defaults(&Waybill::new().with("courier", "UPS"))
                .is_err()
        );
    }

    #[test]
    fn operator_values_win_over_instance_defaults() {
        let defaults = Waybill::new().with("courier", "SDA").with("comment", "x");
        let operator = Waybill::new()
            .with("courier", "DPD PL")
            .with("comment", Value::Null);
        let merged = operator.over(&defaults);
        assert_eq!(merged.text("courier"), Some("DPD PL"));
        assert_eq!(merged.text("comment"), Some("x"));
    }

    #[test]
    fn json_schema_field_by_field_in_the_declared_order() {
        let form = every_kind_form();
        let schema = form.json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["parcels", "courier"]));
        let p = &schema["properties"];
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "comment", "parcels", "insured", "check", "courier", "date", "window"
            ]
        );
        assert_eq!(form.ui_schema()["ui:order"], json!(keys));
        assert_eq!(
            p["comment"],
            json!({"type": ["string", "null"], "maxLength": 5, "title": "Comment", "description": "for the courier"})
        );
        assert_eq!(
            p["parcels"],
            json!({"type": "integer", "minimum": 1, "maximum": 3, "title": "Parcels", "default": 1})
        );
        assert_eq!(
            p["insured"],
            json!({"type": ["string", "null"], "pattern": DECIMAL_PATTERN, "title": "Insured value"})
        );
        assert_eq!(
            p["check"],
            json!({"type": ["boolean", "null"], "title": "Check before COD"})
        );
        // Required: no empty choice.
        assert_eq!(
            p["courier"],
            json!({"type": "string", "title": "Courier", "oneOf": [
                {"const": "SDA", "title": "SDA"},
                {"const": "DPD PL", "title": "DPD Poland"}
            ]})
        );
        assert_eq!(
            p["date"],
            json!({"type": ["string", "null"], "format": "date", "pattern": DATE_PATTERN, "title": "Delivery date"})
        );
        assert_eq!(p["window"]["type"], json!(["object", "null"]));
        assert_eq!(
            p["window"]["dependentRequired"],
            json!({"from": ["to"], "to": ["from"]})
        );
        assert_eq!(p["window"]["properties"]["from"]["title"], "From");
        assert_eq!(p["window"]["properties"]["from"]["pattern"], TIME_PATTERN);
        assert_eq!(p["window"]["description"], "From must be before to");
    }

    #[test]
    fn an_optional_select_starts_with_an_empty_choice() {
        let form = WaybillForm::new(vec![WaybillField::new(
            "day_part",
            "Day part",
            FieldKind::Select {
                options: vec![SelectOption::plain("morning")],
            },
        )])
        .unwrap();
        assert_eq!(
            form.json_schema()["properties"]["day_part"]["oneOf"][0],
            json!({"const": null, "title": "—"})
        );
    }

    #[test]
    fn typed_accessors() {
        let w = good().with("parcels", 2.0);
        assert_eq!(w.text("courier"), Some("DPD PL"));
        assert_eq!(w.flag("check"), Some(true));
        assert_eq!(w.date("date"), NaiveDate::from_ymd_opt(2024, 5, 10));
        assert_eq!(w.integer("parcels"), Some(2));
        assert_eq!(w.decimal("insured"), Some(Decimal::new(1250, 2)));
        assert_eq!(w.text("missing"), None);
    }
}
