//! The schema's versioned migrations, shipped in the crate, and [`PgStore::migrate`].

use sqlx::Row;

use super::{PgStore, db_error, sql};
use crate::error::{Error, Result};

/// The migrations, in order: (version, name, SQL with `{t}` / `{p}` for the table names).
/// Applied migrations are never edited; a schema change is a new file.
pub const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "initial", include_str!("migrations/0001_initial.sql"))];

impl PgStore {
    /// Brings the tables to this release's schema: creates the schema (if one was chosen) and
    /// the migrations table when missing, then applies every migration not applied yet, all
    /// in one transaction under an advisory lock, so replicas starting at once apply each
    /// migration once. Returns the versions it applied (empty when the schema was current).
    ///
    /// Run it at start-up before serving; it is safe to run on every start.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database fails, or when it holds a newer schema than this
    /// release knows (a newer release migrated it: run that release).
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let tables = &self.tables;
        let what = "migrate the postgres store";
        let mut tx = self.pool.begin().await.map_err(db_error(what))?;
        // One key per table set: stores with other prefixes migrate independently.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("fulfillkit migrate {}", tables.qualified))
            .execute(&mut *tx)
            .await
            .map_err(db_error(what))?;
        if let Some(schema) = &tables.schema {
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut *tx)
                .await
                .map_err(db_error(what))?;
        }
        let history = format!("{}schema_migrations", tables.qualified);
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {history} (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"
        ))
        .execute(&mut *tx)
        .await
        .map_err(db_error(what))?;
        let applied: Vec<i64> = sqlx::query(&format!("SELECT version FROM {history}"))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error(what))?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(db_error(what))?;
        let known = MIGRATIONS.last().map_or(0, |(v, _, _)| *v);
        if let Some(newer) = applied.iter().copied().find(|v| *v > known) {
            return Err(Error::store(
                what,
                NewerSchema {
                    found: newer,
                    known,
                },
            ));
        }
        let mut done = Vec::new();
        for (version, name, text) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let text = sql::with_tables(text, &tables.qualified, &tables.prefix);
            sqlx::raw_sql(&text)
                .execute(&mut *tx)
                .await
                .map_err(db_error(format!("apply migration {version} ({name})")))?;
            sqlx::query(&format!(
                "INSERT INTO {history} (version, name) VALUES ($1, $2)"
            ))
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error(what))?;
            done.push(*version);
        }
        tx.commit().await.map_err(db_error(what))?;
        if !done.is_empty() {
            tracing::info!(applied = ?done, tables = %tables.qualified, "fulfillkit store migrated");
        }
        Ok(done)
    }
}

/// The database holds a schema version this release does not know.
#[derive(Debug, thiserror::Error)]
#[error("the database schema is at version {found}, newer than this release knows ({known})")]
struct NewerSchema {
    found: i64,
    known: i64,
}
