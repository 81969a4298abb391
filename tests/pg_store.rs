//! `PgStore` against a real PostgreSQL (a throwaway cluster the test starts, or
//! `DATABASE_URL`): the store suite, migrations, table names, rows an operator can read, and
//! claims split between concurrent claimers.
#![cfg(feature = "postgres")]

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use fulfillkit::model::ShipmentRef;
use fulfillkit::store::postgres::{MIGRATIONS, PgPool, PgStore};
use fulfillkit::store::{DuePosition, DueQuery, Effects, ExportState, Lease, Store};
use fulfillkit::testkit::{self, sample_record};
use support::pg::{TestDatabase, fresh_schema};

async fn pool(db: &TestDatabase) -> PgPool {
    sqlx_pool(db.url()).await
}

async fn sqlx_pool(url: &str) -> PgPool {
    fulfillkit::store::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await
        .expect("connect to the test database")
}

async fn store(pool: &PgPool, label: &str) -> PgStore {
    let store = PgStore::builder(pool.clone())
        .with_schema(fresh_schema(label))
        .build()
        .expect("store");
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_the_store_suite_and_keeps_rows_readable() {
    let Some(db) = TestDatabase::start("pg_store") else {
        return;
    };
    let pool = pool(&db).await;

    // The whole contract, on an empty store.
    let suite = store(&pool, "suite").await;
    testkit::run_store_suite(&suite).await;

    // Migrations: applied once, then nothing to do; a second store with another prefix in
    // the same schema is independent.
    let schema = fresh_schema("migrations");
    let first = PgStore::builder(pool.clone())
        .with_schema(schema.clone())
        .build()
        .expect("store");
    let all: Vec<i64> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(first.migrate().await.expect("migrate"), all);
    assert_eq!(
        first.migrate().await.expect("migrate again"),
        Vec::<i64>::new()
    );
    let other = PgStore::builder(pool.clone())
        .with_schema(schema.clone())
        .with_table_prefix("other_")
        .build()
        .expect("store");
    assert_eq!(other.migrate().await.expect("migrate other"), all);
    // A schema migrated by a newer release: this one refuses to start on it.
    let newer = PgStore::builder(pool.clone())
        .with_schema(schema.clone())
        .with_table_prefix("newer_")
        .build()
        .expect("store");
    newer.migrate().await.expect("migrate newer");
    sqlx::query(&format!(
        "INSERT INTO {schema}.newer_schema_migrations (version, name) VALUES (9999, 'from the future')"
    ))
    .execute(&pool)
    .await
    .expect("record a future migration");
    let refused = newer
        .migrate()
        .await
        .expect_err("a newer schema is refused");
    assert_eq!(refused.kind(), fulfillkit::ErrorKind::Store, "{refused}");

    let record = sample_record(
        "SO-ROW-1",
        "wapi-main",
        ExportState::Exporting {
            since: Utc
                .with_ymd_and_hms(2024, 5, 2, 9, 0, 0)
                .single()
                .expect("date"),
            owner: Some("replica-a".into()),
        },
    );
    assert!(
        first
            .insert(record.clone(), Effects::none())
            .await
            .expect("insert")
    );
    assert_eq!(other.get(&record.order_id).await.expect("get"), None);

    // Rows are the README's JSON: an operator reads them with psql.
    let (state, instance): (String, String) = sqlx::query_as(&format!(
        "SELECT record->'export'->>'state', record->>'instance' FROM {schema}.fulfillkit_shipments WHERE order_id = $1"
    ))
    .bind("SO-ROW-1")
    .fetch_one(&pool)
    .await
    .expect("read the row");
    assert_eq!(
        (state.as_str(), instance.as_str()),
        ("exporting", "wapi-main")
    );

    // Concurrent claimers split the due shipments: none claimed twice.
    let claims = store(&pool, "claims").await;
    for i in 0..400 {
        let id = format!("SO-CLAIM-{i:04}");
        let record = sample_record(
            &id,
            "wapi-main",
            ExportState::Exported {
                shipment: ShipmentRef::new(id.as_str(), format!("WH-{i}")),
                tracking_number: None,
                at: Utc
                    .with_ymd_and_hms(2024, 5, 2, 9, 0, 0)
                    .single()
                    .expect("date"),
            },
        );
        assert!(
            claims
                .insert(record, Effects::none())
                .await
                .expect("insert")
        );
    }
    let now = Utc
        .with_ymd_and_hms(2024, 5, 2, 12, 0, 0)
        .single()
        .expect("date");
    let claims = Arc::new(claims);
    let mut tasks = Vec::new();
    for replica in 0..8 {
        let claims = Arc::clone(&claims);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let lease = Lease::new(
                    format!("replica-{replica}"),
                    now + chrono::Duration::minutes(5),
                );
                let page = claims
                    .claim_due(&DueQuery::new("wapi-main", now, lease, 25).after(after.clone()))
                    .await
                    .expect("claim");
                let Some(last) = page.last() else {
                    break got;
                };
                after = Some(DuePosition::of(last));
                got.extend(page.into_iter().map(|r| r.order_id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.expect("claimer") {
            total += 1;
            seen.insert(id);
        }
    }
    assert_eq!(seen.len(), 400, "every due shipment claimed");
    assert_eq!(total, 400, "no shipment claimed by two claimers");

    // On a database of the host's (DATABASE_URL), leave nothing behind.
    if !db.is_throwaway() {
        for store in [suite.schema(), Some(schema.as_str()), claims.schema()]
            .into_iter()
            .flatten()
        {
            sqlx::query(&format!("DROP SCHEMA {store} CASCADE"))
                .execute(&pool)
                .await
                .expect("drop the test schema");
        }
    }
    pool.close().await;
}
