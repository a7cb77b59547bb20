//! A fleet's targets: databases (by connection string or `pg_service.conf` name, from a
//! `fleet.toml` or built in code) and tenant schemas listed by a query on a registry database.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::connect::ConnectOptions;
use crate::error::Error;

/// One target of a fleet run: a database, or a tenant schema in one.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    connect: ConnectOptions,
    tenant: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Target {
    /// A database: `name` identifies it in reports and decides its shard (keep it stable);
    /// `connect` says how to reach it.
    pub fn database(name: impl Into<String>, connect: ConnectOptions) -> Target {
        Target {
            name: name.into(),
            connect,
            tenant: None,
            labels: BTreeMap::new(),
        }
    }

    /// A tenant schema in this target's database: named `<database>/<schema>`, its history in
    /// that schema, `${tenant}` set to the schema's name (see the [module docs](super)).
    pub fn tenant(&self, schema: impl Into<String>) -> Target {
        let schema = schema.into();
        Target {
            name: format!("{}/{schema}", self.name),
            connect: self.connect.clone(),
            tenant: Some(schema),
            labels: self.labels.clone(),
        }
    }

    /// The same target under another name (a tenant of the only database is named after its
    /// schema alone).
    pub fn named(mut self, name: impl Into<String>) -> Target {
        self.name = name.into();
        self
    }

    /// Adds a label (`region = "eu"`), shown in reports.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Target {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The target's name: its identity in reports and for [`Shard`](super::Shard).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant schema, for a tenant target.
    pub fn tenant_schema(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// How to connect to the target's database.
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.connect
    }

    /// The target's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

/// A problem with the fleet's definition: the fleet file, a service name, the tenants query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The fleet file cannot be read or has a mistake (a message naming the file, the line
    /// where there is one, and the fix).
    #[error("{0}")]
    File(String),
    /// The tenants query failed or returned something that is not a list of schema names.
    #[error("listing the tenants of {target}: {source}")]
    Tenants {
        /// The database the query ran on.
        target: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// The blocking API was called inside a Tokio runtime, or no runtime could be built.
    #[error("{0}")]
    Runtime(String),
}

/// Reads a `fleet.toml` (see the [module docs](super) for its shape). `defaults` fills what a
/// database does not say (the connection timeout, the application name).
#[cfg(feature = "load")]
pub fn read_fleet_file(path: &Path, defaults: &ConnectOptions) -> Result<Vec<Target>, FleetError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FleetError::File(format!("cannot read {}: {e}", path.display())))?;
    parse_fleet_file(&text, path, defaults)
}

/// Parses the text of a `fleet.toml` (`path` names it in errors).
#[cfg(feature = "load")]
pub fn parse_fleet_file(
    text: &str,
    path: &Path,
    defaults: &ConnectOptions,
) -> Result<Vec<Target>, FleetError> {
    let file = path.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| format!(":{}", text[..span.start].matches('\n').count() + 1))
            .unwrap_or_default();
        FleetError::File(format!("{file}{line}: {}", e.message()))
    })?;
    let line_of = |needle: &str| {
        text.find(needle)
            .map(|at| format!(":{}", text[..at].matches('\n').count() + 1))
            .unwrap_or_default()
    };
    for key in table.keys() {
        if key != "database" {
            return Err(FleetError::File(format!(
                "{file}{}: unknown key `{key}`: a fleet file lists [[database]] entries \
                 (url or service, optional name and labels)",
                line_of(key)
            )));
        }
    }
    let Some(entries) = table.get("database") else {
        return Err(FleetError::File(format!(
            "{file}: no [[database]] entry: add one per database, with `url = \"postgres://...\"` \
             or `service = \"name\"`"
        )));
    };
    let entries = entries.as_array().ok_or_else(|| {
        FleetError::File(format!(
            "{file}: `database` must be an array of tables: write [[database]], not [database]"
        ))
    })?;
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    for (n, entry) in entries.iter().enumerate() {
        let n = n + 1;
        let at = format!("{file}: database #{n}");
        let entry = entry
            .as_table()
            .ok_or_else(|| FleetError::File(format!("{at}: not a table")))?;
        let string = |key: &str| -> Result<Option<String>, FleetError> {
            match entry.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(FleetError::File(format!("{at}: `{key}` must be a string"))),
            }
        };
        for key in entry.keys() {
            if !["name", "url", "service", "labels"].contains(&key.as_str()) {
                return Err(FleetError::File(format!(
                    "{at}: unknown key `{key}` (known: name, url, service, labels)"
                )));
            }
        }
        let url = match (string("url")?, string("service")?) {
            (Some(url), None) => url,
            (None, Some(service)) => service_connection_string(&service)
                .map_err(|why| FleetError::File(format!("{at}: service `{service}`: {why}")))?,
            (Some(_), Some(_)) => {
                return Err(FleetError::File(format!(
                    "{at}: give either `url` or `service`, not both"
                )))
            }
            (None, None) => {
                return Err(FleetError::File(format!(
                    "{at}: no `url` or `service`: say how to reach this database"
                )))
            }
        };
        let connect = ConnectOptions {
            url: Some(url),
            ..defaults.clone()
        };
        let name = match (string("name")?, string("service")?) {
            (Some(name), _) => name,
            (None, Some(service)) => service,
            // The resolved target without its password: `user@host:port/database`.
            (None, None) => crate::connect::describe_target(&connect)
                .map_err(|e| FleetError::File(format!("{at}: {e}")))?,
        };
        if name.is_empty() {
            return Err(FleetError::File(format!("{at}: `name` is empty")));
        }
        if !seen.insert(name.clone()) {
            return Err(FleetError::File(format!(
                "{at}: the name `{name}` is used twice: names identify targets (and decide \
                 their shard), give each database its own `name`"
            )));
        }
        let mut target = Target::database(name, connect);
        match entry.get("labels") {
            None => {}
            Some(toml::Value::Table(labels)) => {
                for (key, value) in labels {
                    let value = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(n) => n.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        _ => {
                            return Err(FleetError::File(format!(
                                "{at}: label `{key}` must be a string"
                            )))
                        }
                    };
                    target = target.label(key.clone(), value);
                }
            }
            Some(_) => {
                return Err(FleetError::File(format!(
                    "{at}: `labels` must be a table, for example labels = {{ region = \"eu\" }}"
                )))
            }
        }
        targets.push(target);
    }
    Ok(targets)
}

/// The connection string of a service in libpq's service file (`PGSERVICEFILE`, else
/// `~/.pg_service.conf`, else `PGSYSCONFDIR/pg_service.conf`), as `key=value` pairs: a section
/// `[name]` of `key=value` lines, `#` comments. The first file that has the section wins.
pub fn service_connection_string(service: &str) -> Result<String, String> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("PGSERVICEFILE").filter(|v| !v.is_empty()) {
        files.push(file.into());
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(Path::new(&home).join(".pg_service.conf"));
    }
    match std::env::var_os("PGSYSCONFDIR").filter(|v| !v.is_empty()) {
        Some(dir) => files.push(Path::new(&dir).join("pg_service.conf")),
        None => files.push("/etc/postgresql-common/pg_service.conf".into()),
    }
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        if let Some(pairs) = service_section(&text, service) {
            if pairs.is_empty() {
                return Err(format!(
                    "the section [{service}] of {} is empty",
                    file.display()
                ));
            }
            return Ok(pairs
                .iter()
                .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(" "));
        }
    }
    Err(format!(
        "no section [{service}] in {} (PGSERVICEFILE or ~/.pg_service.conf, and \
         PGSYSCONFDIR/pg_service.conf)",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The `key=value` lines of section `[service]`, or `None` when the file lacks it.
fn service_section(text: &str, service: &str) -> Option<Vec<(String, String)>> {
    let mut inside = false;
    let mut found = false;
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == service;
            found |= inside;
            continue;
        }
        if inside {
            if let Some((key, value)) = line.split_once('=') {
                pairs.push((key.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    found.then_some(pairs)
}

/// Runs `query` on `registry`'s database and returns the tenant schemas it lists: the first
/// column of each row, in the query's order. A NULL, an empty name, a name longer than
/// PostgreSQL's 63-byte identifiers (it would be cut, and the history land in another schema)
/// or a name listed twice is an error naming the row.
pub async fn list_tenants(registry: &Target, query: &str) -> Result<Vec<String>, FleetError> {
    let fail = |source: Error| FleetError::Tenants {
        target: registry.name().to_owned(),
        source: Box::new(source),
    };
    let (client, task) = crate::connect::connect_async_owned(registry.connect_options())
        .await
        .map_err(|e| fail(e.into()))?;
    let result = {
        use crate::db::Conn;
        crate::db::AsyncConn(&client).simple(query).await
    };
    drop(client);
    // The registry's session is closed before any target is: the run holds --jobs at most.
    let _ = task.await;
    let rows = result.map_err(|source| {
        fail(Error::Db {
            context: format!("running the tenants query `{query}`"),
            source,
        })
    })?;
    let mut tenants: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for row in rows {
        let n = tenants.len() + 1;
        let bad = |why: String| {
            fail(Error::Db {
                context: format!("the tenants query `{query}`"),
                source: crate::db::DbError::runner(
                    format!("row {n}: {why}"),
                    Some("the query must return one schema name per row".to_owned()),
                ),
            })
        };
        let name = row
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| bad("NULL (or no column) instead of a schema name".to_owned()))?;
        if name.is_empty() {
            return Err(bad("an empty schema name".to_owned()));
        }
        if name.len() > 63 {
            return Err(bad(format!(
                "`{name}` is longer than 63 bytes, PostgreSQL's identifier limit"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(bad(format!("`{name}` is listed twice")));
        }
        tenants.push(name);
    }
    Ok(tenants)
}

/// The blocking twin of [`list_tenants`], on a Tokio runtime of its own (refused inside one).
pub fn list_tenants_blocking(registry: &Target, query: &str) -> Result<Vec<String>, FleetError> {
    runtime()?.block_on(list_tenants(registry, query))
}

/// A runtime for the blocking API; refused inside a runtime, whose thread it would block.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, FleetError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FleetError::Runtime(
            "the blocking fleet API was called inside a Tokio runtime: use the async one"
                .to_owned(),
        ));
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FleetError::Runtime(format!("cannot start a Tokio runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_section_is_read_as_key_value_pairs() {
        let text = "# comment\n[other]\nhost=x\n[eu1]\nhost = db.eu\nport=5433\n\n[last]\n";
        assert_eq!(
            service_section(text, "eu1").unwrap(),
            vec![
                ("host".to_owned(), "db.eu".to_owned()),
                ("port".to_owned(), "5433".to_owned())
            ]
        );
        assert_eq!(service_section(text, "last").unwrap(), vec![]);
        assert!(service_section(text, "missing").is_none());
    }

    #[cfg(feature = "load")]
    #[test]
    fn the_fleet_file_names_its_mistakes() {
        let path = Path::new("fleet.toml");
        let d = ConnectOptions::default();
        let ok = parse_fleet_file(
            "[[database]]\nname = \"eu\"\nurl = \"postgres://u:secret@h/eu\"\nlabels = { region = \"eu\" }\n\
             [[database]]\nurl = \"postgres://u:secret@h:5433/us\"\n",
            path,
            &d,
        )
        .unwrap();
        assert_eq!(ok[0].name(), "eu");
        assert_eq!(ok[0].labels()["region"], "eu");
        assert_eq!(ok[1].name(), "u@h:5433/us");
        let err = |text: &str| parse_fleet_file(text, path, &d).unwrap_err().to_string();
        assert_eq!(
            err("[[database]]\nname = \"a\"\n"),
            "fleet.toml: database #1: no `url` or `service`: say how to reach this database"
        );
        assert_eq!(
            err("[[database]]\nname = \"a\"\nurl = \"postgres://h/a\"\n[[database]]\nname = \"a\"\nurl = \"postgres://h/b\"\n"),
            "fleet.toml: database #2: the name `a` is used twice: names identify targets (and \
             decide their shard), give each database its own `name`"
        );
        assert_eq!(
            err("[[database]]\nurl = \"postgres://h/a\"\nlabel = 1\n"),
            "fleet.toml: database #1: unknown key `label` (known: name, url, service, labels)"
        );
        assert!(err("[[database]\n").starts_with("fleet.toml:1: "));
    }
}
