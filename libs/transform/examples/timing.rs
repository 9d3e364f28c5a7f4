//! Times each transform on a photo: `cargo run --example timing -- [path] [options...]`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use pinhole_transform::{Caps, NoVision, Options, Presets, apply};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "/usr/share/backgrounds/mate/nature/Storm.jpg".into());
    let t = Instant::now();
    let img = image::open(&path).unwrap();
    println!("decode {}x{}: {:?}", img.width(), img.height(), t.elapsed());
    let list: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        [
            "rs:fit:640:640",
            "rs:fill:256:256",
            "rs:crop:500:300",
            "rs:fit:2400:2400,el:1",
            "gs",
            "br:20,co:20,sa:20",
            "bl:5",
            "sh:1",
        ]
        .map(String::from)
        .to_vec()
    };
    for s in list {
        let o = Options::parse(&s, &Presets::standard(), &Caps::default()).unwrap();
        let t = Instant::now();
        let out = apply(img.clone(), &o, &NoVision).unwrap();
        println!("{s}: {}x{} in {:?}", out.width(), out.height(), t.elapsed());
    }
}
