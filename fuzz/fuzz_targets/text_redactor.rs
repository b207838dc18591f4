//! The text redactor never panics, and a text streamed in any pieces gives the one-shot result
//! (full built-in catalog, every detector masking).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden::core::dlp::catalog;
use warden::core::dlp::engine::{Action, Engine};
use warden::core::dlp::mask::{MaskKey, Tally};
use warden::core::dlp::text::{redact, Redaction, TextStream};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(catalog::builtin()).expect("catalog compiles"))
}

fuzz_target!(|input: (String, Vec<u16>)| {
    let (text, cuts) = input;
    let engine = engine();
    let actions = vec![Action::Mask; engine.specs().len()];
    let key = MaskKey::new(b"fuzz".to_vec());
    let redaction = Redaction { engine, actions: &actions, key: &key };
    let one_shot = redact(&redaction, &text, &mut Tally::default()).expect("mask never blocks").into_owned();
    let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (text.len() + 1)).collect();
    points.sort_unstable();
    let mut stream = TextStream::default();
    let mut tally = Tally::default();
    let mut streamed = String::new();
    let mut start = 0;
    for mut point in points {
        while !text.is_char_boundary(point) {
            point += 1;
        }
        streamed.push_str(&stream.push(&redaction, &text[start..point], &mut tally).expect("mask never blocks"));
        start = point;
    }
    streamed.push_str(&stream.push(&redaction, &text[start..], &mut tally).expect("mask never blocks"));
    streamed.push_str(&stream.finish(&redaction, &mut tally).expect("mask never blocks"));
    assert_eq!(streamed, one_shot);
});
