//! Cost of an address search served from the orchestrator's directory cache, over 100,000
//! cached entries, against two baselines measured in the same run:
//!
//! - `baseline_naive`: what a search without the cache's index costs, normalizing every
//!   entry's fields (accents, case) for every query and scanning them all;
//! - `baseline_prenormalized_scan`: the entries' text normalized once, then all scanned with
//!   `contains` per query and the matches sorted by label (no index).
//!
//! Run with `cargo bench --bench directory`. After criterion's own report, the bench prints
//! per-call percentiles (p50, p99) of each query, timed one call at a time, and the ratio of
//! each p50 to the baselines' p50.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use fulfillkit::model::{Address, AddressKind, AddressOption, AddressQuery, normalize_search_text};
use fulfillkit::orchestrator::{Instance, Orchestrator};
use fulfillkit::provider::mock::MockProvider;
use tokio::runtime::Runtime;

const ENTRIES: usize = 100_000;

const CITIES: &[(&str, &str)] = &[
    ("Łódź", "LOD"),
    ("Warszawa", "WAW"),
    ("Kraków", "KRK"),
    ("Gdańsk", "GDA"),
    ("Wrocław", "WRO"),
    ("Poznań", "POZ"),
    ("Szczecin", "SZC"),
    ("Bydgoszcz", "BYD"),
    ("Lublin", "LUB"),
    ("Białystok", "BIA"),
    ("Katowice", "KAT"),
    ("Gdynia", "GDY"),
    ("Częstochowa", "CZE"),
    ("Radom", "RAD"),
    ("Toruń", "TOR"),
    ("Sosnowiec", "SOS"),
    ("Kielce", "KIE"),
    ("Rzeszów", "RZE"),
    ("Gliwice", "GLI"),
    ("Zabrze", "ZAB"),
    ("Olsztyn", "OLS"),
    ("Bielsko-Biała", "BBI"),
    ("Bytom", "BYT"),
    ("Zielona Góra", "ZGO"),
    ("Rybnik", "RYB"),
    ("Ruda Śląska", "RSL"),
    ("Opole", "OPO"),
    ("Tychy", "TYC"),
    ("Gorzów Wielkopolski", "GOR"),
    ("Elbląg", "ELB"),
    ("Płock", "PLO"),
    ("Wałbrzych", "WAL"),
    ("Włocławek", "WLO"),
    ("Tarnów", "TAR"),
    ("Chorzów", "CHO"),
    ("Koszalin", "KOS"),
    ("Kalisz", "KAL"),
    ("Legnica", "LEG"),
    ("Grudziądz", "GRU"),
    ("Słupsk", "SLU"),
];

const STREETS: &[&str] = &[
    "ul. Piotrkowska",
    "ul. Marszałkowska",
    "ul. Żeromskiego",
    "ul. Mickiewicza",
    "ul. Słowackiego",
    "ul. Kościuszki",
    "ul. Sienkiewicza",
    "ul. Kopernika",
    "ul. Prusa",
    "ul. Chopina",
    "ul. Źródlana",
    "ul. Łąkowa",
    "ul. Ogrodowa",
    "ul. Polna",
    "ul. Leśna",
    "ul. Słoneczna",
    "ul. Krótka",
    "ul. Szkolna",
    "ul. Kwiatowa",
    "ul. Lipowa",
    "ul. Brzozowa",
    "ul. Kolejowa",
    "ul. Górna",
    "ul. Dworcowa",
    "ul. Świętokrzyska",
    "ul. Jagiellońska",
    "ul. Grunwaldzka",
    "ul. Wojska Polskiego",
    "ul. Armii Krajowej",
    "ul. Jana Pawła II",
    "al. Niepodległości",
    "al. Jerozolimskie",
    "ul. Zgierska",
    "ul. Pomorska",
    "ul. Narutowicza",
    "ul. Kilińskiego",
    "ul. Żwirki i Wigury",
    "ul. Długa",
    "ul. Szeroka",
    "ul. Rynek",
];

const SHOPS: &[&str] = &[
    "Kiosk Ruch",
    "Żabka",
    "Sklep Społem",
    "Stacja Orlen",
    "Punkt Pocztowy",
    "Księgarnia",
    "Apteka Dbam o Zdrowie",
    "Kwiaciarnia",
];

/// A Polish-looking directory: lockers, pickup points and door addresses in 40 cities.
fn directory(n: usize) -> Vec<AddressOption> {
    let mut rng = fastrand::Rng::with_seed(8);
    (0..n)
        .map(|i| {
            let (city, code) = CITIES[rng.usize(..CITIES.len())];
            let street = STREETS[rng.usize(..STREETS.len())];
            let number = rng.u32(1..200);
            let id = format!("{code}{i:05}{}", char::from(b'A' + (i % 26) as u8));
            let (kind, label) = match i % 5 {
                0..=2 => (AddressKind::Locker, format!("Paczkomat {id}")),
                3 => (
                    AddressKind::PickupPoint,
                    format!("{} {city}", SHOPS[rng.usize(..SHOPS.len())]),
                ),
                _ => (AddressKind::Door, format!("{street} {number}, {city}")),
            };
            AddressOption {
                id,
                kind,
                label,
                address: Address {
                    country: "PL".into(),
                    region: None,
                    city: city.into(),
                    postcode: format!("{:02}-{:03}", rng.u32(0..100), rng.u32(0..1000)),
                    lines: vec![format!("{street} {number}")],
                    provider_address_id: None,
                    pickup_point_id: None,
                },
                carrier: None,
                opening_hours: None,
            }
        })
        .collect()
}

struct Fixture {
    runtime: Runtime,
    orchestrator: Orchestrator,
    entries: Vec<AddressOption>,
    prenormalized: Vec<String>,
    queries: Vec<(&'static str, AddressQuery)>,
}

fn fixture() -> Fixture {
    let entries = directory(ENTRIES);
    let mock = MockProvider::new().with_directory(entries.clone());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("pl", "Poland", Arc::new(mock)))
        .build()
        .expect("valid configuration");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let sample = &entries[77_777];
    let pl = || AddressQuery::in_country("PL");
    let queries = vec![
        ("city_word", pl().with_text("lodz")),
        ("street_and_number", pl().with_text("piotrkowska 12")),
        ("exact_id", pl().with_text(sample.id.to_lowercase())),
        ("postcode", pl().with_text(sample.address.postcode.clone())),
        ("shop_and_city", pl().with_text("zabka gdansk")),
        ("infix", pl().with_text("kowsk")),
        ("one_letter", pl().with_text("p")),
    ];

    // Fill the cache once, timed: fetch from the mock and build the index.
    let started = Instant::now();
    let warm = runtime
        .block_on(orchestrator.search_addresses("pl", &queries[0].1))
        .expect("search");
    println!(
        "cache fill (mock fetch + index of {ENTRIES} entries): {:.0} ms, {} results for 'lodz'",
        started.elapsed().as_secs_f64() * 1e3,
        warm.len()
    );
    let prenormalized = entries.iter().map(haystack).collect();
    Fixture {
        runtime,
        orchestrator,
        entries,
        prenormalized,
        queries,
    }
}

/// An entry's searchable text, normalized.
fn haystack(o: &AddressOption) -> String {
    let mut text = normalize_search_text(&o.label);
    for field in o
        .address
        .lines
        .iter()
        .chain([&o.address.city, &o.id, &o.address.postcode])
    {
        text.push('\n');
        text.push_str(&normalize_search_text(field));
    }
    text
}

/// The search a host would write without the cache's index: normalize everything, keep the
/// entries containing every query word, sort by label, take 20.
fn naive(entries: &[AddressOption], text: &str) -> Vec<AddressOption> {
    let query = normalize_search_text(text);
    let words: Vec<&str> = query.split(' ').collect();
    let mut found: Vec<(String, &AddressOption)> = entries
        .iter()
        .filter_map(|o| {
            let text = haystack(o);
            words
                .iter()
                .all(|w| text.contains(w))
                .then(|| (normalize_search_text(&o.label), o))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().take(20).map(|(_, o)| o.clone()).collect()
}

/// The same over text normalized once (each haystack starts with the label, so sorting the
/// haystacks sorts by label).
fn prenormalized_scan<'a>(
    entries: &'a [AddressOption],
    haystacks: &[String],
    text: &str,
) -> Vec<&'a AddressOption> {
    let query = normalize_search_text(text);
    let words: Vec<&str> = query.split(' ').collect();
    let mut found: Vec<(&str, &AddressOption)> = entries
        .iter()
        .zip(haystacks)
        .filter(|(_, h)| words.iter().all(|w| h.contains(w)))
        .map(|(o, h)| (h.as_str(), o))
        .collect();
    found.sort_by(|a, b| a.0.cmp(b.0));
    found.into_iter().take(20).map(|(_, o)| o).collect()
}

const BASELINE_QUERY: &str = "piotrkowska 12";

fn search(c: &mut Criterion) {
    let f = fixture();
    let pl = "pl";

    let mut group = c.benchmark_group("directory_100k");
    for (name, query) in &f.queries {
        group.bench_function(*name, |b| {
            b.iter(|| {
                f.runtime
                    .block_on(f.orchestrator.search_addresses(&pl, black_box(query)))
            })
        });
    }
    group.finish();

    let mut baselines = c.benchmark_group("directory_100k_baselines");
    baselines.sampling_mode(SamplingMode::Flat).sample_size(10);
    baselines.bench_function("baseline_prenormalized_scan", |b| {
        b.iter(|| prenormalized_scan(&f.entries, &f.prenormalized, black_box(BASELINE_QUERY)))
    });
    baselines.bench_function("baseline_naive", |b| {
        b.iter(|| naive(&f.entries, black_box(BASELINE_QUERY)))
    });
    baselines.finish();
}

/// Per-call percentiles, timed one call at a time.
fn percentiles(calls: usize, mut call: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[calls / 2], times[calls * 99 / 100])
}

fn report() {
    let f = fixture();
    let pl = "pl";
    let (naive_p50, _) = percentiles(5, || {
        black_box(naive(&f.entries, BASELINE_QUERY));
    });
    let (scan_p50, _) = percentiles(50, || {
        black_box(prenormalized_scan(
            &f.entries,
            &f.prenormalized,
            BASELINE_QUERY,
        ));
    });
    println!("\nper call over {ENTRIES} cached entries (limit 20):");
    println!(
        "{:<20} {:>10} {:>10} {:>12} {:>12}",
        "query", "p50 µs", "p99 µs", "× naive", "× scan"
    );
    for (name, query) in &f.queries {
        let (p50, p99) = percentiles(2_000, || {
            black_box(
                f.runtime
                    .block_on(f.orchestrator.search_addresses(&pl, query))
                    .map(|r| r.len()),
            )
            .ok();
        });
        println!(
            "{name:<20} {:>10.1} {:>10.1} {:>12.0} {:>12.1}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            naive_p50.as_secs_f64() / p50.as_secs_f64(),
            scan_p50.as_secs_f64() / p50.as_secs_f64(),
        );
    }
    println!(
        "baseline_naive p50 {:.1} ms, baseline_prenormalized_scan p50 {:.2} ms (query {BASELINE_QUERY:?})",
        naive_p50.as_secs_f64() * 1e3,
        scan_p50.as_secs_f64() * 1e3
    );
}

criterion_group!(benches, search);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes `--bench`): `cargo test --benches` runs each
    // criterion benchmark once as a smoke test and should stay quick.
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
}
