use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/hand_edited_lock", verify_lock);

fn main() {
    let _ = MIGRATIONS.len();
}
