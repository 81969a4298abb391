//! The conformance suite against `MockProvider`, used directly, boxed and shared.

use std::sync::Arc;

use fulfillkit::model::StatusCode;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::testkit;

#[tokio::test]
async fn mock_plain() {
    let mock = MockProvider::new();
    testkit::run_all(&mock, &mock).await;
}

#[tokio::test]
async fn mock_boxed_dyn() {
    let mock = Arc::new(MockProvider::new());
    let boxed: Box<dyn FulfillmentProvider> = Box::new(mock.clone());
    testkit::run_all(boxed.as_ref(), &*mock).await;
}

#[tokio::test]
async fn mock_arc_dyn() {
    let mock = Arc::new(MockProvider::new().with_kind("mock-arc"));
    let shared: Arc<dyn FulfillmentProvider> = mock.clone();
    assert_eq!(shared.kind(), "mock-arc");
    testkit::run_all(&*shared, &*mock).await;
    // The suite went through the shared handle: the mock saw its calls.
    assert!(mock.created_count() > 50);
}

#[tokio::test]
async fn long_slices_are_answered_whole() {
    let mock = MockProvider::new().with_capabilities(Capabilities::all(3, 3));
    testkit::track_honours_batch_limit(&mock, &mock).await;
    // The call record shows what the caller sent: one slice of 4.
    assert_eq!(mock.largest_batch(fulfillkit::error::Operation::Track), 4);
}

#[tokio::test]
async fn a_minimal_provider_passes_the_unsupported_check() {
    let mock = MockProvider::new().with_capabilities(Capabilities::new(10, 10));
    testkit::run_all(&mock, &mock).await;
}

/// The suite must catch a provider that breaks a contract; otherwise it proves nothing.
mod the_suite_catches_violations {
    use super::*;
    use async_trait::async_trait;
    use fulfillkit::model::{Order, Shipment, ShipmentRef, TrackingUpdate, Waybill};
    use fulfillkit::{Error, Result};

    /// Creates a new shipment on every call and ignores the batch limit.
    #[derive(Debug)]
    struct Sloppy {
        inner: MockProvider,
        counter: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl FulfillmentProvider for Sloppy {
        fn kind(&self) -> &str {
            "sloppy"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new(50, 50).with_stock(false)
        }
        async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
            let mut s = self.inner.create_order(order, waybill).await?;
            let n = self
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            s.reference.provider_ref = format!("{}-{n}", s.reference.provider_ref);
            Ok(s)
        }
        async fn track(&self, _: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
            Ok(vec![])
        }
        async fn stock(
            &self,
            _: &[fulfillkit::model::Sku],
        ) -> Result<Vec<fulfillkit::model::StockLevel>> {
            Err(Error::protocol("not what Unsupported looks like"))
        }
    }

    fn sloppy() -> Sloppy {
        Sloppy {
            inner: MockProvider::new(),
            counter: Default::default(),
        }
    }

    #[tokio::test]
    #[should_panic(expected = "a repeated create must return the same shipment")]
    async fn non_idempotent_create() {
        let p = sloppy();
        testkit::create_is_idempotent(&p, &p.inner).await;
    }

    #[tokio::test]
    #[should_panic(expected = "stock is not in the capabilities and must be Unsupported")]
    async fn wrong_unsupported_error() {
        testkit::unsupported_operations_say_so(&sloppy()).await;
    }

    #[tokio::test]
    #[should_panic(expected = "was not reported")]
    async fn dropped_unknown_status() {
        let p = sloppy();
        testkit::unknown_status_keeps_original(&p, &p.inner).await;
    }

    #[tokio::test]
    #[should_panic(expected = "must be TooLate")]
    async fn update_applied_after_lock() {
        // Locking at Delivered while the driver locks at Packed: updates still go through.
        let mock = MockProvider::new().with_lock_stage(StatusCode::Delivered);
        testkit::update_after_lock_is_too_late(&mock, &mock).await;
    }
}
