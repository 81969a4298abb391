//! The address / pickup-point directory through the orchestrator: accent-insensitive search in
//! several languages, ranking and limits, the cache with its TTL on an injected clock, strict
//! addresses at export and in `validate_address`, and pickup points carrying opening hours.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::Capabilities;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::testkit::sample_order;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2024, 5, 10, 8, 0, 0).unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
    }

    fn clock(&self) -> Clock {
        let now = self.0.clone();
        Arc::new(move || *now.lock().unwrap())
    }
}

fn point(
    id: &str,
    kind: AddressKind,
    label: &str,
    (country, city, postcode): (&str, &str, &str),
    street: &str,
) -> AddressOption {
    AddressOption {
        id: id.into(),
        kind,
        label: label.into(),
        address: Address {
            country: country.into(),
            region: None,
            city: city.into(),
            postcode: postcode.into(),
            lines: vec![street.into()],
            provider_address_id: None,
            pickup_point_id: None,
        },
        carrier: None,
        opening_hours: None,
    }
}

fn hours() -> OpeningHours {
    let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    OpeningHours::on(
        &Weekday::ALL[..5],
        &[TimeRange {
            from: t(8),
            to: t(20),
        }],
    )
}

/// Entries in Polish, German, Czech and Bulgarian.
fn directory() -> Vec<AddressOption> {
    use AddressKind::*;
    let mut with_hours = point(
        "LOD01A",
        Locker,
        "Paczkomat LOD01A",
        ("PL", "Łódź", "90-001"),
        "ul. Piotrkowska 12",
    );
    with_hours.opening_hours = Some(hours());
    vec![
        with_hours,
        point(
            "GDA07",
            PickupPoint,
            "Punkt Gdańsk Wrzeszcz",
            ("PL", "Gdańsk", "80-208"),
            "al. Grunwaldzka 76",
        ),
        point(
            "KRK-2",
            PickupPoint,
            "Kiosk Żółkiewskiego",
            ("PL", "Kraków", "31-539"),
            "ul. Żółkiewskiego 3",
        ),
        point(
            "WAW-DOOR",
            Door,
            "Biuro Warszawa",
            ("PL", "Warszawa", "00-850"),
            "ul. Prosta 1",
        ),
        point(
            "ZH-1",
            PickupPoint,
            "Kiosk Zürich HB",
            ("CH", "Zürich", "8001"),
            "Bahnhofplatz 1",
        ),
        point(
            "M-12",
            PickupPoint,
            "Paketshop München",
            ("DE", "München", "80331"),
            "Hauptstraße 5",
        ),
        point(
            "PLZ-3",
            PickupPoint,
            "Výdejní místo Plzeň",
            ("CZ", "Plzeň", "301 00"),
            "Náměstí Republiky 1",
        ),
        point(
            "UST-1",
            PickupPoint,
            "Výdejní místo Ústí",
            ("CZ", "Ústí nad Labem", "400 01"),
            "Mírové náměstí 2",
        ),
        point(
            "SOF-1",
            PickupPoint,
            "Офис София Център",
            ("BG", "София", "1000"),
            "бул. Витоша 1",
        ),
        point(
            "AIT-1",
            PickupPoint,
            "Офис Айтос",
            ("BG", "Айтос", "8500"),
            "ул. Цар Освободител 5",
        ),
    ]
}

struct Setup {
    orchestrator: Orchestrator,
    mock: Arc<MockProvider>,
    clock: TestClock,
}

fn setup_with(mock: MockProvider, settings: InstanceSettings, ttl: Option<Duration>) -> Setup {
    let mock = Arc::new(mock);
    let clock = TestClock::new();
    let mut builder = Orchestrator::builder()
        .instance(Instance::new("dir", "Directory", mock.clone()).with_settings(settings))
        .rule(RoutingRule::new("all", Condition::Always, "dir"))
        .clock(clock.clock());
    if let Some(ttl) = ttl {
        builder = builder.directory_cache_ttl(ttl);
    }
    Setup {
        orchestrator: builder.build().unwrap(),
        mock,
        clock,
    }
}

fn setup() -> Setup {
    setup_with(
        MockProvider::new().with_directory(directory()),
        InstanceSettings::default(),
        None,
    )
}

fn strict() -> Setup {
    setup_with(
        MockProvider::new().with_directory(directory()),
        InstanceSettings::default().with_strict_addresses(true),
        None,
    )
}

fn dir() -> InstanceId {
    "dir".into()
}

async fn ids(s: &Setup, query: AddressQuery) -> Vec<String> {
    s.orchestrator
        .search_addresses(&dir(), &query)
        .await
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
        .into_iter()
        .map(|o| o.id)
        .collect()
}

fn searches(s: &Setup) -> usize {
    s.mock.calls_of(Operation::SearchAddresses).len()
}

// ---------------------------------------------------------------------------------------------
// Matching

#[tokio::test]
async fn accent_insensitive_search_in_several_languages() {
    let s = setup();
    let cases: &[(&str, &str, &[&str])] = &[
        // Polish
        ("PL", "lodz", &["LOD01A"]),
        ("PL", "ŁÓDŹ", &["LOD01A"]),
        ("PL", "gdansk", &["GDA07"]),
        ("PL", "krakow", &["KRK-2"]),
        ("PL", "zolkiewskiego 3", &["KRK-2"]),
        ("PL", "piotrkowska", &["LOD01A"]),
        // German (and Swiss German)
        ("CH", "zurich", &["ZH-1"]),
        ("DE", "munchen", &["M-12"]),
        ("DE", "hauptstrasse", &["M-12"]),
        ("DE", "strasse", &["M-12"]),
        // Czech
        ("CZ", "plzen", &["PLZ-3"]),
        ("CZ", "usti nad labem", &["UST-1"]),
        ("CZ", "namesti", &["PLZ-3", "UST-1"]),
        // Bulgarian: Cyrillic kept as is, case folded; й is not и.
        ("BG", "софия", &["SOF-1"]),
        ("BG", "СОФИЯ", &["SOF-1"]),
        ("BG", "sofia", &[]),
        ("BG", "айтос", &["AIT-1"]),
        ("BG", "аитос", &[]),
        ("BG", "витоша", &["SOF-1"]),
    ];
    for (country, text, expected) in cases {
        let found = ids(&s, AddressQuery::in_country(*country).with_text(*text)).await;
        assert_eq!(found, *expected, "{country} {text:?}");
    }
    assert_eq!(searches(&s), 5, "one directory fetch per country");
}

#[tokio::test]
async fn by_postcode_and_id_ranked_exact_first() {
    let s = setup();
    let pl = || AddressQuery::in_country("PL");
    assert_eq!(ids(&s, pl().with_text("90-001")).await, ["LOD01A"]);
    assert_eq!(ids(&s, pl().with_text("90001")).await, ["LOD01A"]);
    assert_eq!(ids(&s, pl().with_text("krk2")).await, ["KRK-2"]);
    let by_postcode = AddressQuery {
        postcode: Some("80".into()),
        ..pl()
    };
    assert_eq!(ids(&s, by_postcode).await, ["GDA07"]);
    let cz = AddressQuery {
        postcode: Some("30100".into()),
        ..AddressQuery::in_country("CZ")
    };
    assert_eq!(ids(&s, cz).await, ["PLZ-3"], "punctuation ignored");
    // A postcode prefix as text: "80" starts GDA07's postcode and no other word.
    assert_eq!(ids(&s, pl().with_text("80")).await, ["GDA07"]);
}

#[tokio::test]
async fn ranking_and_limits() {
    let mut entries: Vec<AddressOption> = (0..30)
        .map(|i| {
            point(
                &format!("P{i:02}"),
                AddressKind::PickupPoint,
                &format!("Punkt {i:02}"),
                ("PL", "Łódź", "90-001"),
                "ul. Piotrkowska 1",
            )
        })
        .collect();
    // Exact id beats everything; a label starting with the query beats a word elsewhere;
    // a word start beats a word's inside.
    entries.push(point(
        "LODZ",
        AddressKind::Locker,
        "Zzz last by label",
        ("PL", "Warszawa", "00-001"),
        "ul. Prosta 1",
    ));
    entries.push(point(
        "L2",
        AddressKind::Locker,
        "Łódzka Apteka",
        ("PL", "Warszawa", "00-001"),
        "ul. Prosta 2",
    ));
    entries.push(point(
        "L3",
        AddressKind::Locker,
        "Aaa first by label",
        ("PL", "Warszawa", "00-001"),
        "ul. Nowolodzka 3",
    ));
    let s = setup_with(
        MockProvider::new().with_directory(entries),
        InstanceSettings::default(),
        None,
    );
    let query = AddressQuery::in_country("PL").with_text("lodz");
    let found = ids(&s, query.clone()).await;
    assert_eq!(
        found.len(),
        DEFAULT_ADDRESS_LIMIT,
        "limit 0 means the default"
    );
    assert_eq!(&found[..4], ["LODZ", "L2", "P00", "P01"]);
    let all = ids(&s, query.clone().with_limit(100)).await;
    assert_eq!(all.len(), 33);
    assert_eq!(all.last().map(String::as_str), Some("L3"), "infix last");
    assert_eq!(ids(&s, query.with_limit(2)).await, ["LODZ", "L2"]);
    let lockers = AddressQuery {
        pickup_points_only: true,
        ..AddressQuery::in_country("PL").with_text("prosta")
    };
    // Same rank: label order ("Łódzka Apteka" before "Zzz last by label").
    assert_eq!(ids(&s, lockers).await, ["L2", "LODZ"]);
}

#[tokio::test]
async fn pickup_points_only_drops_door_addresses() {
    let s = setup();
    let everything = AddressQuery::in_country("PL").with_limit(100);
    assert_eq!(ids(&s, everything.clone()).await.len(), 4);
    let points = AddressQuery {
        pickup_points_only: true,
        ..everything
    };
    let found = ids(&s, points).await;
    assert_eq!(found.len(), 3);
    assert!(!found.contains(&"WAW-DOOR".to_string()));
}

// ---------------------------------------------------------------------------------------------
// Cache

#[tokio::test]
async fn the_directory_is_cached_for_an_hour_on_the_injected_clock() {
    let s = setup();
    let query = AddressQuery::in_country("PL").with_text("lodz");
    ids(&s, query.clone()).await;
    ids(&s, query.clone().with_text("gdansk")).await;
    assert_eq!(searches(&s), 1);
    let call = &s.mock.calls_of(Operation::SearchAddresses)[0];
    assert!(!call.failed);

    s.clock.advance(Duration::from_secs(3599));
    ids(&s, query.clone()).await;
    assert_eq!(searches(&s), 1);
    s.clock.advance(Duration::from_secs(1));
    ids(&s, query).await;
    assert_eq!(searches(&s), 2, "expired after 1 h");
}

#[tokio::test]
async fn the_ttl_is_configurable_and_keys_are_country_and_city() {
    let s = setup_with(
        MockProvider::new().with_directory(directory()),
        InstanceSettings::default(),
        Some(Duration::from_secs(10)),
    );
    ids(&s, AddressQuery::in_country("PL")).await;
    ids(&s, AddressQuery::in_country("pl")).await;
    assert_eq!(searches(&s), 1, "country in any case is one key");
    ids(&s, AddressQuery::in_country("PL").with_city("Gdańsk")).await;
    ids(&s, AddressQuery::in_country("PL").with_city(" Gdańsk ")).await;
    assert_eq!(searches(&s), 2, "a city is its own directory");
    s.clock.advance(Duration::from_secs(10));
    ids(&s, AddressQuery::in_country("PL")).await;
    assert_eq!(searches(&s), 3);
}

#[tokio::test]
async fn a_city_query_asks_the_provider_for_that_city_only() {
    let s = setup();
    let found = ids(
        &s,
        AddressQuery::in_country("PL")
            .with_city("Gdańsk")
            .with_text("punkt"),
    )
    .await;
    assert_eq!(found, ["GDA07"]);
}

#[tokio::test]
async fn a_failed_fetch_is_not_cached() {
    let s = setup();
    s.mock.fail_next(
        Operation::SearchAddresses,
        Error::Timeout {
            what: "directory".into(),
        },
        1,
    );
    let query = AddressQuery::in_country("PL").with_text("lodz");
    let err = s
        .orchestrator
        .search_addresses(&dir(), &query)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    assert_eq!(ids(&s, query).await, ["LOD01A"]);
    assert_eq!(searches(&s), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_searches_on_a_cold_cache_fetch_once() {
    let s = setup_with(
        MockProvider::new()
            .with_directory(directory())
            .with_latency(Duration::from_millis(50)),
        InstanceSettings::default(),
        None,
    );
    let orchestrator = Arc::new(s.orchestrator);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let o = orchestrator.clone();
            tokio::spawn(async move {
                o.search_addresses(&dir(), &AddressQuery::in_country("PL").with_text("lodz"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap()[0].id, "LOD01A");
    }
    assert_eq!(s.mock.calls_of(Operation::SearchAddresses).len(), 1);
}

#[tokio::test]
async fn a_provider_without_a_directory_answers_unsupported_without_a_call() {
    let s = setup_with(
        MockProvider::new().with_capabilities(Capabilities::new(50, 100)),
        InstanceSettings::default(),
        None,
    );
    let err = s
        .orchestrator
        .search_addresses(&dir(), &AddressQuery::in_country("PL"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                operation: Operation::SearchAddresses,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(s.mock.calls().is_empty());
    // Not strict: any address is fine, and nothing is asked.
    s.orchestrator
        .validate_address(&dir(), &sample_order("SO-1").address)
        .await
        .unwrap();
    let err = s
        .orchestrator
        .search_addresses("nope", &AddressQuery::in_country("PL"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

// ---------------------------------------------------------------------------------------------
// Strict addresses

#[test]
fn strict_mode_on_a_provider_without_a_directory_is_refused_at_build() {
    let no_directory = Arc::new(MockProvider::new().with_capabilities(Capabilities::new(50, 100)));
    let err = Orchestrator::builder()
        .instance(
            Instance::new("strict", "s", no_directory)
                .with_settings(InstanceSettings::default().with_strict_addresses(true)),
        )
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }));
    assert_eq!(
        err.field_errors()[0].path,
        "instances[0].settings.strict_addresses"
    );
}

fn polish_order(id: &str, address: Address) -> Order {
    let mut order = sample_order(id);
    order.address = address;
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order
}

#[tokio::test]
async fn a_pickup_point_chosen_from_the_directory_fills_the_address_and_carries_its_hours() {
    let s = strict();
    let found = s
        .orchestrator
        .search_addresses(&dir(), &AddressQuery::in_country("PL").with_text("lodz"))
        .await
        .unwrap();
    let chosen = &found[0];
    let pickup = chosen
        .to_pickup_point()
        .expect("a locker is a pickup point");
    assert_eq!(pickup.opening_hours, hours());
    assert_eq!(pickup.postcode, "90-001");

    let address = chosen.to_address();
    assert_eq!(
        (address.city.as_str(), address.postcode.as_str()),
        ("Łódź", "90-001")
    );
    assert_eq!(address.lines, ["ul. Piotrkowska 12"]);
    assert_eq!(address.provider_address_id.as_deref(), Some("LOD01A"));
    assert_eq!(address.pickup_point_id.as_deref(), Some("LOD01A"));
    s.orchestrator
        .validate_address(&dir(), &address)
        .await
        .unwrap();

    // Later, the order card finds the entry (and its hours) from the saved address.
    let entry = s
        .orchestrator
        .directory_entry(&dir(), &address)
        .await
        .unwrap()
        .expect("in the directory");
    assert_eq!(entry.opening_hours, Some(hours()));
    assert_eq!(
        s.orchestrator
            .directory_entry(&dir(), &sample_order("x").address)
            .await
            .unwrap(),
        None
    );

    let order = polish_order("SO-1", address);
    assert!(matches!(
        s.orchestrator.on_order_confirmed(&order).await.unwrap(),
        ExportOutcome::Exported { .. }
    ));
    // The whole-country directory fetched for the search answered the checks too.
    assert_eq!(searches(&s), 1);
}

#[tokio::test]
async fn strict_export_refuses_an_address_not_in_the_directory() {
    let s = strict();
    let mut typed_in = directory()[1].to_address();
    typed_in.provider_address_id = None;
    let mut stale = directory()[1].to_address();
    stale.provider_address_id = Some("GDA-GONE".into());

    for (i, address) in [typed_in, stale].into_iter().enumerate() {
        let err = s
            .orchestrator
            .validate_address(&dir(), &address)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err:?}");
        assert_eq!(err.field_errors()[0].path, "address.provider_address_id");

        let order = polish_order(&format!("SO-{i}"), address);
        let err = s.orchestrator.on_order_confirmed(&order).await.unwrap_err();
        assert_eq!(err.field_errors()[0].path, "address.provider_address_id");
    }
    assert_eq!(s.mock.created_count(), 0);
    assert_eq!(
        searches(&s),
        1,
        "one fetch of Gdańsk's directory served every check"
    );
}

#[tokio::test]
async fn strict_export_accepts_directory_entries_from_the_cache() {
    let s = strict();
    for (i, option) in directory()
        .iter()
        .filter(|o| o.address.country == "PL")
        .enumerate()
    {
        let order = polish_order(&format!("SO-{i}"), option.to_address());
        assert!(
            matches!(
                s.orchestrator.on_order_confirmed(&order).await.unwrap(),
                ExportOutcome::Exported { .. }
            ),
            "{}",
            option.id
        );
    }
    assert_eq!(s.mock.created_count(), 4);
    assert_eq!(
        searches(&s),
        4,
        "one city directory per city, each fetched once"
    );
    // Again for the same city: cached.
    let again = polish_order("SO-AGAIN", directory()[0].to_address());
    let _ = s.orchestrator.on_order_confirmed(&again).await.unwrap();
    assert_eq!(searches(&s), 4);
}

#[tokio::test]
async fn without_strict_mode_every_address_passes() {
    let s = setup();
    let mut unknown = sample_order("SO-1").address;
    unknown.provider_address_id = Some("NOPE".into());
    s.orchestrator
        .validate_address(&dir(), &unknown)
        .await
        .unwrap();
    assert_eq!(searches(&s), 0);
}
