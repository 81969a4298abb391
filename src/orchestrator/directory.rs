//! The provider's address / pickup-point directory as the orchestrator serves it, and strict
//! addresses.
//!
//! (Issue 8 adds the cache; until then every check asks the provider.)

use std::time::Duration;

use super::{Instance, Orchestrator};
use crate::error::{FieldError, Result};
use crate::model::{Address, AddressQuery};

/// Cache of provider directories per instance.
#[derive(Debug)]
pub(crate) struct DirectoryCache {
    #[allow(dead_code, reason = "used once the cache lands")]
    ttl: Duration,
}

impl DirectoryCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl }
    }
}

impl Orchestrator {
    /// Why `address` is refused under strict addresses, if it is.
    pub(super) async fn strict_address_problem(
        &self,
        instance: &Instance,
        address: &Address,
    ) -> Result<Option<FieldError>> {
        const PATH: &str = "address.provider_address_id";
        let Some(id) = &address.provider_address_id else {
            return Ok(Some(FieldError::new(
                PATH,
                format!(
                    "instance {} accepts only addresses chosen from the provider's directory",
                    instance.id
                ),
            )));
        };
        let query = AddressQuery {
            city: Some(address.city.clone()),
            ..AddressQuery::in_country(address.country.clone())
        };
        let options = instance.provider.search_addresses(&query).await?;
        Ok((!options.iter().any(|o| o.id == *id)).then(|| {
            FieldError::new(
                PATH,
                format!(
                    "{id} is not in the directory of instance {} for {} {}",
                    instance.id, address.country, address.city
                ),
            )
        }))
    }
}
