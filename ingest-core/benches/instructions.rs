//! One case, one side, run once: the program `scripts/bench.sh` runs under
//! `valgrind --tool=callgrind` to count instructions, which stay put on a
//! busy machine where times do not.
//!
//! ```text
//! instructions CASE ours|baseline|setup
//! instructions list
//! ```
//!
//! `setup` builds the request and stops; the script subtracts its count from
//! the other two, leaving the work itself. `list` prints the cases, one a
//! line: name, events, what the request is, what the baseline does (tabs). Started by `cargo bench` (with
//! `--bench`, and no case), it runs every case once and checks the results.

mod cases;

use cases::{Prepared, CASES};
use std::hint::black_box;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let (name, side) = match args.as_slice() {
        [] => {
            for case in CASES {
                Prepared::new(case).check();
            }
            println!("instructions: {} cases decode and parse", CASES.len());
            return ExitCode::SUCCESS;
        }
        [list] if list == "list" => {
            for case in CASES {
                println!("{}\t{}\t{}\t{}", case.name, case.events, case.what, case.baseline);
            }
            return ExitCode::SUCCESS;
        }
        [name, side] => (name.as_str(), side.as_str()),
        _ => {
            eprintln!("usage: instructions CASE ours|baseline|setup, or instructions list");
            return ExitCode::from(2);
        }
    };
    let Some(case) = cases::find(name) else {
        eprintln!("instructions: no case named {name}");
        return ExitCode::from(2);
    };
    let prepared = black_box(Prepared::new(case));
    match side {
        "ours" => {
            black_box(prepared.ours());
        }
        "baseline" => {
            black_box(prepared.baseline());
        }
        "setup" => {}
        _ => {
            eprintln!("instructions: side must be ours, baseline or setup");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
