//! Routing: ordered rules, each a condition → an instance; the first match wins.
//!
//! Conditions are serde data so the host can store and edit them; [`Condition::Predicate`] is
//! the escape hatch for what only code can express (it cannot be serialized).

use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{InstanceId, Order, Payment, Sku};

/// The kind of payment, for conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// [`Payment::Prepaid`].
    Prepaid,
    /// [`Payment::CashOnDelivery`].
    CashOnDelivery,
}

impl PaymentKind {
    /// The kind of `payment`.
    pub fn of(payment: &Payment) -> Self {
        match payment {
            Payment::Prepaid => PaymentKind::Prepaid,
            Payment::CashOnDelivery { .. } => PaymentKind::CashOnDelivery,
        }
    }
}

/// A condition written in Rust, for what the serde conditions cannot say.
#[derive(Clone)]
pub struct Predicate {
    name: String,
    test: Arc<dyn Fn(&Order) -> bool + Send + Sync>,
}

impl Predicate {
    /// A predicate named `name` (shown in `Debug` and error messages).
    pub fn new(
        name: impl Into<String>,
        test: impl Fn(&Order) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            test: Arc::new(test),
        }
    }

    /// The predicate's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Predicate({:?})", self.name)
    }
}

/// Two predicates are equal when they are the same closure.
impl PartialEq for Predicate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.test, &other.test)
    }
}

/// A condition on an order.
///
/// ```
/// use fulfillkit::orchestrator::{Condition, PaymentKind};
///
/// let json = r#"{"kind":"all","conditions":[
///     {"kind":"country_in","countries":["IT","ES"]},
///     {"kind":"payment_is","payment":"cash_on_delivery"}]}"#;
/// let condition: Condition = serde_json::from_str(json).unwrap();
/// assert_eq!(condition, Condition::all([
///     Condition::country(["IT", "ES"]),
///     Condition::payment(PaymentKind::CashOnDelivery),
/// ]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// Every order.
    Always,
    /// The shipping country is one of these (ISO alpha-2, case-insensitive).
    CountryIn {
        /// Countries.
        countries: Vec<String>,
    },
    /// The payment is of this kind.
    PaymentIs {
        /// The kind.
        payment: PaymentKind,
    },
    /// At least one cart line has one of these skus.
    AnySkuIn {
        /// Skus.
        skus: Vec<Sku>,
    },
    /// Every cart line has one of these skus.
    AllSkusIn {
        /// Skus.
        skus: Vec<Sku>,
    },
    /// At least one cart line has one of these product types.
    ProductTypeIn {
        /// Product types.
        types: Vec<String>,
    },
    /// The order total is within bounds (inclusive; a missing bound is open).
    TotalBetween {
        /// Lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<Decimal>,
        /// Upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<Decimal>,
    },
    /// The order has this tag.
    HasTag {
        /// The tag.
        tag: String,
    },
    /// The order's custom field `key` equals `value`.
    CustomFieldEquals {
        /// Field name.
        key: String,
        /// Expected value.
        value: String,
    },
    /// Every condition holds (true when empty).
    All {
        /// Conditions.
        conditions: Vec<Condition>,
    },
    /// At least one condition holds (false when empty).
    Any {
        /// Conditions.
        conditions: Vec<Condition>,
    },
    /// The condition does not hold.
    Not {
        /// The negated condition.
        condition: Box<Condition>,
    },
    /// A Rust predicate; not serializable.
    #[serde(skip)]
    Predicate(Predicate),
}

/// Constructors, so that rules read as they are meant:
/// `Condition::all([Condition::country(["IT"]), Condition::payment(PaymentKind::CashOnDelivery)])`.
impl Condition {
    /// The shipping country is one of `countries` (ISO alpha-2, case-insensitive).
    pub fn country<I, S>(countries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Condition::CountryIn {
            countries: countries.into_iter().map(Into::into).collect(),
        }
    }

    /// The payment is of `kind`.
    pub fn payment(kind: PaymentKind) -> Self {
        Condition::PaymentIs { payment: kind }
    }

    /// At least one cart line has one of `skus`.
    pub fn any_sku<I, S>(skus: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Sku>,
    {
        Condition::AnySkuIn {
            skus: skus.into_iter().map(Into::into).collect(),
        }
    }

    /// Every cart line has one of `skus`.
    pub fn all_skus<I, S>(skus: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Sku>,
    {
        Condition::AllSkusIn {
            skus: skus.into_iter().map(Into::into).collect(),
        }
    }

    /// At least one cart line has one of the product `types`.
    pub fn product_type<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Condition::ProductTypeIn {
            types: types.into_iter().map(Into::into).collect(),
        }
    }

    /// The order total is within `min..=max` (a `None` bound is open).
    pub fn total_between(min: Option<Decimal>, max: Option<Decimal>) -> Self {
        Condition::TotalBetween { min, max }
    }

    /// The order has `tag`.
    pub fn tag(tag: impl Into<String>) -> Self {
        Condition::HasTag { tag: tag.into() }
    }

    /// The order's custom field `key` equals `value`.
    pub fn custom_field(key: impl Into<String>, value: impl Into<String>) -> Self {
        Condition::CustomFieldEquals {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Every one of `conditions` holds.
    pub fn all(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Condition::All {
            conditions: conditions.into_iter().collect(),
        }
    }

    /// At least one of `conditions` holds.
    pub fn any(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Condition::Any {
            conditions: conditions.into_iter().collect(),
        }
    }

    /// `condition` does not hold.
    #[allow(clippy::should_implement_trait, reason = "a constructor, not negation")]
    pub fn not(condition: Condition) -> Self {
        Condition::Not {
            condition: Box::new(condition),
        }
    }

    /// A Rust predicate named `name`.
    pub fn predicate(
        name: impl Into<String>,
        test: impl Fn(&Order) -> bool + Send + Sync + 'static,
    ) -> Self {
        Condition::Predicate(Predicate::new(name, test))
    }

    /// Whether `order` satisfies the condition.
    pub fn matches(&self, order: &Order) -> bool {
        match self {
            Condition::Always => true,
            Condition::CountryIn { countries } => countries
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&order.address.country)),
            Condition::PaymentIs { payment } => PaymentKind::of(&order.payment) == *payment,
            Condition::AnySkuIn { skus } => order.lines.iter().any(|l| skus.contains(&l.sku)),
            Condition::AllSkusIn { skus } => {
                !order.lines.is_empty() && order.lines.iter().all(|l| skus.contains(&l.sku))
            }
            Condition::ProductTypeIn { types } => order.lines.iter().any(|l| {
                l.product_type
                    .as_ref()
                    .is_some_and(|t| types.iter().any(|x| x == t))
            }),
            Condition::TotalBetween { min, max } => {
                let total = order.total();
                min.is_none_or(|m| total >= m) && max.is_none_or(|m| total <= m)
            }
            Condition::HasTag { tag } => order.tags.contains(tag),
            Condition::CustomFieldEquals { key, value } => {
                order.custom_fields.get(key) == Some(value)
            }
            Condition::All { conditions } => conditions.iter().all(|c| c.matches(order)),
            Condition::Any { conditions } => conditions.iter().any(|c| c.matches(order)),
            Condition::Not { condition } => !condition.matches(order),
            Condition::Predicate(p) => (p.test)(order),
        }
    }
}

/// One routing rule: orders matching `when` go to `instance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRule {
    /// Name shown in errors and in "would go to" answers.
    pub name: String,
    /// The condition.
    pub when: Condition,
    /// The target instance.
    pub instance: InstanceId,
}

impl RoutingRule {
    /// A rule.
    pub fn new(name: impl Into<String>, when: Condition, instance: impl Into<InstanceId>) -> Self {
        Self {
            name: name.into(),
            when,
            instance: instance.into(),
        }
    }
}

/// Where routing sent an order, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The chosen instance.
    pub instance: InstanceId,
    /// The rule that matched.
    pub rule: String,
}
