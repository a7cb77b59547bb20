use migrations_core::{embed_migrations, Migrations};

// `verify_lock = true` in the directory's migrations.toml: no argument needed.
static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/verify_lock_setting");

fn main() {
    let _ = MIGRATIONS.len();
}
