use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/malformed_lock_file", verify_lock);

fn main() {
    let _ = MIGRATIONS.len();
}
