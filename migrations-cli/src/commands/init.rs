//! `migrations init`: the directory, and the `build.rs` line that makes Cargo see new files.

use std::fs;
use std::path::Path;

use crate::exit::Error;

pub fn run(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        println!("{} exists", dir.display());
    } else {
        fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        println!("created {}", dir.display());
    }
    let line = format!(
        "println!(\"cargo:rerun-if-changed={}\");",
        dir.display().to_string().replace('\\', "/")
    );
    let build_rs = Path::new("build.rs");
    if !Path::new("Cargo.toml").is_file() {
        println!(
            "no Cargo.toml here: in the crate that calls embed_migrations!, add to build.rs: {line}"
        );
        return Ok(());
    }
    match fs::read_to_string(build_rs) {
        Ok(text) if text.contains("rerun-if-changed") => {
            println!("build.rs already has a rerun-if-changed line; check it names {}", dir.display());
        }
        Ok(_) => println!(
            "build.rs exists: add this line to its main() so new migration files rebuild the crate: {line}"
        ),
        Err(_) => {
            let text = format!(
                "// Rebuild when a migration file is added: embed_migrations! only tracks files it saw.\nfn main() {{\n    {line}\n}}\n"
            );
            fs::write(build_rs, text)
                .map_err(|e| Error::Io(format!("cannot write build.rs: {e}")))?;
            println!("created build.rs");
        }
    }
    Ok(())
}
