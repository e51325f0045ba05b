//! Times whole processes in interleaved rounds: each round runs every command once, in turn.
//!
//! hyperfine runs one command's runs back to back, so a stretch of noise from a neighbour on a
//! shared VM lands on one command only and skews the comparison. Interleaving spreads it over
//! all of them. Writes hyperfine's JSON shape (`results[].command/median/times`, seconds).
//!
//! Usage: interleave ROUNDS WARMUP OUT.json NAME=COMMAND... (COMMAND split on spaces)

use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rounds, warmup, out, commands @ ..] = args.as_slice() else {
        eprintln!("usage: interleave ROUNDS WARMUP OUT.json NAME=COMMAND...");
        std::process::exit(2);
    };
    let (rounds, warmup): (usize, usize) = (rounds.parse().unwrap(), warmup.parse().unwrap());
    let commands: Vec<(&str, Vec<&str>)> = commands
        .iter()
        .map(|spec| {
            let (name, line) = spec.split_once('=').expect("NAME=COMMAND");
            (name, line.split_whitespace().collect())
        })
        .collect();
    let mut times = vec![Vec::with_capacity(rounds); commands.len()];
    for round in 0..warmup + rounds {
        for (index, (name, argv)) in commands.iter().enumerate() {
            let started = Instant::now();
            let status = Command::new(argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .expect("spawn");
            let elapsed = started.elapsed().as_secs_f64();
            assert!(status.success(), "{name} failed: {status}");
            if round >= warmup {
                times[index].push(elapsed);
            }
        }
    }
    let results: Vec<String> = commands
        .iter()
        .zip(&mut times)
        .map(|((name, _), times)| {
            times.sort_by(f64::total_cmp);
            let listed: Vec<String> = times.iter().map(f64::to_string).collect();
            format!(
                "{{\"command\":\"{name}\",\"median\":{},\"times\":[{}]}}",
                times[times.len() / 2],
                listed.join(",")
            )
        })
        .collect();
    std::fs::write(out, format!("{{\"results\":[{}]}}\n", results.join(","))).unwrap();
}
