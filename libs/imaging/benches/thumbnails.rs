//! 256 px JPEG thumbnails of 12 MP camera-like JPEGs: this crate against
//! `vipsthumbnail` and GraphicsMagick, each tool in a child process over the
//! whole set, timed by `/usr/bin/time` (CPU = user + sys, peak RSS), three
//! runs each (median), and the mean PSNR of each tool's thumbnails against a
//! float Lanczos3 reference of the same size. Then the CPU cost of the
//! derivative set per image: ours by stage (`make_derivatives`, the upload
//! set, and `make_on_request` for `w2048`), and against the set made by
//! libvips (pyvips, `benches/vips_derivatives.py`, in one process that
//! decodes each image once; the whole set, and the upload set alone): CPU
//! per image, and the mean PSNR and SSIM of each output of both against
//! float Lanczos3 references made from the full decoded original. Then HEIC
//! and AVIF: the CPU of
//! decoding HEICs made from the same set by heif-enc, and of encoding a
//! 1080 px AVIF of each.
//!
//! `cargo bench -p pinhole-imaging --bench thumbnails`. Needs the packages
//! `time`, `mate-backgrounds`; `libvips-tools` and `graphicsmagick` for the
//! comparison, `libheif-examples` for the HEIC files, pyvips in
//! `target/bench-venv` for the libvips derivative set (`infra/bench-deps.sh`
//! installs them all; a missing tool is skipped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/reference.rs"]
mod reference;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use image::{DynamicImage, RgbImage};
use pinhole_imaging::{
    Limits, OutputFormat, StageTimes, decode, encode, fit_within, make_derivatives_timed,
    make_on_request, resize,
};
use reference::{FloatImage, lanczos, lanczos_region, psnr};

const LIMITS: Limits = Limits {
    max_pixels: 100_000_000,
};
const QUALITY: u8 = 85;
const EDGE: u32 = 256;
const RUNS: usize = 3;
const TIME: &str = "/usr/bin/time";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--thumbs") => thumbs(args[1].parse().unwrap(), Path::new(&args[2]), &args[3..]),
        Some("--derivatives") => derivatives(&args[1..]),
        Some("--derivatives-each") => derivatives_each(Path::new(&args[1]), &args[2..]),
        Some("--heif") => {
            let split = args.iter().position(|a| a == "--").unwrap();
            heif(&args[1..split], &args[split + 1..]);
        }
        _ => bench(),
    }
}

/// Worker: a 256 px JPEG thumbnail of each file into `out`, decoded at the
/// smallest scale with a longest edge of at least `decode_edge`.
fn thumbs(decode_edge: u32, out: &Path, files: &[String]) {
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let decoded = decode(&bytes, &LIMITS, Some(decode_edge)).unwrap();
        let (w, h) = fit_within(decoded.full_width, decoded.full_height, EDGE);
        let thumb = resize(&decoded.image, w, h).unwrap();
        let jpeg = encode(&thumb, OutputFormat::Jpeg, QUALITY).unwrap();
        std::fs::write(out.join(file_name(file)), jpeg).unwrap();
    }
}

/// The whole process's CPU time (every thread: libheif's decoders run
/// their own), from `/proc/self/stat` in clock ticks of 10 ms.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// CPU ms per image of HEIC decoding and 1080 px AVIF encoding (mean, max).
fn heif(heics: &[String], sources: &[String]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut decodes = Vec::new();
    for file in heics {
        let bytes = std::fs::read(file).unwrap();
        let start = process_cpu();
        let decoded = decode(&bytes, &LIMITS, None).unwrap();
        decodes.push(ms(process_cpu() - start));
        assert_eq!(decoded.format, pinhole_media::Format::Heic);
    }
    let mut avifs = Vec::new();
    let mut webps = Vec::new();
    for file in sources {
        let bytes = std::fs::read(file).unwrap();
        let decoded = decode(&bytes, &LIMITS, Some(1080)).unwrap();
        let (w, h) = fit_within(decoded.full_width, decoded.full_height, 1080);
        let img = resize(&decoded.image, w, h).unwrap();
        for _ in 0..3 {
            let start = process_cpu();
            encode(&img, OutputFormat::Avif, 60).unwrap();
            avifs.push(ms(process_cpu() - start));
            let start = process_cpu();
            encode(&img, OutputFormat::Webp, 80).unwrap();
            webps.push(ms(process_cpu() - start));
        }
    }
    let stats = |v: &[f64]| {
        (
            v.iter().sum::<f64>() / v.len().max(1) as f64,
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let ((dm, dx), (am, ax), (wm, wx)) = (stats(&decodes), stats(&avifs), stats(&webps));
    println!("{dm} {dx} {am} {ax} {wm} {wx}");
}

/// This thread's CPU time, from the scheduler.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Worker: the derivative set of each file; prints the stage totals in ms.
fn derivatives(files: &[String]) {
    let mut total = StageTimes::default();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let (_, times) = make_derivatives_timed(&bytes, &LIMITS, &thread_cpu).unwrap();
        total.decode += times.decode;
        total.resize += times.resize;
        total.jpeg_encode += times.jpeg_encode;
        total.webp_encode += times.webp_encode;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} {} {} {}",
        ms(total.decode),
        ms(total.resize),
        ms(total.jpeg_encode),
        ms(total.webp_encode)
    );
}

/// Worker: the derivative set of each file into `out` as
/// `<stem>.<name>.<jpg|webp>`: the upload set, then the outputs made on
/// request (each from its own decode, as the server makes them). Prints the
/// CPU ms of each file's upload set (reading it and making the set, not
/// writing it out) on one line, and of its outputs made on request on the
/// next. Ours runs on this one thread, so the thread's CPU is the
/// process's.
fn derivatives_each(out: &Path, files: &[String]) {
    let (mut upload, mut later) = (Vec::new(), Vec::new());
    for file in files {
        let start = thread_cpu();
        let bytes = std::fs::read(file).unwrap();
        let (set, _) = make_derivatives_timed(&bytes, &LIMITS, &thread_cpu).unwrap();
        upload.push((thread_cpu() - start).as_secs_f64() * 1000.0);
        let start = thread_cpu();
        let made_later: Vec<_> = set
            .later
            .iter()
            .map(|p| {
                make_on_request(&bytes, &LIMITS, p.name, p.format)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        later.push((thread_cpu() - start).as_secs_f64() * 1000.0);
        let stem = Path::new(file).file_stem().unwrap().to_string_lossy();
        for made in set.made.iter().chain(&made_later) {
            let ext = match made.format {
                OutputFormat::Jpeg => "jpg",
                _ => "webp",
            };
            std::fs::write(out.join(format!("{stem}.{}.{ext}", made.name)), &made.bytes).unwrap();
        }
    }
    for line in [upload, later] {
        let line: Vec<String> = line.iter().map(|ms| format!("{ms}")).collect();
        println!("{}", line.join(" "));
    }
}

fn file_name(path: &str) -> String {
    let stem = Path::new(path).file_stem().unwrap().to_string_lossy();
    format!("{stem}.jpg")
}

/// Six distinct 12 MP camera-like JPEGs (quality 90, baseline): crops of the
/// 5640x3172 photo at full resolution and upscaled crops of the 3840x2160
/// one (one portrait).
fn make_set(dir: &Path) -> Vec<String> {
    let open = |name: &str| {
        let path = format!("/usr/share/backgrounds/mate/abstract/{name}");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (install mate-backgrounds)"));
        decode(&bytes, &LIMITS, None).unwrap().image
    };
    let big = open("Elephants_5640x3172.jpg");
    let small = open("Elephants_3840x2160.jpg");
    let crops: [Crop<'_>; 6] = [
        (&big, (0, 0, 4000, 3000), (4000, 3000)),
        (&big, (1640, 172, 4000, 3000), (4000, 3000)),
        (&big, (820, 86, 4000, 3000), (4000, 3000)),
        (&small, (0, 0, 2880, 2160), (4000, 3000)),
        (&small, (960, 0, 2880, 2160), (4000, 3000)),
        (&small, (1500, 0, 1620, 2160), (3000, 4000)),
    ];
    let mut files = Vec::new();
    for (i, (src, (x, y, w, h), (tw, th))) in crops.into_iter().enumerate() {
        let crop = src.crop_imm(x, y, w, h);
        let img = if (w, h) == (tw, th) {
            crop
        } else {
            resize(&crop, tw, th).unwrap()
        };
        let path = dir.join(format!("camera{i}.jpg"));
        std::fs::write(&path, camera_jpeg(&img.to_rgb8())).unwrap();
        files.push(path.to_string_lossy().into_owned());
    }
    files
}

/// Baseline, quality 90, 4:2:2 chroma like most cameras.
fn camera_jpeg(rgb: &RgbImage) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_fastest_defaults();
    c.set_size(rgb.width() as usize, rgb.height() as usize);
    c.set_quality(90.0);
    c.set_chroma_sampling_pixel_sizes((2, 1), (2, 1));
    let mut started = c.start_compress(Vec::new()).unwrap();
    started.write_scanlines(rgb.as_raw()).unwrap();
    started.finish().unwrap()
}

struct Measured {
    cpu_ms: f64,
    rss_kb: u64,
    stdout: String,
}

/// Runs `cmd` under `/usr/bin/time`: user + sys CPU and peak RSS.
fn timed(cmd: &mut Command, scratch: &Path) -> Measured {
    let report = scratch.join("time.txt");
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let output = Command::new(TIME)
        .args(["-f", "%U %S %M", "-o"])
        .arg(&report)
        .arg(&program)
        .args(&args)
        .output()
        .expect("run /usr/bin/time");
    assert!(
        output.status.success(),
        "{program:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let last = text.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split_whitespace().collect();
    let user: f64 = fields[0].parse().unwrap();
    let sys: f64 = fields[1].parse().unwrap();
    Measured {
        cpu_ms: (user + sys) * 1000.0,
        rss_kb: fields[2].parse().unwrap(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The command that makes the thumbnails of `files` into `out`.
type MakeCommand = Box<dyn Fn(&Path, &[String]) -> Command>;
/// A tool: its name and its command (one process for the whole set).
type Tool = (&'static str, MakeCommand);
/// A source image, the region to take (x, y, w, h) and the size to make.
type Crop<'a> = (&'a DynamicImage, (u32, u32, u32, u32), (u32, u32));

fn tools(scratch: &Path) -> Vec<Tool> {
    let me = std::env::current_exe().unwrap();
    let ours = |decode_edge: u32| -> MakeCommand {
        let me = me.clone();
        Box::new(move |out: &Path, files: &[String]| {
            let mut c = Command::new(&me);
            c.arg("--thumbs")
                .arg(decode_edge.to_string())
                .arg(out)
                .args(files);
            c
        })
    };
    // Decoding at the smallest scale that covers 256 px (1/8 for 12 MP: the
    // DC coefficients only), and at twice that, as vipsthumbnail does.
    let mut tools: Vec<Tool> = vec![
        ("ours (>=256)", ours(EDGE)),
        ("ours (>=512)", ours(2 * EDGE)),
    ];
    if have("vipsthumbnail") {
        tools.push((
            "vipsthumbnail",
            Box::new(|out: &Path, files: &[String]| {
                let mut c = Command::new("vipsthumbnail");
                c.args(["-s", &EDGE.to_string(), "-o"])
                    .arg(format!("{}/%s.jpg[Q={QUALITY}]", out.display()))
                    .args(files);
                c
            }),
        ));
    } else {
        println!("skipping vipsthumbnail: not installed (apt-get install libvips-tools)");
    }
    if have("gm") {
        let script = scratch.join("gm-batch.txt");
        tools.push((
            "gm convert",
            Box::new(move |out: &Path, files: &[String]| {
                // `gm batch` runs the very `gm convert` command lines in one process.
                let lines: String = files
                    .iter()
                    .map(|f| {
                        format!(
                            "convert -size 512x512 {f} -thumbnail {EDGE}x{EDGE} -quality {QUALITY} {}\n",
                            out.join(file_name(f)).display()
                        )
                    })
                    .collect();
                std::fs::write(&script, lines).unwrap();
                let mut c = Command::new("gm");
                c.args(["batch", "-echo", "off", "-feedback", "off"]).arg(&script);
                c
            }),
        ));
    } else {
        println!("skipping gm: not installed (apt-get install graphicsmagick)");
    }
    tools
}

fn bench() {
    if !Path::new(TIME).is_file() {
        println!("skipping: {TIME} is missing (apt-get install time)");
        return;
    }
    let scratch =
        std::env::temp_dir().join(format!("pinhole-imaging-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    println!("making the 12 MP test set in {}", scratch.display());
    let files = make_set(&scratch);
    let n = files.len() as f64;

    // The reference: full decode, f32, Lanczos3 to each output's own size.
    let sources: Vec<FloatImage> = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            FloatImage::from_rgb(&decode(&bytes, &LIMITS, None).unwrap().image.to_rgb8())
        })
        .collect();
    let mut references: HashMap<(usize, u32, u32), RgbImage> = HashMap::new();

    println!(
        "\n256 px JPEG thumbnails (quality {QUALITY}) of {} 12 MP JPEGs, median of {RUNS} runs, one process per run",
        files.len()
    );
    println!(
        "{:<16} {:>12} {:>14} {:>12} {:>10} {:>10}",
        "tool", "CPU ms/img", "startup CPU ms", "peak RSS MB", "PSNR dB", "size"
    );
    let mut cpu_of = HashMap::new();
    let mut psnr_of = HashMap::new();
    for (name, make) in tools(&scratch) {
        let mut cpu = Vec::new();
        let mut rss = Vec::new();
        let out = scratch.join(format!("out-{}", name.replace(' ', "-")));
        for _ in 0..RUNS {
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).unwrap();
            let m = timed(&mut make(&out, &files), &scratch);
            cpu.push(m.cpu_ms / n);
            rss.push(m.rss_kb as f64 / 1024.0);
        }
        let empty = scratch.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let startup = median(
            (0..RUNS)
                .map(|_| timed(&mut make(&empty, &[]), &scratch).cpu_ms)
                .collect(),
        );
        let mut dbs = Vec::new();
        let mut size = (0, 0);
        for (i, f) in files.iter().enumerate() {
            let bytes = std::fs::read(out.join(file_name(f))).unwrap();
            let thumb = decode(&bytes, &LIMITS, None).unwrap().image.to_rgb8();
            size = thumb.dimensions();
            let reference = references
                .entry((i, size.0, size.1))
                .or_insert_with(|| lanczos(&sources[i], size.0, size.1));
            dbs.push(psnr(reference, &thumb));
        }
        let db = dbs.iter().sum::<f64>() / n;
        let cpu = median(cpu);
        println!(
            "{:<16} {:>12.1} {:>14.1} {:>12.1} {:>10.2} {:>10}",
            name,
            cpu,
            startup,
            median(rss),
            db,
            format!("{}x{}", size.0, size.1)
        );
        cpu_of.insert(name, cpu);
        psnr_of.insert(name, db);
    }
    if let Some(vips) = cpu_of.get("vipsthumbnail") {
        for ours in ["ours (>=256)", "ours (>=512)"] {
            println!(
                "vipsthumbnail CPU / {ours} CPU = {:.2} (PSNR {:.2} dB against vips {:.2} dB)",
                vips / cpu_of[ours],
                psnr_of[ours],
                psnr_of["vipsthumbnail"]
            );
        }
    }

    // The whole derivative set.
    let me = std::env::current_exe().unwrap();
    let mut runs: Vec<(f64, Vec<f64>)> = (0..RUNS)
        .map(|_| {
            let m = timed(
                Command::new(&me).arg("--derivatives").args(&files),
                &scratch,
            );
            let stages = m
                .stdout
                .split_whitespace()
                .map(|v| v.parse::<f64>().unwrap() / n)
                .collect();
            (m.cpu_ms / n, stages)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (cpu, stages) = &runs[runs.len() / 2];
    println!(
        "\nmake_derivatives (the upload set: thumb_256, w640, w1080 as JPEG q82 + WebP q80), median of {RUNS} runs:"
    );
    println!("  process CPU {cpu:.1} ms per 12 MP image (startup and file reading included)");
    println!(
        "  thread CPU by stage, ms per image: decode {:.1}, resizes {:.1}, JPEG encodes {:.1}, WebP encodes {:.1}",
        stages[0], stages[1], stages[2], stages[3]
    );
    against_libvips(&scratch, &files, &sources);
    heif_section(&scratch, &files);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The derivative set's outputs and formats, as both workers name the files.
const OUTPUTS: [&str; 4] = ["thumb_256", "w640", "w1080", "w2048"];
const FORMATS: [&str; 2] = ["jpg", "webp"];

/// The per-image CPU ms in the JSON lines of `vips_derivatives.py`, and
/// libvips' version from its last line.
fn vips_report(stdout: &str) -> (Vec<f64>, String) {
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let cpu = lines.iter().filter_map(|l| l["cpu_ms"].as_f64()).collect();
    let version = lines
        .iter()
        .find_map(|l| l["libvips"].as_str())
        .unwrap_or_default()
        .to_owned();
    (cpu, version)
}

/// Mean SSIM of the luma (BT.601) of two same-sized 8-bit RGB images, over
/// every 8x8 window (constants of Wang et al. for 8 bits), from summed-area
/// tables.
fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "SSIM needs equal sizes");
    let (w, h) = (a.width() as usize, a.height() as usize);
    let win = 8.min(w).min(h);
    let luma = |img: &RgbImage| -> Vec<f64> {
        img.pixels()
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .collect()
    };
    let (x, y) = (luma(a), luma(b));
    // Sums of x, y, x², y² and xy above and left of each point; a row and a
    // column of zeros in front.
    let stride = w + 1;
    let mut sat = vec![[0f64; 5]; stride * (h + 1)];
    for r in 0..h {
        let mut row = [0f64; 5];
        for c in 0..w {
            let (p, q) = (x[r * w + c], y[r * w + c]);
            for (acc, v) in row.iter_mut().zip([p, q, p * p, q * q, p * q]) {
                *acc += v;
            }
            let above = sat[r * stride + c + 1];
            let cell = &mut sat[(r + 1) * stride + c + 1];
            for (out, (up, left)) in cell.iter_mut().zip(above.iter().zip(&row)) {
                *out = up + left;
            }
        }
    }
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let n = (win * win) as f64;
    let (mut total, mut count) = (0.0, 0usize);
    for r in 0..=h - win {
        for c in 0..=w - win {
            let s = |k: usize| {
                sat[(r + win) * stride + c + win][k]
                    - sat[r * stride + c + win][k]
                    - sat[(r + win) * stride + c][k]
                    + sat[r * stride + c][k]
            };
            let (mx, my) = (s(0) / n, s(1) / n);
            let (vx, vy, cxy) = (s(2) / n - mx * mx, s(3) / n - my * my, s(4) / n - mx * my);
            total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    total / count as f64
}

/// Ours and libvips (pyvips, one process, each image decoded once) making
/// the same derivative set of `files`: CPU per image of both, alternating
/// runs, and the quality of each output against float Lanczos3 references
/// made from the full decoded original (`sources`).
fn against_libvips(scratch: &Path, files: &[String], sources: &[FloatImage]) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = here.join("../../target/bench-venv/bin/python");
    let script = here.join("benches/vips_derivatives.py");
    let usable = Command::new(&python)
        .args(["-c", "import pyvips"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        println!(
            "\nskipping the libvips derivative set: no pyvips in target/bench-venv \
             (bash infra/bench-deps.sh, or python3 -m venv target/bench-venv && \
             target/bench-venv/bin/pip install -r libs/imaging/benches/requirements.txt)"
        );
        return;
    }
    let n = files.len() as f64;
    let me = std::env::current_exe().unwrap();
    let ours_out = scratch.join("set-ours");
    let vips_out = scratch.join("set-libvips");
    let vips_upload_out = scratch.join("set-libvips-upload");
    // libvips through `env`, which execs it: /usr/bin/time times python.
    let vips = |out: &Path, concurrency: &[&str], set: &[&str]| {
        let mut c = Command::new("env");
        c.args(concurrency)
            .arg(&python)
            .arg(&script)
            .args(set)
            .arg(out)
            .args(files);
        c
    };
    let ones = |line: Option<&str>| -> Vec<f64> {
        line.unwrap_or_default()
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap())
            .collect()
    };
    // Per run, per image: ours at upload, ours on request (w2048 in both
    // formats), libvips' whole set, libvips' upload set.
    let (mut ours_each, mut later_each) = (Vec::new(), Vec::new());
    let (mut vips_each, mut vips_upload_each) = (Vec::new(), Vec::new());
    let (mut ours_total, mut vips_total) = (Vec::new(), Vec::new());
    let mut version = String::new();
    // Alternating, so that other load on the machine falls on all alike.
    for _ in 0..RUNS {
        for dir in [&ours_out, &vips_out, &vips_upload_out] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).unwrap();
        }
        let m = timed(
            Command::new(&me)
                .arg("--derivatives-each")
                .arg(&ours_out)
                .args(files),
            scratch,
        );
        ours_total.push(m.cpu_ms / n);
        let mut lines = m.stdout.lines();
        ours_each.push(ones(lines.next()));
        later_each.push(ones(lines.next()));
        let m = timed(&mut vips(&vips_out, &["VIPS_CONCURRENCY=1"], &[]), scratch);
        vips_total.push(m.cpu_ms / n);
        let (cpu, v) = vips_report(&m.stdout);
        assert_eq!(cpu.len(), files.len(), "{}", m.stdout);
        vips_each.push(cpu);
        version = v;
        let m = timed(
            &mut vips(&vips_upload_out, &["VIPS_CONCURRENCY=1"], &["--upload-set"]),
            scratch,
        );
        let (cpu, _) = vips_report(&m.stdout);
        assert_eq!(cpu.len(), files.len(), "{}", m.stdout);
        vips_upload_each.push(cpu);
    }
    // Once more at libvips' own concurrency (a thread per core).
    let default_out = scratch.join("set-libvips-default");
    std::fs::create_dir_all(&default_out).unwrap();
    let m = timed(
        &mut vips(&default_out, &["-u", "VIPS_CONCURRENCY"], &[]),
        scratch,
    );
    let default_cpu = vips_report(&m.stdout).0.iter().sum::<f64>() / n;

    println!(
        "\nthe derivative set, ours against libvips {version} (pyvips, one process, VIPS_CONCURRENCY=1: \
         thumbnail to 2048 with shrink-on-load, resize lanczos3 to the rest, \
         JPEG q82 4:2:0 optimised, WebP q80 effort 0; its upload set: thumbnail to 1080, \
         the rest from it), CPU ms per image (reading and making, not writing), median of {RUNS} runs:"
    );
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>14} {:>11} {:>13} {:>16}",
        "image",
        "ours upload",
        "ours w2048",
        "libvips set",
        "libvips upload",
        "upload/set",
        "upload/upload",
        "(upload+w2048)/set"
    );
    let per_image = |runs: &[Vec<f64>], i: usize| median(runs.iter().map(|r| r[i]).collect());
    let mut sums = [0.0; 4];
    for (i, f) in files.iter().enumerate() {
        let row =
            [&ours_each, &later_each, &vips_each, &vips_upload_each].map(|runs| per_image(runs, i));
        for (sum, v) in sums.iter_mut().zip(row) {
            *sum += v;
        }
        let stem = Path::new(f).file_stem().unwrap().to_string_lossy();
        let [o, l, v, u] = row;
        println!(
            "{stem:<10} {o:>12.1} {l:>12.1} {v:>12.1} {u:>14.1} {:>11.2} {:>13.2} {:>16.2}",
            o / v,
            o / u,
            (o + l) / v
        );
    }
    let [ours_mean, later_mean, vips_mean, upload_mean] = sums.map(|s| s / n);
    println!(
        "{:<10} {ours_mean:>12.1} {later_mean:>12.1} {vips_mean:>12.1} {upload_mean:>14.1} {:>11.2} {:>13.2} {:>16.2}",
        "mean",
        ours_mean / vips_mean,
        ours_mean / upload_mean,
        (ours_mean + later_mean) / vips_mean
    );
    let (ours_total, vips_total) = (median(ours_total), median(vips_total));
    println!(
        "  whole process per image (/usr/bin/time, startup included): ours (upload set and w2048) \
         {ours_total:.1}, libvips {vips_total:.1} ({:.2}); libvips at its default concurrency (one run): \
         {default_cpu:.1}",
        ours_total / vips_total
    );

    // Quality: the references cached by image, output and size.
    let mut references: HashMap<(usize, &str, u32, u32), RgbImage> = HashMap::new();
    println!(
        "{:<16} {:>10} {:>13} {:>10} {:>13} {:>9} {:>11}",
        "output", "ours PSNR", "libvips PSNR", "ours SSIM", "libvips SSIM", "ours KB", "libvips KB"
    );
    let mut worse = Vec::new();
    for name in OUTPUTS {
        for ext in FORMATS {
            // [ours, libvips]: sums of PSNR, SSIM and bytes.
            let mut sums = [[0f64; 3]; 2];
            for (i, f) in files.iter().enumerate() {
                let stem = Path::new(f).file_stem().unwrap().to_string_lossy();
                for (k, dir) in [&ours_out, &vips_out].into_iter().enumerate() {
                    let bytes = std::fs::read(dir.join(format!("{stem}.{name}.{ext}"))).unwrap();
                    let img = decode(&bytes, &LIMITS, None).unwrap().image.to_rgb8();
                    let (w, h) = img.dimensions();
                    let reference = references.entry((i, name, w, h)).or_insert_with(|| {
                        let src = &sources[i];
                        if name == "thumb_256" {
                            // The centred square of the original.
                            let side = f64::from(src.width.min(src.height));
                            let left = (f64::from(src.width) - side) / 2.0;
                            let top = (f64::from(src.height) - side) / 2.0;
                            lanczos_region(src, (left, top, side, side), w, h)
                        } else {
                            lanczos(src, w, h)
                        }
                    });
                    sums[k][0] += psnr(reference, &img);
                    sums[k][1] += ssim(reference, &img);
                    sums[k][2] += bytes.len() as f64 / 1024.0;
                }
            }
            let [o, v] = sums.map(|s| s.map(|x| x / n));
            let label = format!("{name} {ext}");
            println!(
                "{label:<16} {:>10.2} {:>13.2} {:>10.4} {:>13.4} {:>9.1} {:>11.1}",
                o[0], v[0], o[1], v[1], o[2], v[2]
            );
            if o[0] < v[0] || o[1] < v[1] {
                worse.push(label);
            }
        }
    }
    println!(
        "  goal (at most half libvips' CPU per image, PSNR and SSIM at least libvips' for each output): \
         CPU at upload {:.2}x libvips' set ({}), quality {}",
        ours_mean / vips_mean,
        if ours_mean <= vips_mean / 2.0 {
            "met"
        } else {
            "not met"
        },
        if worse.is_empty() {
            "met".to_owned()
        } else {
            format!("below libvips for {}", worse.join(", "))
        }
    );
}

/// HEIC decoding and AVIF encoding, in a child process (libheif's threads
/// counted).
fn heif_section(scratch: &Path, files: &[String]) {
    let mut heics = Vec::new();
    if have("heif-enc") {
        for file in files {
            let out = scratch.join(format!(
                "{}.heic",
                Path::new(file).file_stem().unwrap().to_string_lossy()
            ));
            let status = Command::new("heif-enc")
                .args(["-q", "50", "-o"])
                .arg(&out)
                .arg(file)
                .output()
                .unwrap()
                .status;
            assert!(status.success(), "heif-enc {file}");
            heics.push(out.to_string_lossy().into_owned());
        }
    } else {
        println!("skipping HEIC decoding: heif-enc is missing (apt-get install libheif-examples)");
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new(&me)
        .arg("--heif")
        .args(&heics)
        .arg("--")
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    println!("\nHEIC and AVIF (process CPU, every thread, ms per image: mean / max):");
    if !heics.is_empty() {
        println!(
            "  decoding a 12 MP HEIC (heif-enc -q 50): {:.1} / {:.1}",
            v[0], v[1]
        );
    }
    println!(
        "  encoding a 1080 px AVIF (q60): {:.1} / {:.1}; the same as WebP (q80): {:.1} / {:.1}",
        v[2], v[3], v[4], v[5]
    );
}
