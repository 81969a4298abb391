//! Stock levels as the provider reports them, and how they are shown: exact counts or levels,
//! per view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::Sku;
use crate::error::{Error, FieldError, Result};

/// The stock of one sku at one provider account (and warehouse, when the provider says).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StockLevel {
    /// The product.
    pub sku: Sku,
    /// The provider's warehouse code, when the level is per warehouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    /// Units that can be ordered now. Can be negative on test accounts.
    pub available: i64,
    /// Units held by open orders, if reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,
    /// Units on their way into the warehouse, if reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_transit: Option<i64>,
}

impl StockLevel {
    /// A level with only the available quantity.
    pub fn new(sku: impl Into<Sku>, available: i64) -> Self {
        Self {
            sku: sku.into(),
            warehouse: None,
            available,
            reserved: None,
            in_transit: None,
        }
    }
}

/// A coarse stock level, for people who should not see exact counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing available (zero or less).
    OutOfStock,
    /// From 1 up to [`StockThresholds::few_max`].
    Few,
    /// Above `few_max` and below [`StockThresholds::many_min`].
    InStock,
    /// [`StockThresholds::many_min`] or more.
    Many,
}

/// Where [`Level`]s begin: `1..=few_max` is `Few`, `many_min..` is `Many`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawThresholds")]
pub struct StockThresholds {
    few_max: i64,
    many_min: i64,
}

#[derive(Deserialize)]
struct RawThresholds {
    few_max: i64,
    many_min: i64,
}

impl TryFrom<RawThresholds> for StockThresholds {
    type Error = Error;
    fn try_from(raw: RawThresholds) -> Result<Self> {
        StockThresholds::new(raw.few_max, raw.many_min)
    }
}

impl Default for StockThresholds {
    /// `Few` up to 10, `Many` from 100.
    fn default() -> Self {
        Self {
            few_max: 10,
            many_min: 100,
        }
    }
}

impl StockThresholds {
    /// Thresholds with `Few` for `1..=few_max` and `Many` from `many_min`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] unless `0 <= few_max < many_min`.
    pub fn new(few_max: i64, many_min: i64) -> Result<Self> {
        let mut errors = Vec::new();
        if few_max < 0 {
            errors.push(FieldError::new("few_max", "must not be negative"));
        }
        if many_min <= few_max {
            errors.push(FieldError::new("many_min", "must be greater than few_max"));
        }
        if errors.is_empty() {
            Ok(Self { few_max, many_min })
        } else {
            Err(Error::validation("stock thresholds", errors))
        }
    }

    /// Largest quantity shown as `Few`.
    pub fn few_max(&self) -> i64 {
        self.few_max
    }

    /// Smallest quantity shown as `Many`.
    pub fn many_min(&self) -> i64 {
        self.many_min
    }

    /// The level of `available` units.
    pub fn level(&self, available: i64) -> Level {
        if available <= 0 {
            Level::OutOfStock
        } else if available <= self.few_max {
            Level::Few
        } else if available >= self.many_min {
            Level::Many
        } else {
            Level::InStock
        }
    }
}

/// How much of the stock a viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockView {
    /// Nothing (the default).
    #[default]
    Hidden,
    /// Only the [`Level`].
    Levels,
    /// The exact available quantity.
    Exact,
}

/// Stock as shown to one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockDisplay {
    /// Nothing to show.
    Hidden,
    /// The level only.
    Level(Level),
    /// The exact count.
    Exact {
        /// Units available.
        available: i64,
    },
}

impl StockView {
    /// What this view shows of `stock` under `thresholds`.
    pub fn render(self, stock: &StockLevel, thresholds: &StockThresholds) -> StockDisplay {
        match self {
            StockView::Hidden => StockDisplay::Hidden,
            StockView::Levels => StockDisplay::Level(thresholds.level(stock.available)),
            StockView::Exact => StockDisplay::Exact {
                available: stock.available,
            },
        }
    }
}

/// Who sees how much of an instance's stock: thresholds for levels, a view per role (the
/// host's role names), and the view of every other role.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StockPolicy {
    /// Where levels begin.
    pub thresholds: StockThresholds,
    /// Role → view.
    pub views: BTreeMap<String, StockView>,
    /// The view of a role not in `views` (default [`StockView::Hidden`]: nothing leaks to a
    /// role nobody thought of).
    pub default_view: StockView,
}

impl StockPolicy {
    /// A policy with `thresholds`, no roles, everything hidden by default.
    pub fn new(thresholds: StockThresholds) -> Self {
        Self {
            thresholds,
            ..Self::default()
        }
    }

    /// Gives `role` the view `view`.
    pub fn with_view(mut self, role: impl Into<String>, view: StockView) -> Self {
        self.views.insert(role.into(), view);
        self
    }

    /// Sets the view of roles not listed.
    pub fn with_default_view(mut self, view: StockView) -> Self {
        self.default_view = view;
        self
    }

    /// The view of `role`.
    pub fn view_for(&self, role: &str) -> StockView {
        self.views.get(role).copied().unwrap_or(self.default_view)
    }

    /// What `role` sees of `stock`.
    pub fn render(&self, role: &str, stock: &StockLevel) -> StockDisplay {
        self.view_for(role).render(stock, &self.thresholds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_at_each_boundary() {
        let t = StockThresholds::new(5, 50).unwrap();
        let cases = [
            (-3, Level::OutOfStock),
            (0, Level::OutOfStock),
            (1, Level::Few),
            (5, Level::Few),
            (6, Level::InStock),
            (49, Level::InStock),
            (50, Level::Many),
            (10_000, Level::Many),
        ];
        for (qty, level) in cases {
            assert_eq!(t.level(qty), level, "{qty}");
        }
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(StockThresholds::new(10, 10).is_err());
        let err = StockThresholds::new(-1, -2).unwrap_err();
        assert_eq!(err.field_errors().len(), 2);
        let bad: std::result::Result<StockThresholds, _> =
            serde_json::from_str(r#"{"few_max": 20, "many_min": 5}"#);
        assert!(bad.is_err());
        let good: StockThresholds =
            serde_json::from_str(r#"{"few_max": 2, "many_min": 5}"#).unwrap();
        assert_eq!(good.level(3), Level::InStock);
    }

    #[test]
    fn three_roles_three_views() {
        let policy = StockPolicy::new(StockThresholds::new(20, 100).unwrap())
            .with_view("warehouse", StockView::Exact)
            .with_view("sales", StockView::Levels);
        let s = StockLevel::new("A", 15);
        assert_eq!(
            policy.render("warehouse", &s),
            StockDisplay::Exact { available: 15 }
        );
        assert_eq!(policy.render("sales", &s), StockDisplay::Level(Level::Few));
        assert_eq!(policy.render("courier", &s), StockDisplay::Hidden);
        let open = policy.with_default_view(StockView::Levels);
        assert_eq!(open.render("courier", &s), StockDisplay::Level(Level::Few));
    }

    #[test]
    fn views_render() {
        let t = StockThresholds::default();
        let s = StockLevel::new("A", 15);
        assert_eq!(
            StockView::Exact.render(&s, &t),
            StockDisplay::Exact { available: 15 }
        );
        assert_eq!(
            StockView::Levels.render(&s, &t),
            StockDisplay::Level(Level::InStock)
        );
        assert_eq!(StockView::Hidden.render(&s, &t), StockDisplay::Hidden);
    }
}
