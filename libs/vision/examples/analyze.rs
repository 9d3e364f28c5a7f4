//! Prints the analysis of each picture given on the command line (fitted within
//! 640 px first, as the thumbnails role does) with per-step timings:
//! `cargo run -p pinhole-vision --example analyze -- photo.jpg ...`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let img = image::open(&path).expect("readable image").to_rgb8();
        let img = if img.width().max(img.height()) > 640 {
            let k = 640.0 / f64::from(img.width().max(img.height()));
            let (w, h) = (
                (f64::from(img.width()) * k).round() as u32,
                (f64::from(img.height()) * k).round() as u32,
            );
            image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
        } else {
            img
        };
        // Fastest of 7 runs (wall clock, and CPU time of this thread): the least
        // disturbed by other processes.
        let time = |f: &dyn Fn()| {
            let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..7 {
                let (start, start_cpu) = (Instant::now(), thread_cpu_ms());
                f();
                wall = wall.min(start.elapsed().as_secs_f64() * 1000.0);
                cpu = cpu.min(thread_cpu_ms() - start_cpu);
            }
            format!("{wall:7.2} ms wall {cpu:7.2} ms cpu")
        };
        let _ = pinhole_vision::detect_faces(&img); // load the model outside the timings
        println!("{path} ({}x{})", img.width(), img.height());
        println!(
            "  analyze     {}",
            time(&|| {
                black_box(pinhole_vision::analyze(&img));
            })
        );
        println!(
            "  thumbhash   {}",
            time(&|| {
                black_box(pinhole_vision::thumbhash(&img));
            })
        );
        println!(
            "  dominant    {}",
            time(&|| {
                black_box(pinhole_vision::dominant_color(&img));
            })
        );
        println!(
            "  phash       {}",
            time(&|| {
                black_box(pinhole_vision::phash(&img));
            })
        );
        println!(
            "  faces       {}",
            time(&|| {
                black_box(pinhole_vision::detect_faces(&img));
            })
        );
        let (w, h) = (img.width() / 2, img.height());
        println!(
            "  smart_crop  {}",
            time(&|| {
                black_box(pinhole_vision::smart_crop(&img, w, h));
            })
        );
        let analysis = pinhole_vision::analyze(&img);
        println!("  {}", serde_json::to_string(&analysis).unwrap());
    }
}

/// CPU time of the current thread in ms (Linux `schedstat`; 0 elsewhere).
fn thread_cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}
