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
pub enum FieldKind {
    /// Free text, optionally limited in length (characters).
    Text {
        /// Longest accepted text, in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
    },
    /// A whole number within optional bounds (inclusive).
    Integer {
        /// Smallest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest accepted value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// An exact decimal: a JSON number, or a string such as `"12.50"` (exact).
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaybillForm {
    /// The fields, in display order.
    pub fields: Vec<WaybillField>,
}

impl WaybillForm {
    /// A form with `fields`.
    pub fn new(fields: Vec<WaybillField>) -> Self {
        Self { fields }
    }

    /// The field with `key`.
    pub fn field(&self, key: &str) -> Option<&WaybillField> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// `waybill` with each field's declared default filled in where it has no value.
    pub fn fill_defaults(&self, waybill: &Waybill) -> Waybill {
        let mut filled = waybill.clone();
        for field in &self.fields {
            if let Some(default) = &field.default {
                if waybill.get(&field.key).is_none() {
                    filled.values.insert(field.key.clone(), default.clone());
                }
            }
        }
        filled
    }

    /// Checks `waybill` against the form, reporting every problem: a missing required field,
    /// a key the form does not declare, and each value of the wrong kind or out of bounds.
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
    /// ]);
    /// assert!(form.validate(&Waybill::new().with("day_part", "morning")).is_ok());
    /// let err = form.validate(&Waybill::new().with("day_part", "night")).unwrap_err();
    /// assert_eq!(err.field_errors()[0].path, "values.day_part");
    /// ```
    pub fn validate(&self, waybill: &Waybill) -> Result<()> {
        let mut errors = Vec::new();
        for field in &self.fields {
            let path = || format!("values.{}", field.key);
            match waybill.get(&field.key) {
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

    /// The form as a JSON Schema (draft 2020-12) object schema, one property per field, for a
    /// web form library to render.
    ///
    /// Selects are `oneOf` of `const` + `title` (so labels show); decimals accept a number or
    /// a decimal string; dates use `format: date`; time windows are objects with `from`/`to`
    /// strings matching `HH:MM`. `additionalProperties` is false, as in [`Self::validate`].
    pub fn json_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in &self.fields {
            let mut schema = kind_schema(&field.kind);
            if let Value::Object(obj) = &mut schema {
                obj.insert("title".into(), Value::String(field.label.clone()));
                if let Some(help) = &field.help {
                    obj.insert("description".into(), Value::String(help.clone()));
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
}

const TIME_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
const DECIMAL_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";

fn kind_schema(kind: &FieldKind) -> Value {
    match kind {
        FieldKind::Text { max_len } => {
            let mut s = json!({"type": "string"});
            if let Some(max) = max_len {
                s["maxLength"] = json!(max);
            }
            s
        }
        FieldKind::Integer { min, max } => {
            let mut s = json!({"type": "integer"});
            if let Some(min) = min {
                s["minimum"] = json!(min);
            }
            if let Some(max) = max {
                s["maximum"] = json!(max);
            }
            s
        }
        FieldKind::Decimal => json!({"type": ["number", "string"], "pattern": DECIMAL_PATTERN}),
        FieldKind::Bool => json!({"type": "boolean"}),
        FieldKind::Select { options } => {
            let one_of: Vec<Value> = options
                .iter()
                .map(|o| json!({"const": o.value, "title": o.label}))
                .collect();
            json!({"type": "string", "oneOf": one_of})
        }
        FieldKind::Date => json!({"type": "string", "format": "date"}),
        FieldKind::TimeWindow => json!({
            "type": "object",
            "properties": {
                "from": {"type": "string", "pattern": TIME_PATTERN},
                "to": {"type": "string", "pattern": TIME_PATTERN},
            },
            "required": ["from", "to"],
            "additionalProperties": false,
        }),
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    // chrono accepts "2024-5-1"; the schema's `format: date` does not, so insist on the length.
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    if text.len() != 5 {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M").ok()
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
            let n = value.as_i64().ok_or("must be a whole number")?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                let lo = min.map_or("-∞".into(), |m| m.to_string());
                let hi = max.map_or("∞".into(), |m| m.to_string());
                return Err(format!("must be between {lo} and {hi}"));
            }
            Ok(())
        }
        FieldKind::Decimal => match value {
            Value::Number(_) => Ok(()),
            Value::String(s) if s.parse::<Decimal>().is_ok() && !s.contains(['e', 'E']) => Ok(()),
            _ => Err("must be a decimal number".into()),
        },
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
        // Decimals may be numbers too; null counts as absent.
        let w = good().with("insured", 3.5).with("comment", Value::Null);
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
            (good().with("insured", "12,5"), "values.insured", "decimal"),
            (good().with("insured", "1e3"), "values.insured", "decimal"),
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
                good().with("window", json!({"from": "12:00", "to": "09:00"})),
                "values.window",
                "before",
            ),
            (
                good().with("window", json!({"from": "25:00", "to": "26:00"})),
                "values.window",
                "HH:MM",
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
    fn defaults_fill_missing_fields_only() {
        let form = every_kind_form();
        let filled = form.fill_defaults(&Waybill::new().with("courier", "SDA"));
        assert_eq!(filled.values["parcels"], json!(1));
        form.validate(&filled).unwrap();
        let kept = form.fill_defaults(&Waybill::new().with("parcels", 3));
        assert_eq!(kept.values["parcels"], json!(3));
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
    fn json_schema_field_by_field() {
        let schema = every_kind_form().json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["parcels", "courier"]));
        let p = &schema["properties"];
        assert_eq!(
            p["comment"],
            json!({"type": "string", "maxLength": 5, "title": "Comment", "description": "for the courier"})
        );
        assert_eq!(
            p["parcels"],
            json!({"type": "integer", "minimum": 1, "maximum": 3, "title": "Parcels", "default": 1})
        );
        assert_eq!(
            p["insured"],
            json!({"type": ["number", "string"], "pattern": DECIMAL_PATTERN, "title": "Insured value"})
        );
        assert_eq!(
            p["check"],
            json!({"type": "boolean", "title": "Check before COD"})
        );
        assert_eq!(
            p["courier"],
            json!({"type": "string", "title": "Courier", "oneOf": [
                {"const": "SDA", "title": "SDA"},
                {"const": "DPD PL", "title": "DPD Poland"}
            ]})
        );
        assert_eq!(
            p["date"],
            json!({"type": "string", "format": "date", "title": "Delivery date"})
        );
        assert_eq!(p["window"]["type"], "object");
        assert_eq!(p["window"]["required"], json!(["from", "to"]));
        assert_eq!(p["window"]["properties"]["from"]["pattern"], TIME_PATTERN);
        assert_eq!(p.as_object().unwrap().len(), 7);
    }

    #[test]
    fn typed_accessors() {
        let w = good();
        assert_eq!(w.text("courier"), Some("DPD PL"));
        assert_eq!(w.flag("check"), Some(true));
        assert_eq!(w.date("date"), NaiveDate::from_ymd_opt(2024, 5, 10));
        assert_eq!(w.text("missing"), None);
    }
}
