use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/metadata_conflict");

fn main() {
    let _ = MIGRATIONS.len();
}
