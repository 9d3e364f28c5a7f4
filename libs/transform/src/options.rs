//! The options grammar: `rs:fill:300:200,g:ea,q:80`.

use crate::color::Adjustments;
use crate::error::TransformError;
use crate::geometry::Rect;

/// How `w`/`h` are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// Scale to fit inside the box, keeping the aspect ratio.
    #[default]
    Fit,
    /// Scale to cover the box, then crop to it at the gravity. Without `el:1`, a box larger
    /// than the source shrinks (keeping its aspect ratio) until it fits inside the source.
    Fill,
    /// Cut a `w` x `h` window at the gravity without scaling (clamped to the image).
    Crop,
}

impl ResizeMode {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "fit" => Some(Self::Fit),
            "fill" => Some(Self::Fill),
            "crop" => Some(Self::Crop),
            _ => None,
        }
    }

    /// The grammar's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fit => "fit",
            Self::Fill => "fill",
            Self::Crop => "crop",
        }
    }
}

/// Where a crop window is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    /// Centre (`ce`).
    #[default]
    Centre,
    /// Top edge (`no`).
    North,
    /// Bottom edge (`so`).
    South,
    /// Right edge (`ea`).
    East,
    /// Left edge (`we`).
    West,
    /// Top-right corner (`noea`).
    NorthEast,
    /// Top-left corner (`nowe`).
    NorthWest,
    /// Bottom-right corner (`soea`).
    SouthEast,
    /// Bottom-left corner (`sowe`).
    SouthWest,
    /// Centred on the detected faces, else the centre (`face`).
    Face,
    /// Chosen by [`crate::Vision::smart_crop`] (`sm`).
    Smart,
}

impl Gravity {
    /// Parses the grammar's name (`ce`, `noea`, `face`, `sm`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ce" => Self::Centre,
            "no" => Self::North,
            "so" => Self::South,
            "ea" => Self::East,
            "we" => Self::West,
            "noea" => Self::NorthEast,
            "nowe" => Self::NorthWest,
            "soea" => Self::SouthEast,
            "sowe" => Self::SouthWest,
            "face" => Self::Face,
            "sm" => Self::Smart,
            _ => return None,
        })
    }

    /// The grammar's name of the gravity.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Centre => "ce",
            Self::North => "no",
            Self::South => "so",
            Self::East => "ea",
            Self::West => "we",
            Self::NorthEast => "noea",
            Self::NorthWest => "nowe",
            Self::SouthEast => "soea",
            Self::SouthWest => "sowe",
            Self::Face => "face",
            Self::Smart => "sm",
        }
    }

    /// Horizontal and vertical anchor as fractions (0 = left/top, 1 = right/bottom);
    /// `None` for face and smart gravity.
    pub(crate) fn anchor(self) -> Option<(f64, f64)> {
        Some(match self {
            Self::Centre => (0.5, 0.5),
            Self::North => (0.5, 0.0),
            Self::South => (0.5, 1.0),
            Self::East => (1.0, 0.5),
            Self::West => (0.0, 0.5),
            Self::NorthEast => (1.0, 0.0),
            Self::NorthWest => (0.0, 0.0),
            Self::SouthEast => (1.0, 1.0),
            Self::SouthWest => (0.0, 1.0),
            Self::Face | Self::Smart => return None,
        })
    }
}

/// Mirroring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flip {
    /// Mirror left-right.
    pub horizontal: bool,
    /// Mirror top-bottom.
    pub vertical: bool,
}

/// Output format requested with `f:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `jpeg` or `jpg`.
    Jpeg,
    /// `png`.
    Png,
    /// `webp`.
    Webp,
    /// `gif`.
    Gif,
    /// `avif` (parsed; the server may refuse to encode it).
    Avif,
}

impl Format {
    /// Parses a format name or file extension.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "jpeg" | "jpg" => Self::Jpeg,
            "png" => Self::Png,
            "webp" => Self::Webp,
            "gif" => Self::Gif,
            "avif" => Self::Avif,
            _ => return None,
        })
    }

    /// The canonical name, also the usual file extension except `jpeg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Avif => "avif",
        }
    }
}

/// Limits on what a transform may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Maximum output width x height.
    pub max_output_pixels: u64,
    /// Maximum output width and height.
    pub max_dimension: u32,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_output_pixels: 40_000_000,
            max_dimension: 8192,
        }
    }
}

/// A parsed, validated transform. `Options::default()` is the identity (`_`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Resize mode (`rs:`/`rt:`).
    pub resize_mode: ResizeMode,
    /// Target width, 0 = derived from the height (`rs:`/`w:`).
    pub width: u32,
    /// Target height, 0 = derived from the width (`rs:`/`h:`).
    pub height: u32,
    /// Allow upscaling (`el:1`).
    pub enlarge: bool,
    /// Crop window placement for fill and crop (`g:`).
    pub gravity: Gravity,
    /// Explicit crop in source pixels, applied before resizing (`cr:`).
    pub crop: Option<Rect>,
    /// Clockwise rotation: 0, 90, 180 or 270 (`rot:`).
    pub rotate: u16,
    /// Mirroring (`fl:`).
    pub flip: Flip,
    /// Colour adjustments (`br:`, `co:`, `sa:`, `ga:`, `hu:`).
    pub adjust: Adjustments,
    /// Grayscale (`gs`).
    pub grayscale: bool,
    /// Sepia (`sp`).
    pub sepia: bool,
    /// Gaussian-like blur sigma (`bl:`).
    pub blur: Option<f32>,
    /// Unsharp-mask sigma (`sh:`).
    pub sharpen: Option<f32>,
    /// Encoder quality 1..=100 (`q:`).
    pub quality: Option<u8>,
    /// Output format (`f:`); `None` = from the URL extension.
    pub format: Option<Format>,
}

/// Where `pr:NAME` items find their options ([`crate::Presets`]).
pub trait PresetBodies {
    /// The options string of preset `name`.
    fn body(&self, name: &str) -> Option<&str>;
}

/// Parses an options path segment: shorthand for [`Options::parse`].
pub fn parse(
    source: &str,
    presets: &dyn PresetBodies,
    caps: &Caps,
) -> Result<Options, TransformError> {
    Options::parse(source, presets, caps)
}

/// What a resize will do, in source coordinates (after the explicit crop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plan {
    /// Keep the size.
    Keep,
    /// Scale the whole image by `scale` (exact) to `out` (rounded).
    Scale { out: (u32, u32), scale: f64 },
    /// Take a `win` window (source pixels, placed by gravity) and scale it to `out`.
    Window { win: (f64, f64), out: (u32, u32) },
}

fn scaled(v: u32, s: f64) -> u32 {
    // Truncation is intended after rounding; values are bounded by caps.
    ((f64::from(v) * s).round() as u32).max(1)
}

impl Options {
    /// Parses an options path segment, expanding presets and checking the requested size
    /// against `caps`.
    pub fn parse(
        source: &str,
        presets: &dyn PresetBodies,
        caps: &Caps,
    ) -> Result<Self, TransformError> {
        let opts = Self::parse_items(source, Some(presets))?;
        opts.check_requested(caps)?;
        Ok(opts)
    }

    /// Parses without caps; `presets: None` forbids `pr:` (used for preset bodies).
    pub(crate) fn parse_items(
        source: &str,
        presets: Option<&dyn PresetBodies>,
    ) -> Result<Self, TransformError> {
        if source == "_" {
            return Ok(Self::default());
        }
        let mut parser = Parser::default();
        parser.items(source, presets, None)?;
        Ok(parser.opts)
    }

    fn check_requested(&self, caps: &Caps) -> Result<(), TransformError> {
        for (side, v) in [("width", self.width), ("height", self.height)] {
            if v > caps.max_dimension {
                return Err(TransformError::TooLarge(format!(
                    "requested {side} {v} exceeds the maximum of {}",
                    caps.max_dimension
                )));
            }
        }
        let pixels = u64::from(self.width) * u64::from(self.height);
        if pixels > caps.max_output_pixels {
            return Err(TransformError::TooLarge(format!(
                "requested {}x{} output exceeds the maximum of {} pixels",
                self.width, self.height, caps.max_output_pixels
            )));
        }
        Ok(())
    }

    /// Output size for a source of `src_w` x `src_h`, checked against `caps`.
    pub fn check_output(
        &self,
        src_w: u32,
        src_h: u32,
        caps: &Caps,
    ) -> Result<(u32, u32), TransformError> {
        let (w, h) = self.output_size(src_w, src_h);
        if w > caps.max_dimension
            || h > caps.max_dimension
            || u64::from(w) * u64::from(h) > caps.max_output_pixels
        {
            return Err(TransformError::TooLarge(format!(
                "the {w}x{h} output exceeds the limits ({} pixels, {} per side)",
                caps.max_output_pixels, caps.max_dimension
            )));
        }
        Ok((w, h))
    }

    /// The stable canonical spelling (sorted, defaults and no-ops omitted, presets
    /// expanded), for cache keys. `_` when the options do nothing.
    pub fn canonical(&self) -> String {
        let mut items: Vec<String> = Vec::new();
        let resizes = self.width > 0 || self.height > 0;
        if resizes {
            let mut mode = self.resize_mode;
            if mode == ResizeMode::Fill && (self.width == 0 || self.height == 0) {
                // Filling a box with a free side is fitting it.
                mode = ResizeMode::Fit;
            }
            items.push(format!(
                "rs:{}:{}:{}",
                mode.as_str(),
                self.width,
                self.height
            ));
            if self.enlarge && mode != ResizeMode::Crop {
                items.push("el:1".into());
            }
            if self.gravity != Gravity::Centre && mode != ResizeMode::Fit {
                items.push(format!("g:{}", self.gravity.as_str()));
            }
        }
        if let Some(c) = self.crop {
            items.push(format!("cr:{}:{}:{}:{}", c.x, c.y, c.width, c.height));
        }
        if self.rotate != 0 {
            items.push(format!("rot:{}", self.rotate));
        }
        match (self.flip.horizontal, self.flip.vertical) {
            (true, true) => items.push("fl:hv".into()),
            (true, false) => items.push("fl:h".into()),
            (false, true) => items.push("fl:v".into()),
            (false, false) => {}
        }
        let a = &self.adjust;
        for (name, v, neutral) in [
            ("br", a.brightness, 0.0),
            ("co", a.contrast, 0.0),
            ("sa", a.saturation, 0.0),
            ("ga", a.gamma, 1.0),
            ("hu", a.hue, 0.0),
        ] {
            if v != neutral {
                items.push(format!("{name}:{v}"));
            }
        }
        if self.grayscale {
            items.push("gs".into());
        }
        if self.sepia {
            items.push("sp".into());
        }
        if let Some(s) = self.blur {
            items.push(format!("bl:{s}"));
        }
        if let Some(s) = self.sharpen {
            items.push(format!("sh:{s}"));
        }
        if let Some(q) = self.quality {
            items.push(format!("q:{q}"));
        }
        if let Some(f) = self.format {
            items.push(format!("f:{}", f.as_str()));
        }
        if items.is_empty() {
            return "_".into();
        }
        items.sort();
        items.join(",")
    }

    /// Size of the explicit-crop region for a `src_w` x `src_h` source (the whole source
    /// without `cr:`); `None` when the crop does not overlap the source.
    pub(crate) fn cropped_size(&self, src_w: u32, src_h: u32) -> Option<Rect> {
        match self.crop {
            None => Some(Rect {
                x: 0,
                y: 0,
                width: src_w,
                height: src_h,
            }),
            Some(c) => c.clamp_to(src_w, src_h),
        }
    }

    /// The resize plan for a (cropped) source of `cw` x `ch`.
    pub(crate) fn plan(&self, cw: u32, ch: u32) -> Plan {
        let (w, h) = (self.width, self.height);
        if (w == 0 && h == 0) || cw == 0 || ch == 0 {
            return Plan::Keep;
        }
        let (fw, fh) = (f64::from(cw), f64::from(ch));
        let fit = |enlarge: bool| {
            let s = match (w, h) {
                (0, _) => f64::from(h) / fh,
                (_, 0) => f64::from(w) / fw,
                _ => (f64::from(w) / fw).min(f64::from(h) / fh),
            };
            let s = if enlarge { s } else { s.min(1.0) };
            let out = (scaled(cw, s), scaled(ch, s));
            if out == (cw, ch) {
                Plan::Keep
            } else {
                Plan::Scale { out, scale: s }
            }
        };
        match self.resize_mode {
            ResizeMode::Fit => fit(self.enlarge),
            ResizeMode::Fill if w == 0 || h == 0 => fit(self.enlarge),
            ResizeMode::Fill => {
                let (bw, bh) = (f64::from(w), f64::from(h));
                let s = (bw / fw).max(bh / fh);
                if s > 1.0 && !self.enlarge {
                    // Shrink the box (same aspect ratio) until it fits in the source.
                    let k = (fw / bw).min(fh / bh).min(1.0);
                    let out = (scaled(w, k).min(cw), scaled(h, k).min(ch));
                    Plan::Window {
                        win: (f64::from(out.0), f64::from(out.1)),
                        out,
                    }
                } else {
                    Plan::Window {
                        win: ((bw / s).min(fw), (bh / s).min(fh)),
                        out: (w, h),
                    }
                }
            }
            ResizeMode::Crop => {
                let ww = if w == 0 { cw } else { w.min(cw) };
                let wh = if h == 0 { ch } else { h.min(ch) };
                if (ww, wh) == (cw, ch) {
                    Plan::Keep
                } else {
                    Plan::Window {
                        win: (f64::from(ww), f64::from(wh)),
                        out: (ww, wh),
                    }
                }
            }
        }
    }

    /// Output width and height for a `src_w` x `src_h` source (after crop, resize and
    /// rotation). `(0, 0)` when an explicit crop misses the source.
    pub fn output_size(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        let Some(c) = self.cropped_size(src_w, src_h) else {
            return (0, 0);
        };
        let (w, h) = match self.plan(c.width, c.height) {
            Plan::Keep => (c.width, c.height),
            Plan::Scale { out, .. } | Plan::Window { out, .. } => out,
        };
        if self.rotate % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        }
    }

    /// How long the longest edge of the decoded source must be to produce the output without
    /// upscaling, when that is less than the full `src_w` x `src_h` (so the server may decode a
    /// JPEG at a reduced scale and pass the smaller image to [`crate::apply`]). `None` = decode
    /// at full size (no downscale, crop mode, or an explicit crop in source pixels).
    pub fn min_source_edge(&self, src_w: u32, src_h: u32) -> Option<u32> {
        if self.crop.is_some() || src_w == 0 || src_h == 0 {
            return None;
        }
        let s = match self.plan(src_w, src_h) {
            Plan::Keep => return None,
            Plan::Scale { scale, .. } => scale,
            Plan::Window { win, out } => {
                if self.resize_mode == ResizeMode::Crop {
                    return None;
                }
                f64::from(out.0) / win.0
            }
        };
        let longest = src_w.max(src_h);
        // Bounded by `longest` since s < 1 here; the epsilon absorbs float noise.
        let need = (f64::from(longest) * s - 1e-9).ceil() as u32;
        (need < longest).then_some(need)
    }
}

/// Accumulates items, refusing a second setting of the same field.
#[derive(Default)]
struct Parser {
    opts: Options,
    /// (field, item that set it)
    set: Vec<(&'static str, String)>,
}

fn int_arg(item: &str, arg: &str, what: &str) -> Result<u32, TransformError> {
    arg.parse::<u32>().map_err(|_| {
        TransformError::option(item, format!("{what} must be a whole number (0 or more)"))
    })
}

fn float_arg(item: &str, arg: &str, what: &str, lo: f32, hi: f32) -> Result<f32, TransformError> {
    match arg.parse::<f32>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(TransformError::option(
            item,
            format!("{what} must be a number from {lo} to {hi}"),
        )),
    }
}

fn bool_arg(item: &str, args: &[&str], what: &str) -> Result<bool, TransformError> {
    match args {
        [] | ["1"] | ["t"] | ["true"] => Ok(true),
        ["0"] | ["f"] | ["false"] => Ok(false),
        _ => Err(TransformError::option(
            item,
            format!("{what} takes no argument, or 1 or 0"),
        )),
    }
}

fn arity(item: &str, args: &[&str], n: usize, usage: &str) -> Result<(), TransformError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(TransformError::option(item, format!("expected {usage}")))
    }
}

impl Parser {
    /// Records that `label` sets `field`; an error naming `item` if it is already set.
    fn mark(&mut self, field: &'static str, item: &str, label: &str) -> Result<(), TransformError> {
        if let Some((_, prev)) = self.set.iter().find(|(f, _)| *f == field) {
            return Err(TransformError::option(
                item,
                format!("{field} is already set by \"{prev}\""),
            ));
        }
        self.set.push((field, label.to_owned()));
        Ok(())
    }

    /// Parses comma-separated items; `via` names the preset being expanded.
    fn items(
        &mut self,
        source: &str,
        presets: Option<&dyn PresetBodies>,
        via: Option<&str>,
    ) -> Result<(), TransformError> {
        if source.is_empty() {
            return Err(TransformError::option(
                source,
                "options are empty; use \"_\" for none",
            ));
        }
        let label = via.map(|p| format!("pr:{p}"));
        for raw in source.split(',') {
            let result = self.item(raw, label.as_deref().unwrap_or(raw), presets);
            match (result, via) {
                (Ok(()), _) => {}
                (Err(TransformError::InvalidOption { item, message }), Some(p)) => {
                    return Err(TransformError::InvalidOption {
                        item: format!("pr:{p}"),
                        message: format!("\"{item}\" in the preset: {message}"),
                    });
                }
                (Err(e), _) => return Err(e),
            }
        }
        Ok(())
    }

    /// Parses one item; errors name `item`, fields record `label` as their setter.
    fn item(
        &mut self,
        item: &str,
        label: &str,
        presets: Option<&dyn PresetBodies>,
    ) -> Result<(), TransformError> {
        let mut parts = item.split(':');
        let name = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let o = &mut self.opts;
        match name {
            "" => {
                return Err(TransformError::option(
                    item,
                    "empty item (check for doubled or trailing commas)",
                ));
            }
            "_" => {
                return Err(TransformError::option(
                    item,
                    "\"_\" means no options and cannot be combined with others",
                ));
            }
            "rs" => {
                arity(item, &args, 3, "rs:{fit|fill|crop}:{width}:{height}")?;
                let mode = ResizeMode::parse(args[0]).ok_or_else(|| {
                    TransformError::option(item, "resize type must be fit, fill or crop")
                })?;
                let w = int_arg(item, args[1], "width")?;
                let h = int_arg(item, args[2], "height")?;
                self.mark("resize type", item, label)?;
                self.mark("width", item, label)?;
                self.mark("height", item, label)?;
                let o = &mut self.opts;
                o.resize_mode = mode;
                o.width = w;
                o.height = h;
            }
            "rt" => {
                arity(item, &args, 1, "rt:{fit|fill|crop}")?;
                o.resize_mode = ResizeMode::parse(args[0]).ok_or_else(|| {
                    TransformError::option(item, "resize type must be fit, fill or crop")
                })?;
                self.mark("resize type", item, label)?;
            }
            "w" | "h" => {
                arity(item, &args, 1, &format!("{name}:{{pixels}}"))?;
                let (field, what) = if name == "w" {
                    ("width", "width")
                } else {
                    ("height", "height")
                };
                let v = int_arg(item, args[0], what)?;
                self.mark(field, item, label)?;
                if name == "w" {
                    self.opts.width = v;
                } else {
                    self.opts.height = v;
                }
            }
            "el" => {
                o.enlarge = bool_arg(item, &args, "enlarge")?;
                self.mark("enlarge", item, label)?;
            }
            "g" => {
                arity(item, &args, 1, "g:{gravity}")?;
                o.gravity = Gravity::parse(args[0]).ok_or_else(|| {
                    TransformError::option(
                        item,
                        "gravity must be one of ce, no, so, ea, we, noea, nowe, soea, sowe, face, sm",
                    )
                })?;
                self.mark("gravity", item, label)?;
            }
            "cr" => {
                arity(item, &args, 4, "cr:{x}:{y}:{width}:{height}")?;
                let x = int_arg(item, args[0], "crop x")?;
                let y = int_arg(item, args[1], "crop y")?;
                let width = int_arg(item, args[2], "crop width")?;
                let height = int_arg(item, args[3], "crop height")?;
                if width == 0 || height == 0 {
                    return Err(TransformError::option(
                        item,
                        "crop width and height must be positive",
                    ));
                }
                o.crop = Some(Rect {
                    x,
                    y,
                    width,
                    height,
                });
                self.mark("crop", item, label)?;
            }
            "rot" => {
                arity(item, &args, 1, "rot:{0|90|180|270}")?;
                o.rotate = match args[0] {
                    "0" => 0,
                    "90" => 90,
                    "180" => 180,
                    "270" => 270,
                    _ => {
                        return Err(TransformError::option(
                            item,
                            "rotation must be 0, 90, 180 or 270",
                        ));
                    }
                };
                self.mark("rotation", item, label)?;
            }
            "fl" => {
                arity(item, &args, 1, "fl:{h|v|hv}")?;
                let (horizontal, vertical) = match args[0] {
                    "h" => (true, false),
                    "v" => (false, true),
                    "hv" | "vh" => (true, true),
                    _ => return Err(TransformError::option(item, "flip must be h, v or hv")),
                };
                o.flip = Flip {
                    horizontal,
                    vertical,
                };
                self.mark("flip", item, label)?;
            }
            "bl" | "sh" => {
                let what = if name == "bl" { "blur" } else { "sharpen" };
                let usage = format!("{name}:{{sigma}}");
                arity(item, &args, 1, &usage)?;
                let v = float_arg(item, args[0], what, 0.1, 100.0)?;
                self.mark(what, item, label)?;
                if name == "bl" {
                    self.opts.blur = Some(v);
                } else {
                    self.opts.sharpen = Some(v);
                }
            }
            "gs" => {
                o.grayscale = bool_arg(item, &args, "grayscale")?;
                self.mark("grayscale", item, label)?;
            }
            "sp" => {
                o.sepia = bool_arg(item, &args, "sepia")?;
                self.mark("sepia", item, label)?;
            }
            "br" | "co" | "sa" | "ga" | "hu" => {
                let (what, lo, hi) = match name {
                    "br" => ("brightness", -100.0, 100.0),
                    "co" => ("contrast", -100.0, 100.0),
                    "sa" => ("saturation", -100.0, 100.0),
                    "ga" => ("gamma", 0.1, 10.0),
                    _ => ("hue", -180.0, 180.0),
                };
                arity(item, &args, 1, &format!("{name}:{{number}}"))?;
                let v = float_arg(item, args[0], what, lo, hi)?;
                self.mark(what, item, label)?;
                let a = &mut self.opts.adjust;
                match name {
                    "br" => a.brightness = v,
                    "co" => a.contrast = v,
                    "sa" => a.saturation = v,
                    "ga" => a.gamma = v,
                    // -180 and 180 are the same rotation.
                    _ => a.hue = if v == -180.0 { 180.0 } else { v },
                }
            }
            "q" => {
                arity(item, &args, 1, "q:{1..100}")?;
                let q = args[0]
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| {
                        TransformError::option(item, "quality must be a whole number from 1 to 100")
                    })?;
                o.quality = Some(q);
                self.mark("quality", item, label)?;
            }
            "f" => {
                arity(item, &args, 1, "f:{format}")?;
                o.format = Some(Format::parse(args[0]).ok_or_else(|| {
                    TransformError::option(item, "format must be jpeg, jpg, png, webp, gif or avif")
                })?);
                self.mark("format", item, label)?;
            }
            "pr" => {
                arity(item, &args, 1, "pr:{preset}")?;
                let Some(presets) = presets else {
                    return Err(TransformError::option(
                        item,
                        "presets cannot contain presets",
                    ));
                };
                let body = presets.body(args[0]).ok_or_else(|| {
                    TransformError::option(item, format!("unknown preset \"{}\"", args[0]))
                })?;
                self.items(body, None, Some(args[0]))?;
            }
            _ => {
                return Err(TransformError::option(
                    item,
                    format!("unknown option \"{name}\""),
                ));
            }
        }
        Ok(())
    }
}
