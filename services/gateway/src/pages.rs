//! The HTML of the pages. Every value from a record goes through maud,
//! which escapes it; the one raw insertion is the JSON-LD, escaped for a
//! `<script>` element by [`script_json`].

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::assemble::{Detail, Part, derivative_url};
use crate::assets;
use crate::visitor::{Standing, Visitor};

/// The derivatives a page picks from, as `w640`, `w1080`, `w2048`.
const WIDTHS: [&str; 3] = ["w640", "w1080", "w2048"];

/// A string field of a record, when present and not empty.
fn text<'a>(record: &'a Value, pointer: &str) -> Option<&'a str> {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// `/search?tags=TAG`.
fn tag_link(tag: &str) -> String {
    let tag: String = url::form_urlencoded::byte_serialize(tag.as_bytes()).collect();
    format!("/search?tags={tag}")
}

/// `/u/USERNAME`.
fn user_link(username: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
    format!("/u/{name}")
}

/// JSON for a `<script>` element: `<`, `>` and `&` written as escapes, so
/// no string in it can close the element.
fn script_json(value: &Value) -> PreEscaped<String> {
    PreEscaped(
        value
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    )
}

/// A piece of a description: text, or a `#tag` to link.
enum Piece<'a> {
    Text(&'a str),
    Tag(&'a str, String),
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` cut into plain text and `#hashtags` (by the images role's rule:
/// a `#` after a space or punctuation, then letters, digits or `_`, not
/// only digits).
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut skip_to = 0;
    for (i, c) in text.char_indices() {
        let starts = i >= skip_to
            && c == '#'
            && prev.is_none_or(|p| p.is_whitespace() || "([{,.;:!?\"'".contains(p));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len: usize = rest
            .chars()
            .take_while(|c| tag_char(*c))
            .map(char::len_utf8)
            .sum();
        let word = &rest[..len];
        if word.is_empty() || word.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if start < i {
            out.push(Piece::Text(&text[start..i]));
        }
        out.push(Piece::Tag(&text[i..i + 1 + len], word.to_lowercase()));
        start = i + 1 + len;
        skip_to = start;
    }
    if start < text.len() {
        out.push(Piece::Text(&text[start..]));
    }
    out
}

/// `srcset` of a record's width derivatives in `format`, narrowest first.
fn srcset(record: &Value, format: &str) -> Option<String> {
    let mut found: Vec<(u64, usize, &str)> = record["derivatives"]
        .as_array()?
        .iter()
        .filter(|d| d["format"] == format)
        .filter_map(|d| {
            let rank = WIDTHS.iter().position(|w| d["name"] == *w)?;
            Some((d["width"].as_u64()?, rank, d["url"].as_str()?))
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    found.sort_unstable();
    // Small originals are never enlarged: one candidate per width, the
    // smaller size's (made at upload, where a larger one may be made only
    // when first asked for).
    found.dedup_by_key(|(w, _, _)| *w);
    Some(
        found
            .iter()
            .map(|(w, _, url)| format!("{url} {w}w"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The main picture: its `src`, width and height (the `w1080` JPEG, else
/// the largest, else the original).
fn main_src(record: &Value) -> (String, u64, u64) {
    let derivatives = record["derivatives"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let jpeg = |name: &str| {
        derivatives
            .iter()
            .find(|d| d["name"] == name && d["format"] == "jpeg")
    };
    let picked = jpeg("w1080")
        .or_else(|| jpeg("w2048"))
        .or_else(|| jpeg("w640"));
    match picked {
        Some(d) => (
            d["url"].as_str().unwrap_or_default().to_owned(),
            d["width"].as_u64().unwrap_or(0),
            d["height"].as_u64().unwrap_or(0),
        ),
        None => (
            text(record, "/original_url").unwrap_or_default().to_owned(),
            record["width"].as_u64().unwrap_or(0),
            record["height"].as_u64().unwrap_or(0),
        ),
    }
}

/// `background-color: #rrggbb` from the analysis, when it is a colour.
fn placeholder(record: &Value) -> Option<String> {
    let colour = text(record, "/analysis/dominant_color")?;
    let ok = colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| format!("background-color:{colour}"))
}

/// What a picture shows, for `alt`: its alt text, else its title.
fn alt(record: &Value) -> String {
    text(record, "/alt_text")
        .or_else(|| text(record, "/title"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "A photo by {}",
                text(record, "/owner/username").unwrap_or("someone")
            )
        })
}

/// `Make Model · 50 mm · f/1.8 · 1/250 s · ISO 100`, from what is known.
fn exposure(record: &Value) -> Option<String> {
    let exif = record.get("exif").filter(|e| e.is_object())?;
    let s = |k: &str| exif[k].as_str().filter(|s| !s.trim().is_empty());
    let mut parts = Vec::new();
    let camera = match (s("camera_make"), s("camera_model")) {
        (Some(make), Some(model)) if model.to_lowercase().starts_with(&make.to_lowercase()) => {
            Some(model.to_owned())
        }
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (make, model) => make.or(model).map(str::to_owned),
    };
    parts.extend(camera);
    parts.extend(s("lens").map(str::to_owned));
    if let Some(f) = exif["focal_length_mm"].as_f64() {
        parts.push(format!("{f} mm"));
    }
    if let Some(f) = exif["f_number"].as_f64() {
        parts.push(format!("f/{f}"));
    }
    if let Some(t) = s("exposure_time") {
        parts.push(format!("{t} s"));
    }
    if let Some(iso) = exif["iso"].as_u64() {
        parts.push(format!("ISO {iso}"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The place's name and an OpenStreetMap link, when there is a location.
fn place(record: &Value) -> Option<(String, String)> {
    let loc = record.get("location").filter(|l| l.is_object())?;
    let (lat, lon) = (loc["lat"].as_f64()?, loc["lon"].as_f64()?);
    let name = text(loc, "/place_name")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let named: Vec<&str> = [text(loc, "/city"), text(loc, "/country")]
                .into_iter()
                .flatten()
                .collect();
            if named.is_empty() {
                format!("{lat:.4}, {lon:.4}")
            } else {
                named.join(", ")
            }
        });
    let map = format!("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=14/{lat}/{lon}");
    Some((name, map))
}

/// The page around `body`, for `visitor` (the header's account links).
pub(crate) fn layout(title: &str, head: Markup, body: Markup, visitor: Option<&Visitor>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Pinhole" }
                link rel="stylesheet" href=(assets::css_path());
                // No icon: without this line every browser asks for /favicon.ico (a 404).
                link rel="icon" href="data:,";
                (head)
            }
            body {
                header.top {
                    a.brand href="/" { "Pinhole" }
                    form.search action="/search" method="get" role="search" aria-label="Site" {
                        label.hidden for="q" { "Search photos" }
                        input #q type="search" name="q" placeholder="Search photos";
                        button type="submit" { "Search" }
                    }
                    nav.account aria-label="Account" {
                        @if let Some(v) = visitor {
                            @if !v.username.is_empty() {
                                a href=(user_link(&v.username)) { "@" (v.username) }
                            }
                            a href="/upload" { "Upload" }
                            form #logout-form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button.link type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                            a href="/signup" { "Sign up" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A small picture linking to its page.
fn tile(record: &Value, caption: Option<&str>) -> Markup {
    let id = record["id"].as_str().unwrap_or_default();
    let jpeg = derivative_url(record, "thumb_256", "jpeg");
    let side = record["derivatives"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "thumb_256"))
        .and_then(|d| d["width"].as_u64())
        .unwrap_or(256);
    let webp = derivative_url(record, "thumb_256", "webp");
    html! {
        li.tile {
            a href={ "/p/" (id) } {
                @if let Some(jpeg) = jpeg {
                    picture {
                        @if let Some(webp) = webp {
                            source type="image/webp" srcset=(webp);
                        }
                        img src=(jpeg) width=(side) height=(side) loading="lazy"
                            alt=(alt(record)) style=[placeholder(record)];
                    }
                } @else {
                    span.pending { (alt(record)) }
                }
            }
            @if let Some(caption) = caption {
                span.reason { (caption) }
            }
        }
    }
}

/// Like and follow buttons for a logged-in visitor (plain forms); a link
/// to log in for anyone else.
fn actions(
    r: &Value,
    author: &str,
    visitor: Option<&Visitor>,
    standing: Option<Standing>,
) -> Markup {
    let id = r["id"].as_str().unwrap_or_default();
    let page = format!("/p/{id}");
    let Some(v) = visitor else {
        let next: String = url::form_urlencoded::byte_serialize(page.as_bytes()).collect();
        return html! {
            p.actions {
                a #login-link href={ "/login?next=" (next) } { "Log in to like, comment and follow" }
            }
        };
    };
    let liked = r["liked_by_me"].as_bool().unwrap_or(false);
    let (like_action, like_label) = if liked {
        ("unlike", "Unlike")
    } else {
        ("like", "Like")
    };
    let own = v.username == author;
    html! {
        div.actions {
            form #like-form method="post" action={ (page) "/" (like_action) } {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" aria-pressed=(if liked { "true" } else { "false" }) { (like_label) }
            }
            @if !own && !author.is_empty() {
                @match standing {
                    Some(s) => {
                        @let (action, label) = if s.following {
                            ("unfollow", "Unfollow")
                        } else if s.requested {
                            ("unfollow", "Requested")
                        } else {
                            ("follow", "Follow")
                        };
                        form #follow-form method="post" action={ (user_link(author)) "/" (action) } {
                            input type="hidden" name="csrf" value=(v.csrf);
                            input type="hidden" name="next" value=(page);
                            button type="submit" { (label) }
                        }
                    }
                    None => { span.note { "Following is unavailable right now." } }
                }
            }
        }
    }
}

fn reason_text(reason: &str) -> &'static str {
    match reason {
        "visual" => "Similar picture",
        "text" => "Similar words",
        "place" => "Taken nearby",
        _ => "Related",
    }
}

/// The detail page. `base` is the site's address (`https://host`), for the
/// links that leave it (OpenGraph, JSON-LD).
pub fn detail(
    d: &Detail,
    base: &str,
    visitor: Option<&Visitor>,
    standing: Option<Standing>,
) -> Markup {
    let r = &d.image;
    let id = r["id"].as_str().unwrap_or_default();
    let page_url = format!("{base}/p/{id}");
    let username = text(r, "/owner/username").unwrap_or_default();
    let display_name = d
        .author
        .as_ref()
        .and_then(|a| a.display_name.as_deref())
        .or_else(|| text(r, "/owner/display_name"))
        .unwrap_or(username);
    let title = text(r, "/title")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("A photo by {display_name}"));
    let description = text(r, "/description");
    let summary = description
        .map(|d| d.chars().take(200).collect::<String>())
        .unwrap_or_else(|| title.clone());
    let (src, width, height) = main_src(r);
    let og_image = derivative_url(r, "w1080", "jpeg").unwrap_or_else(|| src.clone());
    let tags: Vec<&str> = r["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let json_ld = json!({
        "@context": "https://schema.org",
        "@type": "ImageObject",
        "name": title,
        "description": description,
        "contentUrl": og_image,
        "thumbnailUrl": derivative_url(r, "thumb_256", "jpeg"),
        "url": page_url,
        "width": width,
        "height": height,
        "uploadDate": r["published_at"].as_str().or(r["created_at"].as_str()),
        "keywords": tags,
        "author": {
            "@type": "Person",
            "name": display_name,
            "url": format!("{base}{}", user_link(username)),
        },
    });
    let head = html! {
        meta name="description" content=(summary);
        link rel="canonical" href=(page_url);
        meta property="og:type" content="article";
        meta property="og:site_name" content="Pinhole";
        meta property="og:title" content=(title);
        meta property="og:description" content=(summary);
        meta property="og:url" content=(page_url);
        meta property="og:image" content=(og_image);
        meta property="og:image:width" content=(width);
        meta property="og:image:height" content=(height);
        meta property="og:image:alt" content=(alt(r));
        meta name="twitter:card" content="summary_large_image";
        meta name="twitter:title" content=(title);
        meta name="twitter:description" content=(summary);
        meta name="twitter:image" content=(og_image);
        meta name="twitter:image:alt" content=(alt(r));
        script type="application/ld+json" { (script_json(&json_ld)) }
    };
    let missing = |p: Part| d.missing.contains(&p);
    let body = html! {
        article.detail {
            figure.photo {
                picture {
                    @if let Some(webp) = srcset(r, "webp") {
                        source type="image/webp" srcset=(webp) sizes="(max-width: 1100px) 100vw, 1080px";
                    }
                    img src=(src) srcset=[srcset(r, "jpeg")] sizes="(max-width: 1100px) 100vw, 1080px"
                        width=(width) height=(height) alt=(alt(r)) style=[placeholder(r)]
                        fetchpriority="high";
                }
            }
            div.about {
                h1 { (title) }
                p.author {
                    @if let Some(avatar) = d.author.as_ref().and_then(|a| a.avatar_url.as_deref()) {
                        img.avatar src=(avatar) width="40" height="40" alt="";
                    }
                    a rel="author" href=(user_link(username)) {
                        (display_name)
                        @if display_name != username { " " span.handle { "@" (username) } }
                    }
                }
                @if missing(Part::Author) {
                    p.note { "Some details of the author are unavailable right now." }
                }
                @if let Some(description) = description {
                    p.description {
                        @for piece in pieces(description) {
                            @match piece {
                                Piece::Text(t) => { (t) }
                                Piece::Tag(shown, tag) => { a.tag href=(tag_link(&tag)) { (shown) } }
                            }
                        }
                    }
                }
                @if !tags.is_empty() {
                    ul.tags {
                        @for tag in &tags {
                            li { a.tag href=(tag_link(tag)) { "#" (tag) } }
                        }
                    }
                }
                @if let Some(exposure) = exposure(r) {
                    p.exposure { (exposure) }
                }
                @if let Some((name, map)) = place(r) {
                    p.place {
                        (name) " · "
                        a href=(map) rel="nofollow noopener" { "Map" }
                    }
                }
                p.counts {
                    span.likes { (r["like_count"].as_u64().unwrap_or(0)) " likes" }
                    " · "
                    span.comments-count { (r["comment_count"].as_u64().unwrap_or(0)) " comments" }
                    " · "
                    span.views { (r["view_count"].as_u64().unwrap_or(0)) " views" }
                }
                (actions(r, username, visitor, standing))
            }
            section.comments aria-labelledby="comments-h" {
                h2 #comments-h { "Comments" }
                @match &d.comments {
                    None => { p.note { "Comments are unavailable right now." } }
                    Some(c) if c.is_empty() => { p.quiet { "No comments yet." } }
                    Some(c) => { ol {
                        @for comment in c {
                            li.comment {
                                @let who = text(comment, "/author/username").unwrap_or_default();
                                a href=(user_link(who)) {
                                    (text(comment, "/author/display_name").unwrap_or(who))
                                }
                                ": " (text(comment, "/body").unwrap_or_default())
                            }
                        }
                    } }
                }
                @if let Some(v) = visitor {
                    form #comment-form .stacked method="post" action={ "/p/" (id) "/comments" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        label for="comment-text" { "Add a comment" }
                        textarea #comment-text name="text" rows="3" maxlength="2200" required {}
                        button type="submit" { "Comment" }
                    }
                }
            }
        }
        section.related aria-labelledby="related-h" {
            h2 #related-h { "Related" }
            @match &d.related {
                None => { p.note { "Related images are unavailable right now." } }
                Some(r) if r.is_empty() => { p.quiet { "Nothing related yet." } }
                Some(r) => { ul.grid {
                    @for item in r {
                        (tile(&item.image, Some(reason_text(&item.reason))))
                    }
                } }
            }
        }
    };
    layout(&title, head, body, visitor)
}

/// What a grid page shows besides its images.
#[derive(Default)]
pub struct GridPage<'a> {
    /// The search box's words, on the search page.
    pub query: Option<&'a str>,
    /// The next page's link.
    pub more: Option<&'a str>,
    /// Why there are no results (a bad parameter).
    pub problem: Option<&'a str>,
}

/// A grid of images under `heading`, with a note when the list is
/// unavailable (`images` is `None`).
pub fn grid(
    heading: &str,
    images: Option<&[Value]>,
    extra: &GridPage<'_>,
    visitor: Option<&Visitor>,
) -> Markup {
    let body = html! {
        h1 { (heading) }
        @if let Some(q) = extra.query {
            form.search-big action="/search" method="get" role="search" aria-label="Results" {
                label for="q2" { "Search" }
                " "
                input #q2 type="search" name="q" value=(q);
                " "
                button type="submit" { "Search" }
            }
        }
        @if let Some(problem) = extra.problem {
            p.note { (problem) }
        } @else {
            @match images {
                None => { p.note { "Images are unavailable right now; try again shortly." } }
                Some([]) => { p.quiet { "Nothing here yet." } }
                Some(images) => { ul.grid {
                    @for image in images { (tile(image, None)) }
                } }
            }
        }
        @if let Some(more) = extra.more {
            p { a rel="next" href=(more) { "More" } }
        }
    };
    layout(heading, html! {}, body, visitor)
}

/// The page for a missing image, or one the viewer may not see (the same
/// bytes for both).
pub fn not_found() -> Markup {
    let body = html! {
        h1 { "Not found" }
        p { "There is no such page. " a href="/" { "Explore photos" } }
    };
    layout("Not found", html! {}, body, None)
}

/// The page when a role the page needs did not answer.
pub fn unavailable() -> Markup {
    let body = html! {
        h1 { "Unavailable" }
        p { "This page cannot be shown right now; try again shortly." }
    };
    layout("Unavailable", html! {}, body, None)
}

/// An id in a path, when it is one.
pub fn parse_id(s: &str) -> Option<Uuid> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_are_linked_as_the_images_role_finds_them() {
        let shown: Vec<String> = pieces("Fog #Forest, a#b and #123 then #森林")
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => format!("[{t}]"),
                Piece::Tag(s, t) => format!("<{s}|{t}>"),
            })
            .collect();
        assert_eq!(
            shown.concat(),
            "[Fog ]<#Forest|forest>[, a#b and #123 then ]<#森林|森林>"
        );
    }

    #[test]
    fn srcset_lists_each_width_once_preferring_the_smaller_size() {
        let d = |name: &str, width: u32, url: &str| json!({"name": name, "format": "jpeg", "width": width, "url": url});
        // A small original: w1080 and w2048 are the same 800 px.
        let small = json!({"derivatives": [
            d("w2048", 800, "http://a/t/derivatives/w2048.jpg"),
            d("thumb_256", 256, "http://b/thumb.jpg"),
            d("w640", 640, "http://b/w640.jpg"),
            d("w1080", 800, "http://b/w1080.jpg"),
        ]});
        assert_eq!(
            srcset(&small, "jpeg").as_deref(),
            Some("http://b/w640.jpg 640w, http://b/w1080.jpg 800w")
        );
        assert_eq!(srcset(&small, "webp"), None);
        let large = json!({"derivatives": [
            d("w2048", 2048, "http://a/w2048.jpg"),
            d("w640", 640, "http://b/w640.jpg"),
            d("w1080", 1080, "http://b/w1080.jpg"),
        ]});
        assert_eq!(
            srcset(&large, "jpeg").as_deref(),
            Some("http://b/w640.jpg 640w, http://b/w1080.jpg 1080w, http://a/w2048.jpg 2048w")
        );
    }

    #[test]
    fn json_ld_cannot_close_its_script() {
        let v = json!({"name": "</script><script>alert(1)</script>"});
        let s = script_json(&v).0;
        assert!(!s.contains("</script"), "{s}");
    }

    #[test]
    fn user_strings_are_escaped() {
        let extra = GridPage {
            query: Some("\"><script>"),
            ..GridPage::default()
        };
        let page = grid("<b>hi</b>", Some(&[]), &extra, None);
        let s = page.into_string();
        assert!(!s.contains("<b>hi") && !s.contains("\"><script>"), "{s}");
    }
}
