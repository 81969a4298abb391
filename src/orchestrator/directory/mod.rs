//! The provider's address / pickup-point directory as the orchestrator serves it, and strict
//! addresses.
//!
//! A provider's directory is fetched whole, once per (instance, country, city or whole
//! country), with one `search_addresses` call, and kept for a time-to-live (default 1 h). A
//! query is answered from the search index built at fetch time (`index.rs`), so typing in
//! the order card costs neither a provider call nor normalizing any entry. The matching rules are documented on
//! [`Orchestrator::search_addresses`]; text normalization itself is
//! [`normalize_search_text`](crate::model::normalize_search_text) in the model.
//!
//! With strict addresses, export refuses an address whose `provider_address_id` is not in
//! the directory; [`Orchestrator::validate_address`] runs the same check for the order card.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

mod index;

use self::index::DirectoryIndex;
use super::stock::is_fresh;
use super::{Instance, Orchestrator};
use crate::error::{Error, FieldError, Operation, Result};
use crate::model::{Address, AddressOption, AddressQuery, InstanceId};

/// Results returned by [`Orchestrator::search_addresses`] when the query sets no limit.
pub const DEFAULT_ADDRESS_LIMIT: usize = 20;

/// Path of the field strict addresses complain about.
const STRICT_PATH: &str = "address.provider_address_id";

/// Which directory a cache slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DirectoryKey {
    instance: InstanceId,
    /// Upper case.
    country: String,
    /// As the caller spelled it (trimmed): the provider matches cities its own way, so two
    /// spellings are two requests. `None`: the whole country.
    city: Option<String>,
}

/// One cached directory, and the lock that lets one caller refill it while the others wait
/// for its result instead of asking the provider too.
#[derive(Default)]
struct Slot {
    index: RwLock<Option<Arc<DirectoryIndex>>>,
    refill: tokio::sync::Mutex<()>,
}

impl Slot {
    fn fresh(&self, now: DateTime<Utc>, ttl: Duration) -> Option<Arc<DirectoryIndex>> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        index
            .as_ref()
            .filter(|i| is_fresh(i.fetched_at, now, ttl))
            .cloned()
    }
}

/// Cache of provider directories per instance, country and city.
pub(crate) struct DirectoryCache {
    ttl: Duration,
    slots: Mutex<HashMap<DirectoryKey, Arc<Slot>>>,
}

impl fmt::Debug for DirectoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DirectoryCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<DirectoryKey, Arc<Slot>>> {
        // Every statement leaves the map consistent, so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh index under `key`, without fetching.
    fn fresh(&self, key: &DirectoryKey, now: DateTime<Utc>) -> Option<Arc<DirectoryIndex>> {
        let slot = self.slots().get(key).cloned()?;
        slot.fresh(now, self.ttl)
    }

    /// The slot for `key`, created if needed. Creating one first drops expired slots, so
    /// cities searched once do not keep their directories for the life of the process.
    fn slot(&self, key: &DirectoryKey, now: DateTime<Utc>) -> Arc<Slot> {
        let mut slots = self.slots();
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        slots.retain(|_, slot| {
            let index = slot.index.read().unwrap_or_else(|e| e.into_inner());
            match index.as_ref() {
                Some(index) => is_fresh(index.fetched_at, now, self.ttl),
                // Empty: being filled right now (keep it) or a fetch that failed.
                None => slot.refill.try_lock().is_err(),
            }
        });
        slots.entry(key.clone()).or_default().clone()
    }
}

impl Orchestrator {
    /// Searches `instance`'s address / pickup-point directory.
    ///
    /// The directory of the query's country (and city, when given) is fetched with one
    /// provider call and then served from the cache for the directory TTL (default 1 h, see
    /// [`OrchestratorBuilder::directory_cache_ttl`](super::OrchestratorBuilder::directory_cache_ttl)).
    /// Matching:
    ///
    /// - text is compared after [`normalize_search_text`](crate::model::normalize_search_text): case, whitespace and accents do
    ///   not matter ("lodz" finds "Łódź", "zurich" finds "Zürich"); Cyrillic keeps its
    ///   letters ("софия" finds "София", "sofia" does not);
    /// - every word of the query must match a word of the entry (label, address lines, city,
    ///   region, id or postcode) at the start of that word, or anywhere inside it for query
    ///   words of three characters or more; ids and postcodes also match without punctuation
    ///   ("90001" finds "90-001");
    /// - ranking: the query is the id or postcode, then the label starts with the query, then
    ///   every word matched at a word start, then the rest; ties in label order;
    /// - [`AddressQuery::postcode`] keeps entries whose postcode starts with it (punctuation
    ///   ignored), [`AddressQuery::pickup_points_only`] drops door addresses,
    ///   [`AddressQuery::limit`] caps the answer (0: [`DEFAULT_ADDRESS_LIMIT`]); without text,
    ///   entries come in label order.
    ///
    /// A pickup point found here carries its opening hours
    /// ([`AddressOption::to_pickup_point`]) and becomes the order's address with
    /// [`AddressOption::to_address`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown instance; [`Error::Unsupported`] (without a call)
    /// when its provider has no directory; the provider's error when the directory has to be
    /// fetched.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
    /// use std::sync::Arc;
    /// use fulfillkit::model::{AddressKind, AddressOption, AddressQuery};
    /// use fulfillkit::orchestrator::{Instance, Orchestrator};
    /// use fulfillkit::provider::mock::MockProvider;
    ///
    /// let mut point = AddressOption {
    ///     id: "LOD01A".into(),
    ///     kind: AddressKind::Locker,
    ///     label: "Paczkomat LOD01A".into(),
    ///     address: fulfillkit::testkit::sample_order("x").address,
    ///     carrier: None,
    ///     opening_hours: None,
    /// };
    /// point.address.country = "PL".into();
    /// point.address.city = "Łódź".into();
    /// let mock = MockProvider::new().with_directory(vec![point]);
    /// let orchestrator = Orchestrator::builder()
    ///     .instance(Instance::new("pl", "Poland", Arc::new(mock)))
    ///     .build()?;
    ///
    /// let found = orchestrator
    ///     .search_addresses("pl", &AddressQuery::in_country("PL").with_text("lodz"))
    ///     .await?;
    /// assert_eq!(found[0].id, "LOD01A");
    /// # Ok(()) }
    /// ```
    pub async fn search_addresses(
        &self,
        instance: impl AsRef<str>,
        query: &AddressQuery,
    ) -> Result<Vec<AddressOption>> {
        let instance = instance.as_ref();
        let instance = self.instance_or_err(instance)?;
        let city = query
            .city
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let index = self.directory(instance, &query.country, city).await?;
        let limit = match query.limit {
            0 => DEFAULT_ADDRESS_LIMIT,
            n => n,
        };
        Ok(index.search(query, limit))
    }

    /// Checks `address` the way export will for `instance`: under strict addresses its
    /// `provider_address_id` must be an entry of the provider's directory for its country and
    /// city. Without strict addresses every address passes.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] at `address.provider_address_id` when refused;
    /// [`Error::NotFound`] for an unknown instance; the provider's error when the directory
    /// has to be fetched.
    pub async fn validate_address(
        &self,
        instance: impl AsRef<str>,
        address: &Address,
    ) -> Result<()> {
        let instance = self.instance_or_err(instance)?;
        if !instance.settings.strict_addresses {
            return Ok(());
        }
        match self.strict_address_problem(instance, address).await? {
            None => Ok(()),
            Some(problem) => Err(Error::validation(
                format!("address for instance {}", instance.id),
                vec![problem],
            )),
        }
    }

    /// The directory entry `address` was chosen from (by its `provider_address_id`), for the
    /// order card to show a pickup point's name and opening hours; `None` when the address
    /// has no directory id or the id is not in the directory.
    ///
    /// # Errors
    ///
    /// As [`Self::search_addresses`].
    pub async fn directory_entry(
        &self,
        instance: impl AsRef<str>,
        address: &Address,
    ) -> Result<Option<AddressOption>> {
        let instance = instance.as_ref();
        let instance = self.instance_or_err(instance)?;
        let Some(id) = &address.provider_address_id else {
            return Ok(None);
        };
        self.find_in_directory(instance, address, id).await
    }

    /// Why `address` is refused under strict addresses, if it is.
    pub(super) async fn strict_address_problem(
        &self,
        instance: &Instance,
        address: &Address,
    ) -> Result<Option<FieldError>> {
        let Some(id) = &address.provider_address_id else {
            return Ok(Some(FieldError::new(
                STRICT_PATH,
                format!(
                    "instance {} accepts only addresses chosen from the provider's directory",
                    instance.id
                ),
            )));
        };
        let found = self.find_in_directory(instance, address, id).await?;
        Ok(found.is_none().then(|| {
            FieldError::new(
                STRICT_PATH,
                format!(
                    "{id} is not in the directory of instance {} for {} {}",
                    instance.id, address.country, address.city
                ),
            )
        }))
    }

    /// The entry `id` of the directory `address` belongs to. A fresh copy of the whole
    /// country's directory answers without a call (it holds every city); otherwise the city's
    /// directory is used, fetched if needed.
    async fn find_in_directory(
        &self,
        instance: &Instance,
        address: &Address,
        id: &str,
    ) -> Result<Option<AddressOption>> {
        let whole_country = DirectoryKey {
            instance: instance.id.clone(),
            country: country_key(&address.country),
            city: None,
        };
        if let Some(index) = self.inner.directory_cache.fresh(&whole_country, self.now()) {
            return Ok(index.get(id).cloned());
        }
        let city = Some(address.city.trim()).filter(|c| !c.is_empty());
        let index = self.directory(instance, &address.country, city).await?;
        Ok(index.get(id).cloned())
    }

    /// The fresh index of one directory, fetched (by one caller at a time) when missing or
    /// expired.
    async fn directory(
        &self,
        instance: &Instance,
        country: &str,
        city: Option<&str>,
    ) -> Result<Arc<DirectoryIndex>> {
        if !instance.provider.capabilities().address_directory {
            return Err(Error::unsupported(
                Operation::SearchAddresses,
                instance.provider.kind(),
            ));
        }
        let key = DirectoryKey {
            instance: instance.id.clone(),
            country: country_key(country),
            city: city.map(str::to_owned),
        };
        let cache = &self.inner.directory_cache;
        let slot = cache.slot(&key, self.now());
        if let Some(index) = slot.fresh(self.now(), cache.ttl) {
            return Ok(index);
        }
        let _refilling = slot.refill.lock().await;
        // Whoever held the lock before us may have just filled it.
        if let Some(index) = slot.fresh(self.now(), cache.ttl) {
            return Ok(index);
        }
        // The whole directory: no text, no postcode, no limit; filtering happens here.
        let request = AddressQuery {
            country: key.country.clone(),
            city: key.city.clone(),
            ..AddressQuery::default()
        };
        let options = super::observed(
            instance,
            crate::error::Operation::SearchAddresses,
            instance.provider.search_addresses(&request),
        )
        .await?;
        let index = Arc::new(DirectoryIndex::build(options, self.now()));
        tracing::debug!(
            instance = %instance.id,
            country = %key.country,
            city = key.city.as_deref().unwrap_or("*"),
            entries = index.entries.len(),
            "address directory cached"
        );
        *slot.index.write().unwrap_or_else(|e| e.into_inner()) = Some(index.clone());
        Ok(index)
    }
}

fn country_key(country: &str) -> String {
    country.trim().to_ascii_uppercase()
}
