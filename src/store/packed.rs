//! Compact status histories for [`MemoryStore`](super::MemoryStore).
//!
//! A tracked shipment carries ten or more statuses, and across shipments their texts repeat
//! (the provider's status words, the carrier's name, the shipment's own tracking number in
//! every status). Stored as [`DeliveryStatus`] values, each status held four strings of its
//! own; here each distinct text is kept once for the whole store ([`Interner`]), a history
//! keeps a small table of the texts it uses, and each status is a time, a code and four
//! one-byte indexes into that table. The rare parts (a problem, a pickup point) are kept
//! aside. Reading a history back builds ordinary statuses.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::{DeliveryStatus, PickupPoint, Problem, StatusCode};

/// Each distinct text once: statuses of every record share it. Texts nobody uses any more are
/// dropped when the set has doubled since the last sweep, so the set stays proportional to
/// what records hold.
#[derive(Debug)]
pub(super) struct Interner {
    texts: HashSet<Arc<str>>,
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 4096;

impl Default for Interner {
    fn default() -> Self {
        Self {
            texts: HashSet::new(),
            sweep_at: FIRST_SWEEP,
        }
    }
}

impl Interner {
    /// The shared copy of `text`.
    pub(super) fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.texts.get(text) {
            return Arc::clone(shared);
        }
        if self.texts.len() >= self.sweep_at {
            // Only the set holds a text nobody else counts.
            self.texts.retain(|t| Arc::strong_count(t) > 1);
            self.sweep_at = (self.texts.len() * 2).max(FIRST_SWEEP);
        }
        let shared: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&shared));
        shared
    }

    /// Number of distinct texts held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }
}

/// No text (an index no table reaches: tables hold at most 255 texts).
const NONE: u8 = u8::MAX;

/// One status: its time, code and the indexes of its texts in the history's table.
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
        texts: Box<[Arc<str>]>,
        statuses: Box<[PackedStatus]>,
        rare: Option<Box<[Rare]>>,
    },
    Plain(Arc<[DeliveryStatus]>),
}

impl Default for History {
    fn default() -> Self {
        History::Packed {
            texts: Box::default(),
            statuses: Box::default(),
            rare: None,
        }
    }
}

impl History {
    /// `statuses` packed, their texts shared through `interner`.
    pub(super) fn pack(statuses: &[DeliveryStatus], interner: &mut Interner) -> Self {
        let mut texts: Vec<Arc<str>> = Vec::new();
        let mut packed = Vec::with_capacity(statuses.len());
        let mut rare = Vec::new();
        if statuses.len() > usize::from(u16::MAX) {
            return History::Plain(statuses.into());
        }
        for (i, status) in statuses.iter().enumerate() {
            let mut index = |text: Option<&str>| -> Option<u8> {
                let Some(text) = text else {
                    return Some(NONE);
                };
                if let Some(at) = texts.iter().position(|t| **t == *text) {
                    return u8::try_from(at).ok();
                }
                let at = u8::try_from(texts.len()).ok().filter(|&at| at != NONE)?;
                texts.push(interner.intern(text));
                Some(at)
            };
            let (Some(original), Some(carrier), Some(number), Some(url)) = (
                index(Some(&status.original)),
                index(status.carrier.as_deref()),
                index(status.carrier_tracking_number.as_deref()),
                index(status.tracking_url.as_deref()),
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
            texts: texts.into_boxed_slice(),
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
            History::Packed { .. } => (0..self.len()).filter_map(|i| self.get(i)).collect(),
        }
    }

    /// The status at `index`.
    pub(super) fn get(&self, index: usize) -> Option<DeliveryStatus> {
        match self {
            History::Plain(statuses) => statuses.get(index).cloned(),
            History::Packed {
                texts,
                statuses,
                rare,
            } => {
                let packed = statuses.get(index)?;
                let text = |i: u8| texts.get(usize::from(i)).map(|t| String::from(&**t));
                let rare = rare
                    .as_deref()
                    .and_then(|r| r.iter().find(|r| usize::from(r.index) == index));
                Some(DeliveryStatus {
                    code: packed.code,
                    original: text(packed.original).unwrap_or_default(),
                    at: packed.at,
                    problem: rare.and_then(|r| r.problem.clone()),
                    pickup_point: rare.and_then(|r| r.pickup_point.clone()),
                    carrier: text(packed.carrier),
                    carrier_tracking_number: text(packed.carrier_tracking_number),
                    tracking_url: text(packed.tracking_url),
                })
            }
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
        let (texts, statuses, rare) = match self {
            History::Plain(statuses) => return statuses.get(index) == Some(status),
            History::Packed {
                texts,
                statuses,
                rare,
            } => (texts, statuses, rare),
        };
        let Some(packed) = statuses.get(index) else {
            return false;
        };
        let text = |i: u8| texts.get(usize::from(i)).map(|t| &**t);
        let rare = rare
            .as_deref()
            .and_then(|r| r.iter().find(|r| usize::from(r.index) == index));
        packed.code == status.code
            && packed.at == status.at
            && text(packed.original) == Some(status.original.as_str())
            && text(packed.carrier) == status.carrier.as_deref()
            && text(packed.carrier_tracking_number) == status.carrier_tracking_number.as_deref()
            && text(packed.tracking_url) == status.tracking_url.as_deref()
            && rare.and_then(|r| r.problem.as_ref()) == status.problem.as_ref()
            && rare.and_then(|r| r.pickup_point.as_ref()) == status.pickup_point.as_ref()
    }
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
                    s.tracking_url = Some(format!("https://t.example/{i}"));
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
        // 4 status words, the carrier, the number, 5 urls.
        assert_eq!(interner.len(), 11);
        let (History::Packed { texts: ta, .. }, History::Packed { texts: tb, .. }) = (&a, &b)
        else {
            panic!("not packed");
        };
        assert!(ta.iter().zip(tb.iter()).all(|(x, y)| Arc::ptr_eq(x, y)));
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
            drop(interner.intern(&format!("text {i}")));
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
