//! The options grammar, canonical form, presets, caps and size arithmetic.
#![allow(clippy::unwrap_used)]

use pinhole_transform::{
    Caps, Flip, Format, Gravity, Options, Presets, Rect, ResizeMode, TransformError,
};

fn parse(s: &str) -> Result<Options, TransformError> {
    Options::parse(s, &Presets::standard(), &Caps::default())
}

fn err(s: &str) -> String {
    parse(s).unwrap_err().to_string()
}

#[test]
fn parses_every_option() {
    let o = parse(
        "rs:fill:300:200,el:1,g:noea,cr:10:20:800:600,rot:270,fl:hv,bl:2.5,sh:0.7,gs,sp,\
         br:10,co:-20,sa:30,ga:2.2,hu:-90,q:82,f:webp",
    )
    .unwrap();
    assert_eq!(o.resize_mode, ResizeMode::Fill);
    assert_eq!((o.width, o.height), (300, 200));
    assert!(o.enlarge);
    assert_eq!(o.gravity, Gravity::NorthEast);
    assert_eq!(
        o.crop,
        Some(Rect {
            x: 10,
            y: 20,
            width: 800,
            height: 600
        })
    );
    assert_eq!(o.rotate, 270);
    assert_eq!(
        o.flip,
        Flip {
            horizontal: true,
            vertical: true
        }
    );
    assert_eq!((o.blur, o.sharpen), (Some(2.5), Some(0.7)));
    assert!(o.grayscale && o.sepia);
    assert_eq!(
        (
            o.adjust.brightness,
            o.adjust.contrast,
            o.adjust.saturation,
            o.adjust.gamma,
            o.adjust.hue
        ),
        (10.0, -20.0, 30.0, 2.2, -90.0)
    );
    assert_eq!((o.quality, o.format), (Some(82), Some(Format::Webp)));

    let o = parse("w:640,h:0,rt:crop,g:sm,gs:1,sp:0,el:0,f:jpg").unwrap();
    assert_eq!(
        (o.resize_mode, o.width, o.height),
        (ResizeMode::Crop, 640, 0)
    );
    assert_eq!(o.gravity, Gravity::Smart);
    assert!(o.grayscale && !o.sepia && !o.enlarge);
    assert_eq!(o.format, Some(Format::Jpeg));

    for (g, want) in [
        ("ce", Gravity::Centre),
        ("no", Gravity::North),
        ("so", Gravity::South),
        ("ea", Gravity::East),
        ("we", Gravity::West),
        ("nowe", Gravity::NorthWest),
        ("soea", Gravity::SouthEast),
        ("sowe", Gravity::SouthWest),
        ("face", Gravity::Face),
    ] {
        assert_eq!(parse(&format!("g:{g}")).unwrap().gravity, want);
    }
    for (f, want) in [
        ("png", Format::Png),
        ("gif", Format::Gif),
        ("avif", Format::Avif),
    ] {
        assert_eq!(parse(&format!("f:{f}")).unwrap().format, Some(want));
    }
    assert_eq!(parse("_").unwrap(), Options::default());
}

#[test]
fn errors_name_the_item() {
    assert_eq!(
        err("rs:fit:100:100,bl:abc"),
        "\"bl:abc\": blur must be a number from 0.1 to 100"
    );
    assert_eq!(
        err("bl:0"),
        "\"bl:0\": blur must be a number from 0.1 to 100"
    );
    assert_eq!(
        err("sh:101"),
        "\"sh:101\": sharpen must be a number from 0.1 to 100"
    );
    assert_eq!(err("zoom:2"), "\"zoom:2\": unknown option \"zoom\"");
    assert_eq!(
        err("br:101"),
        "\"br:101\": brightness must be a number from -100 to 100"
    );
    assert_eq!(
        err("ga:0"),
        "\"ga:0\": gamma must be a number from 0.1 to 10"
    );
    assert_eq!(
        err("hu:NaN"),
        "\"hu:NaN\": hue must be a number from -180 to 180"
    );
    assert_eq!(
        err("q:0"),
        "\"q:0\": quality must be a whole number from 1 to 100"
    );
    assert_eq!(
        err("rot:45"),
        "\"rot:45\": rotation must be 0, 90, 180 or 270"
    );
    assert_eq!(err("fl:x"), "\"fl:x\": flip must be h, v or hv");
    assert_eq!(
        err("f:bmp"),
        "\"f:bmp\": format must be jpeg, jpg, png, webp, gif or avif"
    );
    assert!(err("g:up").starts_with("\"g:up\": gravity must be one of"));
    assert_eq!(
        err("rs:zoom:1:1"),
        "\"rs:zoom:1:1\": resize type must be fit, fill or crop"
    );
    assert_eq!(
        err("rs:fit:-5:10"),
        "\"rs:fit:-5:10\": width must be a whole number (0 or more)"
    );
    assert_eq!(
        err("rs:fit:100"),
        "\"rs:fit:100\": expected rs:{fit|fill|crop}:{width}:{height}"
    );
    assert_eq!(
        err("cr:0:0:0:10"),
        "\"cr:0:0:0:10\": crop width and height must be positive"
    );
    assert_eq!(
        err("w:100,rs:fit:10:10"),
        "\"rs:fit:10:10\": width is already set by \"w:100\""
    );
    assert_eq!(
        err("q:80,q:80"),
        "\"q:80\": quality is already set by \"q:80\""
    );
    assert!(err("q:80,").contains("empty item"));
    assert!(err("").contains("use \"_\""));
    assert!(err("_,q:80").contains("cannot be combined"));
    assert_eq!(err("pr:huge"), "\"pr:huge\": unknown preset \"huge\"");
    // An item repeating what a preset already set.
    assert_eq!(
        err("pr:thumb,w:100"),
        "\"w:100\": width is already set by \"pr:thumb\""
    );

    let e = parse("bl:abc").unwrap_err();
    assert_eq!(e.code(), "invalid-transform");
    assert!(matches!(e, TransformError::InvalidOption { ref item, .. } if item == "bl:abc"));
}

#[test]
fn canonical_is_the_same_for_equivalent_spellings() {
    let same = [
        "rs:fill:300:200,g:ea,q:80",
        "q:80,g:ea,w:300,h:200,rt:fill",
        "g:ea,rt:fill,h:200,q:80,w:300,rot:0,br:0,ga:1,gs:0,el:0",
    ];
    let canon: Vec<String> = same.iter().map(|s| parse(s).unwrap().canonical()).collect();
    assert!(canon.iter().all(|c| c == &canon[0]), "{canon:?}");
    assert_eq!(canon[0], "g:ea,q:80,rs:fill:300:200");

    let pairs = [
        ("bl:2", "bl:2.0"),
        ("f:jpg", "f:jpeg"),
        ("gs", "gs:1"),
        ("fl:vh", "fl:hv"),
        ("hu:-180", "hu:180"),
        ("pr:thumb,q:70", "q:70,rs:fill:256:256"),
        // gravity does not matter when fitting, and neither does filling a box with a free side
        ("rs:fit:300:300,g:ea", "rs:fit:300:300"),
        ("rs:fill:300:0", "rs:fit:300:0"),
        ("rt:fill,g:sowe", "_"),
        ("rs:fit:0:0,el:1", "_"),
    ];
    for (a, b) in pairs {
        assert_eq!(
            parse(a).unwrap().canonical(),
            parse(b).unwrap().canonical(),
            "{a} vs {b}"
        );
    }
    // Different transforms stay different.
    let different = [
        "rs:fill:300:200",
        "rs:fill:300:200,g:we",
        "rs:fit:300:200",
        "rs:fill:200:300",
        "rs:fill:300:200,el:1",
        "rs:fill:300:200,bl:2",
        "rs:fill:300:200,sh:2",
        "rs:fill:300:200,f:png",
        "rs:fill:300:200,rot:90",
        "rs:fill:300:200,fl:h",
    ];
    let mut seen: Vec<String> = different
        .iter()
        .map(|s| parse(s).unwrap().canonical())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), different.len());

    // The canonical string parses back to itself.
    let o = parse("sp,cr:1:2:30:40,rot:90,br:-5.5,co:10,sa:20,ga:0.5,hu:45,rs:crop:10:20,g:so,q:9")
        .unwrap();
    let c = o.canonical();
    assert_eq!(parse(&c).unwrap().canonical(), c);
    assert_eq!(parse(&c).unwrap(), o);
}

#[test]
fn presets_expand_in_place_and_are_validated() {
    let presets = Presets::parse("card=rs:fill:400:300;soft=bl:1.5,sa:-20 ; ").unwrap();
    assert_eq!(presets.names().collect::<Vec<_>>(), ["card", "soft"]);
    let caps = Caps::default();
    let o = Options::parse("pr:card,pr:soft,q:70", &presets, &caps).unwrap();
    assert_eq!(
        (o.resize_mode, o.width, o.height),
        (ResizeMode::Fill, 400, 300)
    );
    assert_eq!(
        (o.blur, o.adjust.saturation, o.quality),
        (Some(1.5), -20.0, Some(70))
    );
    assert_eq!(
        o.canonical(),
        Options::parse("rs:fill:400:300,bl:1.5,sa:-20,q:70", &presets, &caps)
            .unwrap()
            .canonical()
    );

    // Two presets setting the same thing conflict.
    let e = Options::parse("pr:card,pr:card", &presets, &caps).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("\"pr:card\": \"rs:fill:400:300\" in the preset"),
        "{e}"
    );

    // Presets cannot contain presets, and bodies are validated.
    let e = Presets::parse("a=pr:thumb").unwrap_err();
    assert_eq!(e.code(), "invalid-preset");
    assert!(
        e.to_string().contains("presets cannot contain presets"),
        "{e}"
    );
    assert!(
        Presets::parse("a=bl:0")
            .unwrap_err()
            .to_string()
            .contains("blur")
    );
    assert!(Presets::parse("Bad Name=q:1").is_err());
    assert!(Presets::parse("a=q:1;a=q:2").is_err());
    assert!(Presets::parse("a").is_err());

    // Configured presets add to (or override) the standard ones.
    let merged = Presets::standard()
        .with("thumb=rs:fill:128:128;wide=rs:fill:1200:400")
        .unwrap();
    assert_eq!(merged.get("thumb"), Some("rs:fill:128:128"));
    assert_eq!(merged.get("small"), Some("rs:fit:640:640"));
    assert!(merged.allows_unsigned("pr:thumb") && !merged.allows_unsigned("pr:wide"));
    let o = pinhole_transform::parse("pr:wide", &merged, &caps).unwrap();
    assert_eq!((o.width, o.height), (1200, 400));

    let std = Presets::standard();
    for (name, w, h, mode) in [
        ("thumb", 256, 256, ResizeMode::Fill),
        ("small", 640, 640, ResizeMode::Fit),
        ("medium", 1080, 1080, ResizeMode::Fit),
        ("large", 2048, 2048, ResizeMode::Fit),
    ] {
        let o = Options::parse(&format!("pr:{name}"), &std, &caps).unwrap();
        assert_eq!((o.resize_mode, o.width, o.height), (mode, w, h), "{name}");
    }
}

#[test]
fn only_allowed_presets_go_unsigned() {
    let std = Presets::standard();
    assert!(std.allows_unsigned("pr:thumb"));
    assert!(std.allows_unsigned("pr:small,pr:large"));
    assert!(!std.allows_unsigned("pr:thumb,q:80"));
    assert!(!std.allows_unsigned("rs:fill:256:256"));
    assert!(!std.allows_unsigned("_"));
    assert!(!std.allows_unsigned(""));
    assert!(!std.allows_unsigned("pr:nope"));
    assert!(!std.allows_unsigned("pr:thumb,"));

    let custom = Presets::parse("a=q:50;b=q:60")
        .unwrap()
        .allow_unsigned(["a"])
        .unwrap();
    assert!(custom.allows_unsigned("pr:a"));
    assert!(!custom.allows_unsigned("pr:b"));
    assert!(
        Presets::parse("a=q:50")
            .unwrap()
            .allow_unsigned(["zz"])
            .is_err()
    );
}

#[test]
fn caps_reject_large_requests() {
    let caps = Caps {
        max_output_pixels: 1_000_000,
        max_dimension: 2000,
    };
    let p = Presets::standard();
    let e = Options::parse("w:2001", &p, &caps).unwrap_err();
    assert!(matches!(e, TransformError::TooLarge(_)));
    assert!(e.is_too_large());
    assert_eq!(e.code(), "transform-too-large");
    assert!(!parse("bl:0").unwrap_err().is_too_large());
    assert!(matches!(
        Options::parse("rs:fill:1500:1000", &p, &caps),
        Err(TransformError::TooLarge(_))
    ));
    assert!(Options::parse("rs:fill:1000:1000", &p, &caps).is_ok());

    // The real output is checked once the source size is known.
    let fit = Options::parse("w:1900", &p, &caps).unwrap();
    assert!(matches!(
        fit.check_output(3000, 2000, &caps),
        Err(TransformError::TooLarge(_))
    ));
    let small = Options::parse("w:1000", &p, &caps).unwrap();
    assert_eq!(small.check_output(3000, 2000, &caps).unwrap(), (1000, 667));
    // No resize of a huge source.
    assert!(parse("_").unwrap().check_output(5000, 4000, &caps).is_err());
}

#[test]
fn output_size_per_mode() {
    let size = |s: &str, w, h| parse(s).unwrap().output_size(w, h);
    // fit
    assert_eq!(size("rs:fit:640:640", 1920, 1280), (640, 427));
    assert_eq!(size("rs:fit:640:640", 1280, 1920), (427, 640));
    assert_eq!(size("w:480", 1920, 1280), (480, 320));
    assert_eq!(size("h:480", 1920, 1280), (720, 480));
    assert_eq!(size("rs:fit:4000:4000", 1920, 1280), (1920, 1280));
    assert_eq!(size("rs:fit:3840:3840,el:1", 1920, 1280), (3840, 2560));
    // fill
    assert_eq!(size("rs:fill:300:300", 1920, 1280), (300, 300));
    assert_eq!(size("rs:fill:1000:200", 1920, 1280), (1000, 200));
    assert_eq!(size("rs:fill:0:200", 1920, 1280), (300, 200));
    // without enlarge the box keeps its aspect ratio and shrinks into the source
    assert_eq!(size("rs:fill:400:400", 300, 200), (200, 200));
    assert_eq!(size("rs:fill:400:400,el:1", 300, 200), (400, 400));
    // crop (never scales, clamped)
    assert_eq!(size("rs:crop:500:300", 1920, 1280), (500, 300));
    assert_eq!(size("rs:crop:5000:300", 1920, 1280), (1920, 300));
    assert_eq!(size("rs:crop:0:300", 1920, 1280), (1920, 300));
    // explicit crop, then resize, then rotation
    assert_eq!(size("cr:100:100:800:400", 1920, 1280), (800, 400));
    assert_eq!(size("cr:1800:1200:800:400", 1920, 1280), (120, 80));
    assert_eq!(size("cr:100:100:800:400,w:200", 1920, 1280), (200, 100));
    assert_eq!(size("cr:5000:0:10:10", 1920, 1280), (0, 0));
    assert_eq!(size("rs:fit:640:640,rot:90", 1920, 1280), (427, 640));
    assert_eq!(size("rs:fill:300:100,rot:270", 1920, 1280), (100, 300));
    assert_eq!(size("rot:180", 1920, 1280), (1920, 1280));
}

#[test]
fn min_source_edge_per_mode() {
    let need = |s: &str, w, h| parse(s).unwrap().min_source_edge(w, h);
    // fit: the source must be at least as large as the output
    assert_eq!(need("rs:fit:640:640", 1920, 1280), Some(640));
    assert_eq!(need("h:320", 1920, 1280), Some(480));
    assert_eq!(need("rs:fit:640:640", 1280, 1920), Some(640));
    // fill: the scaled source covers the box; 300x300 from 1920x1280 needs a 450x300 source
    assert_eq!(need("rs:fill:300:300", 1920, 1280), Some(450));
    assert_eq!(need("rs:fill:1000:200", 1920, 1280), Some(1000));
    // no downscale, crop mode, explicit crop, no resize: decode at full size
    assert_eq!(need("rs:fit:4000:4000", 1920, 1280), None);
    assert_eq!(need("rs:fill:400:400", 300, 200), None);
    assert_eq!(need("rs:crop:300:300", 1920, 1280), None);
    assert_eq!(need("cr:0:0:960:640,rs:fit:100:100", 1920, 1280), None);
    assert_eq!(need("_", 1920, 1280), None);
    assert_eq!(need("bl:3", 1920, 1280), None);
}
