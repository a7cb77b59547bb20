use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/missing_down_required", require_down);

fn main() {
    let _ = MIGRATIONS.len();
}
