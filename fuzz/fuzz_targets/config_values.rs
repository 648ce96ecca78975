//! `Config::parse` over raw values, as they come from the environment, flags and the
//! config file: any value for any setting is accepted or refused, never a panic, and
//! space around a value never changes the answer.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use video_pipeline::config::{Config, RawValues, SETTINGS};

#[derive(Arbitrary, Debug)]
struct Input {
    /// A setting (by its place in `SETTINGS`) and its value.
    values: Vec<(u8, String)>,
    /// The space put around every value the second time.
    padding: (String, String),
}

fn answer(raw: &RawValues) -> String {
    match Config::parse(raw) {
        Ok(config) => format!("{config:?}"),
        Err(e) => format!("error: {e}"),
    }
}

fuzz_target!(|input: Input| {
    let raw: RawValues = input
        .values
        .iter()
        .map(|(n, value)| {
            (
                SETTINGS[usize::from(*n) % SETTINGS.len()].name,
                value.clone(),
            )
        })
        .collect();
    let space = |s: &str| -> String { s.chars().filter(|c| c.is_whitespace()).collect() };
    let (before, after) = (space(&input.padding.0), space(&input.padding.1));
    let padded: RawValues = raw
        .iter()
        .map(|(name, value)| (*name, format!("{before}{value}{after}")))
        .collect();
    assert_eq!(answer(&raw), answer(&padded));
});
