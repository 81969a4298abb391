//! Compact status histories for [`MemoryStore`](super::MemoryStore).
//!
//! A tracked shipment carries ten or more statuses, and across shipments their texts repeat
//! (the provider's status words, the carrier's name) or repeat within the shipment (its
//! carrier tracking number and tracking link in every status). Stored as [`DeliveryStatus`]
//! values, each status held four strings of its own. Here a history keeps two small tables:
//! the words and carriers it uses, kept once for the whole store ([`Interner`]: shipments that
//! went through the same statuses share one table), and its own tracking numbers and links;
//! each status is a time, a code and four one-byte indexes into those tables. The rare parts
//! (a problem, a pickup point) are kept aside. Reading a history back builds ordinary
//! statuses.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::{DeliveryStatus, PickupPoint, Problem, StatusCode, Text};

/// Each distinct value once: records share it. Values nobody uses any more are dropped when
/// the set has doubled since the last sweep, so the set stays proportional to what records
/// hold.
#[derive(Debug)]
struct Shared<T: ?Sized + Eq + std::hash::Hash> {
    values: HashSet<Arc<T>>,
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 4096;

impl<T: ?Sized + Eq + std::hash::Hash> Default for Shared<T> {
    fn default() -> Self {
        Self {
            values: HashSet::new(),
            sweep_at: FIRST_SWEEP,
        }
    }
}

impl<T: ?Sized + Eq + std::hash::Hash> Shared<T> {
    /// The shared copy of `value`, made by `make` the first time.
    fn get(&mut self, value: &T, make: impl FnOnce(&T) -> Arc<T>) -> Arc<T> {
        if let Some(shared) = self.values.get(value) {
            return Arc::clone(shared);
        }
        if self.values.len() >= self.sweep_at {
            // Only the set holds a value nobody else counts.
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.sweep_at = (self.values.len() * 2).max(FIRST_SWEEP);
        }
        let shared = make(value);
        self.values.insert(Arc::clone(&shared));
        shared
    }
}

/// The texts and text tables histories share store-wide.
#[derive(Debug, Default)]
pub(super) struct Interner {
    texts: Shared<str>,
    tables: Shared<[Text]>,
}

impl Interner {
    /// The shared copy of `text` (`text` itself the first time).
    pub(super) fn intern(&mut self, text: &Text) -> Text {
        Text::from(self.texts.get(text.as_str(), |_| Arc::from(text.clone())))
    }

    /// The shared copy of `text`, made from the slice the first time.
    pub(super) fn intern_str(&mut self, text: &str) -> Text {
        Text::from(self.texts.get(text, |t| Arc::from(t)))
    }

    /// The shared copy of a table of shared texts.
    fn table(&mut self, table: &[Text]) -> Arc<[Text]> {
        self.tables.get(table, |t| Arc::from(t))
    }

    /// Number of distinct texts held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.texts.values.len()
    }

    /// Number of distinct tables held.
    #[cfg(test)]
    fn tables(&self) -> usize {
        self.tables.values.len()
    }
}

/// No text (an index no table reaches: tables hold at most 255 texts).
const NONE: u8 = u8::MAX;

/// One status: its time, code and the indexes of its texts: the text and carrier in the
/// history's shared table, the carrier's tracking number and the link in its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct PackedStatus {
    at: DateTime<Utc>,
    code: StatusCode,
    original: u8,
    carrier: u8,
    carrier_tracking_number: u8,
    tracking_url: u8,
}

/// The parts most statuses lack, for the status at `index`.
#[derive(Debug, Clone)]
pub(super) struct Rare {
    index: u16,
    problem: Option<Problem>,
    pickup_point: Option<Box<PickupPoint>>,
}

/// A history as stored: packed, or (beyond what the packing addresses: more than 255
/// distinct texts, or 65,536 statuses) as it came.
#[derive(Debug, Clone)]
pub(super) enum History {
    Packed {
        shared: Arc<[Text]>,
        own: Box<[Text]>,
        statuses: Box<[PackedStatus]>,
        rare: Option<Box<[Rare]>>,
    },
    Plain(Arc<[DeliveryStatus]>),
}

impl Default for History {
    fn default() -> Self {
        History::Packed {
            shared: Arc::from([]),
            own: Box::default(),
            statuses: Box::default(),
            rare: None,
        }
    }
}

impl History {
    /// `statuses` packed, their texts shared through `interner`.
    pub(super) fn pack(statuses: &[DeliveryStatus], interner: &mut Interner) -> Self {
        if statuses.len() > usize::from(u16::MAX) {
            return History::Plain(statuses.into());
        }
        let mut shared: Vec<Text> = Vec::new();
        let mut own: Vec<Text> = Vec::new();
        let mut packed = Vec::with_capacity(statuses.len());
        let mut rare = Vec::new();
        for (i, status) in statuses.iter().enumerate() {
            let (Some(original), Some(carrier), Some(number), Some(url)) = (
                index(&mut shared, Some(&status.original), |t| interner.intern(t)),
                index(&mut shared, status.carrier.as_ref(), |t| interner.intern(t)),
                index(
                    &mut own,
                    status.carrier_tracking_number.as_ref(),
                    Text::clone,
                ),
                index(&mut own, status.tracking_url.as_ref(), Text::clone),
            ) else {
                return History::Plain(statuses.into());
            };
            packed.push(PackedStatus {
                at: status.at,
                code: status.code,
                original,
                carrier,
                carrier_tracking_number: number,
                tracking_url: url,
            });
            if status.problem.is_some() || status.pickup_point.is_some() {
                rare.push(Rare {
                    // At most u16::MAX statuses (checked above).
                    index: u16::try_from(i).unwrap_or(u16::MAX),
                    problem: status.problem.clone(),
                    pickup_point: status.pickup_point.clone(),
                });
            }
        }
        History::Packed {
            shared: interner.table(&shared),
            own: own.into_boxed_slice(),
            statuses: packed.into_boxed_slice(),
            rare: (!rare.is_empty()).then(|| rare.into_boxed_slice()),
        }
    }

    /// Number of statuses.
    pub(super) fn len(&self) -> usize {
        match self {
            History::Packed { statuses, .. } => statuses.len(),
            History::Plain(statuses) => statuses.len(),
        }
    }

    /// The statuses as they were stored.
    pub(super) fn unpack(&self) -> Arc<[DeliveryStatus]> {
        match self {
            History::Plain(statuses) => Arc::clone(statuses),
            // A mapped slice has an exact length: the `Arc` is allocated once, at its size.
            History::Packed { statuses, .. } => statuses
                .iter()
                .enumerate()
                .map(|(i, packed)| self.build(i, packed))
                .collect(),
        }
    }

    /// The status at `index`.
    pub(super) fn get(&self, index: usize) -> Option<DeliveryStatus> {
        match self {
            History::Plain(statuses) => statuses.get(index).cloned(),
            History::Packed { statuses, .. } => {
                statuses.get(index).map(|packed| self.build(index, packed))
            }
        }
    }

    /// The status `packed` at `index` of this (packed) history, as an ordinary status.
    fn build(&self, index: usize, packed: &PackedStatus) -> DeliveryStatus {
        let (shared, own, rare) = match self {
            History::Packed {
                shared, own, rare, ..
            } => (&shared[..], &own[..], rare.as_deref()),
            History::Plain(_) => (&[][..], &[][..], None),
        };
        let text = |i: u8| shared.get(usize::from(i)).cloned();
        let own_text = |i: u8| own.get(usize::from(i)).cloned();
        let rare = rare.and_then(|r| r.iter().find(|r| usize::from(r.index) == index));
        DeliveryStatus {
            code: packed.code,
            original: text(packed.original).unwrap_or_default(),
            at: packed.at,
            problem: rare.and_then(|r| r.problem.clone()),
            pickup_point: rare.and_then(|r| r.pickup_point.clone()),
            carrier: text(packed.carrier),
            carrier_tracking_number: own_text(packed.carrier_tracking_number),
            tracking_url: own_text(packed.tracking_url),
        }
    }

    /// The code of the status at `index`, without building it.
    pub(super) fn code(&self, index: usize) -> Option<StatusCode> {
        match self {
            History::Plain(statuses) => statuses.get(index).map(|s| s.code),
            History::Packed { statuses, .. } => statuses.get(index).map(|s| s.code),
        }
    }

    /// The index of a status equal to `status`, searched from the end (a current status is
    /// usually the last one).
    pub(super) fn position(&self, status: &DeliveryStatus) -> Option<usize> {
        (0..self.len()).rev().find(|&i| self.is_at(i, status))
    }

    /// Whether the status at `index` equals `status` (compared in place, nothing built).
    fn is_at(&self, index: usize, status: &DeliveryStatus) -> bool {
        let (shared, own, statuses, rare) = match self {
            History::Plain(statuses) => return statuses.get(index) == Some(status),
            History::Packed {
                shared,
                own,
                statuses,
                rare,
            } => (shared, own, statuses, rare),
        };
        let Some(packed) = statuses.get(index) else {
            return false;
        };
        let text = |i: u8| shared.get(usize::from(i)).map(Text::as_str);
        let own_text = |i: u8| own.get(usize::from(i)).map(Text::as_str);
        let rare = rare
            .as_deref()
            .and_then(|r| r.iter().find(|r| usize::from(r.index) == index));
        packed.code == status.code
            && packed.at == status.at
            && text(packed.original) == Some(status.original.as_str())
            && text(packed.carrier) == status.carrier.as_deref()
            && own_text(packed.carrier_tracking_number) == status.carrier_tracking_number.as_deref()
            && own_text(packed.tracking_url) == status.tracking_url.as_deref()
            && rare.and_then(|r| r.problem.as_ref()) == status.problem.as_ref()
            && rare.and_then(|r| r.pickup_point.as_ref()) == status.pickup_point.as_ref()
    }
}

/// The index of `text` in `table`, added (made by `make`) when missing; [`NONE`] for no text;
/// `None` when the table is full.
fn index(
    table: &mut Vec<Text>,
    text: Option<&Text>,
    make: impl FnOnce(&Text) -> Text,
) -> Option<u8> {
    let Some(text) = text else {
        return Some(NONE);
    };
    if let Some(at) = table.iter().position(|t| t == text) {
        return u8::try_from(at).ok();
    }
    let at = u8::try_from(table.len()).ok().filter(|&at| at != NONE)?;
    table.push(make(text));
    Some(at)
}

/// A record's current or last reported status: none, one of its history's statuses (the usual
/// case, kept as an index), or a status of its own.
#[derive(Debug, Clone, Default)]
pub(super) enum Slot {
    #[default]
    None,
    InHistory(u16),
    Own(Arc<DeliveryStatus>),
}

impl Slot {
    /// `status` as a slot next to `history`.
    pub(super) fn of(status: Option<&Arc<DeliveryStatus>>, history: &History) -> Self {
        let Some(status) = status else {
            return Slot::None;
        };
        match history.position(status).and_then(|i| u16::try_from(i).ok()) {
            Some(index) => Slot::InHistory(index),
            None => Slot::Own(Arc::clone(status)),
        }
    }

    /// The status's code.
    pub(super) fn code(&self, history: &History) -> Option<StatusCode> {
        match self {
            Slot::None => None,
            Slot::InHistory(index) => history.code(usize::from(*index)),
            Slot::Own(status) => Some(status.code),
        }
    }

    /// The status, sharing `same` when it is the same slot (current and last reported
    /// usually are).
    pub(super) fn status(
        &self,
        history: &History,
        same: Option<(&Slot, &Option<Arc<DeliveryStatus>>)>,
    ) -> Option<Arc<DeliveryStatus>> {
        if let Some((other, built)) = same
            && let (Slot::InHistory(a), Slot::InHistory(b)) = (self, other)
            && a == b
        {
            return built.clone();
        }
        match self {
            Slot::None => None,
            Slot::InHistory(index) => history.get(usize::from(*index)).map(Arc::new),
            Slot::Own(status) => Some(Arc::clone(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Problem;
    use chrono::TimeZone;

    fn history(n: usize) -> Vec<DeliveryStatus> {
        let t0 = Utc
            .with_ymd_and_hms(2024, 5, 2, 8, 0, 0)
            .single()
            .unwrap_or_default();
        (0..n)
            .map(|i| {
                let mut s = DeliveryStatus::new(
                    StatusCode::ALL[i % 9],
                    format!("status {}", i % 4),
                    t0 + chrono::Duration::hours(i as i64),
                )
                .with_carrier("SDA", Some("383148H040001".into()));
                if i == 3 {
                    s.problem = Some(Problem::Other("held at customs".into()));
                }
                if i % 2 == 0 {
                    s.tracking_url = Some(format!("https://t.example/{i}").into());
                }
                s
            })
            .collect()
    }

    #[test]
    fn a_packed_history_reads_back_as_it_was_written() {
        let mut interner = Interner::default();
        for n in [0, 1, 10, 40] {
            let statuses = history(n);
            let packed = History::pack(&statuses, &mut interner);
            assert!(matches!(packed, History::Packed { .. }));
            assert_eq!(&*packed.unpack(), statuses.as_slice());
        }
    }

    #[test]
    fn texts_are_kept_once_across_histories() {
        let mut interner = Interner::default();
        let statuses = history(10);
        let a = History::pack(&statuses, &mut interner);
        let b = History::pack(&statuses, &mut interner);
        // 4 status words and the carrier, in one table both histories share.
        assert_eq!(interner.len(), 5);
        assert_eq!(interner.tables(), 1);
        let (History::Packed { shared: ta, .. }, History::Packed { shared: tb, .. }) = (&a, &b)
        else {
            panic!("not packed");
        };
        assert!(Arc::ptr_eq(ta, tb));
    }

    #[test]
    fn beyond_255_texts_a_history_is_kept_as_it_came() {
        let mut interner = Interner::default();
        let t0 = Utc::now();
        let statuses: Vec<_> = (0..300)
            .map(|i| DeliveryStatus::new(StatusCode::InTransit, format!("hub {i}"), t0))
            .collect();
        let packed = History::pack(&statuses, &mut interner);
        assert!(matches!(packed, History::Plain(_)));
        assert_eq!(&*packed.unpack(), statuses.as_slice());
    }

    #[test]
    fn unused_texts_are_swept() {
        let mut interner = Interner::default();
        for i in 0..3 * FIRST_SWEEP {
            drop(interner.intern(&Text::from(format!("text {i}"))));
        }
        assert!(interner.len() <= FIRST_SWEEP + 1, "{}", interner.len());
    }

    #[test]
    fn slots_point_into_the_history_or_keep_their_own() {
        let mut interner = Interner::default();
        let statuses = history(5);
        let packed = History::pack(&statuses, &mut interner);
        let last = Arc::new(statuses[4].clone());
        assert!(matches!(Slot::of(Some(&last), &packed), Slot::InHistory(4)));
        let other = Arc::new(DeliveryStatus::new(StatusCode::Lost, "lost", Utc::now()));
        let slot = Slot::of(Some(&other), &packed);
        assert!(matches!(slot, Slot::Own(_)));
        assert_eq!(slot.status(&packed, None), Some(other));
    }
}
