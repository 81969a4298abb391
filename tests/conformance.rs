//! The conformance suite against `MockProvider`, used directly, boxed and shared.

use std::sync::Arc;

use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{Capabilities, FulfillmentProvider};
use fulfillkit::testkit;

#[tokio::test]
async fn mock_plain() {
    let mock = MockProvider::new();
    let report = testkit::run_all(&mock, &mock).await;
    // The mock has no wire, so only the batch-size observation is skipped.
    let skipped: Vec<_> = report.skipped.iter().map(|s| s.check).collect();
    assert_eq!(skipped, ["track (batch size)"]);
    assert!(
        report
            .passed
            .contains(&"search_addresses (limit 0 is everything)")
    );
    assert!(report.passed.contains(&"lock (an unknown status keeps it)"));
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
    let report = testkit::run_all(&mock, &mock).await;
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.check == "update_order" && s.reason.contains("capabilities"))
    );
}
