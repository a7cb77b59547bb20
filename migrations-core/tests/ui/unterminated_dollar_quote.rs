use migrations_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("tests/ui/fixtures/unterminated_dollar_quote");

fn main() {
    let _ = MIGRATIONS.len();
}
