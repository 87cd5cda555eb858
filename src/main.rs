//! The `pqdm` command line: parses arguments and calls the library, nothing more (see `cli`).

mod cli;

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
