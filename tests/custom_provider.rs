//! The provider of `examples/custom_provider.rs` passes the conformance suite: what a plugin
//! author would write for their own adapter.

use fulfillkit::model::ShipmentRef;
use fulfillkit::testkit::{self, ConformanceDriver};
use fulfillkit::{Result, async_trait};

#[path = "../examples/custom_provider.rs"]
mod custom_provider;

use custom_provider::ParcelPigeon;

/// Steers the pigeon service through its back-office method.
struct PigeonDriver<'a>(&'a ParcelPigeon);

#[async_trait]
impl ConformanceDriver for PigeonDriver<'_> {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.0.set_status(&shipment.order_id, "in the coop")
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.0.set_status(&shipment.order_id, raw)
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.0.orders_held())
    }

    /// The pigeon service has no wire: `track` answers any slice at once.
    fn largest_track_batch(&self) -> Option<usize> {
        None
    }
}

#[tokio::test]
async fn parcel_pigeon_conforms() {
    let pigeon = ParcelPigeon::default();
    let report = testkit::run_all(&pigeon, &PigeonDriver(&pigeon)).await;
    assert!(report.passed.contains(&"lock (an unknown status keeps it)"));
    assert!(report.passed.contains(&"update_order (inside the window)"));
}
