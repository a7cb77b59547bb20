//! The clusters of the reliability runs: the test harness's throwaway cluster
//! ([`migrations_tests::ClusterBuilder`], the one implementation), of our own rather than the
//! harness's shared one, so that it can be restarted and crashed at will
//! ([`Cluster::restart`] and [`Cluster::stop`] are immediate shutdowns). When this process runs
//! as root, the server runs as the `postgres` user. Dropping the value stops the server
//! (immediate mode) and removes its directories.

use std::path::Path;

pub use migrations_tests::cluster::server_user;
pub use migrations_tests::Cluster;
use migrations_tests::ClusterBuilder;

/// The harness's fast settings, except `wal_level`: what is tested is the server's crash
/// recovery, so the WAL is the one a production server writes (`replica`, the default), not
/// `minimal`'s, which skips the WAL of tables made in the same transaction.
fn builder() -> ClusterBuilder {
    ClusterBuilder::new()
        .setting("wal_level", "replica")
        .setting("max_connections", "100")
}

/// Makes and starts a cluster of our own.
pub fn start() -> Result<Cluster, String> {
    builder().start()
}

/// Like [`start`], with the data directory at `<data_parent>/data` (for example on a small file
/// system that is meant to fill up); the WAL stays in the cluster's own directory
/// ([`ClusterBuilder::data_dir_in`]).
pub fn start_in(data_parent: &Path) -> Result<Cluster, String> {
    builder().data_dir_in(data_parent).start()
}
