//! Fleets: the same migrations on many databases and tenant schemas, in parallel, each target
//! as safe as a single run (feature `connect`).
//!
//! - **Targets** ([`Target`]): databases, by connection string or by a service name of libpq's
//!   `pg_service.conf`, with optional labels; from a `fleet.toml` ([`read_fleet_file`], feature
//!   `load`) or built in code. Tenant schemas: [`list_tenants`] runs a query on a registry
//!   database (one schema name per row), and [`Target::tenant`] makes a target of each.
//! - **The run** ([`Fleet`]): every target gets exactly the single run, on a connection of its
//!   own: its advisory lock, its drift checks, its history. At most [`Fleet::jobs`] targets run
//!   at once, and the run never holds more connections than that (the registry's session is
//!   closed before the first target starts; a target's session is closed before its worker
//!   takes the next). A canary ([`Fleet::canary`]) runs first and alone; the rest follow in
//!   waves ([`Fleet::wave_size`]). A failing target is reported and the others go on, unless
//!   [`Fleet::fail_fast`]. Running the fleet again resumes: a target that is done costs the
//!   one-query warm check, a failed one runs again.
//! - **Sharding** ([`Shard`]): a stable slice of the targets by the hash of each name, for N
//!   workers of a scheduler (a Kubernetes Indexed Job, a CI matrix).
//!
//! # Tenant schemas
//!
//! For a tenant target the [`Migrator`](crate::Migrator) is set up as follows, before
//! [`Fleet::configure`] (which may override any of it):
//! - the history tables live in the tenant's schema ([`Migrator::schema`](crate::Migrator::schema)),
//!   so each tenant has its own history, its own lock key and its own drift checks;
//! - `${tenant}` is the schema's name (a placeholder: checksums are those of the files as
//!   written, so every tenant records the same checksum);
//! - `search_path` is `"<tenant>", public` for the migrations' own SQL: unqualified names
//!   land in the tenant's schema, and extensions installed in `public` still resolve. SQL that
//!   must name the schema (a `GRANT ... ON SCHEMA`, a cross-schema reference) writes
//!   `${tenant}`;
//! - for `up`, the schema is created first if it does not exist (`CREATE SCHEMA IF NOT
//!   EXISTS`), since the history goes there.
//!
//! # `fleet.toml`
//!
//! ```toml
//! [[database]]
//! name = "eu-1"                          # optional: the identity in reports and for --shard
//! url = "postgres://migrator@db-eu-1/app" # or: service = "eu-1" (pg_service.conf)
//! labels = { region = "eu" }
//!
//! [[database]]
//! service = "us-1"                        # named after the service when `name` is absent
//! ```
//!
//! Without `name`, a database is named after its service, else `user@host:port/database`
//! (never a password). Names must be unique: they identify targets and decide their shard.
//! Keep passwords out of the file: `.pgpass` and `PGPASSWORD` work as for a single run.

mod run;
mod shard;
mod targets;

pub use run::{Action, Fleet, FleetReport, Progress, TargetReport, TargetState};
pub use shard::{slice_of, Shard};
pub use targets::{
    list_tenants, list_tenants_blocking, service_connection_string, FleetError, Target,
};
#[cfg(feature = "load")]
pub use targets::{parse_fleet_file, read_fleet_file};
