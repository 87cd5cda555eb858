//! The `pqdm` command line: parses arguments and calls the library, nothing more (see `cli`).

mod cli;

use pqdm::allocator::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    pqdm::allocator::return_freed_memory_promptly();
    pqdm::allocator::without_huge_pages();
    cli::main()
}
