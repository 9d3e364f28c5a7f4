//! The HTML of the forms pages: log in, sign up, upload, and what an action
//! that failed says.

use maud::{Markup, html};
use pinhole_http::forward::Refusal;

use crate::pages::layout;
use crate::visitor::Visitor;

/// What the log-in form shows.
pub struct LogInForm<'a> {
    pub csrf: &'a str,
    pub next: &'a str,
    /// What was typed, when the form comes back.
    pub username: &'a str,
    pub problem: Option<&'a str>,
}

fn alert(problem: &str) -> Markup {
    html! { p.alert role="alert" { (problem) } }
}

/// `GET /login`.
pub fn log_in(form: &LogInForm<'_>) -> Markup {
    let signup = format!(
        "/signup?next={}",
        url::form_urlencoded::byte_serialize(form.next.as_bytes()).collect::<String>()
    );
    let body = html! {
        h1 { "Log in" }
        @if let Some(problem) = form.problem { (alert(problem)) }
        form #login-form .stacked method="post" action="/login" {
            input type="hidden" name="csrf" value=(form.csrf);
            input type="hidden" name="next" value=(form.next);
            label for="username" { "Username or email" }
            input #username type="text" name="username" value=(form.username)
                autocomplete="username" required autocapitalize="none" spellcheck="false";
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
        p { "New here? " a href=(signup) { "Sign up" } }
    };
    layout("Log in", html! {}, body, None)
}

/// What the sign-up form shows.
#[derive(Default)]
pub struct SignUpForm<'a> {
    pub csrf: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub problem: Option<Refusal>,
}

/// `GET /signup`.
pub fn sign_up(form: &SignUpForm<'_>) -> Markup {
    let problem_of = |name: &str| {
        form.problem
            .as_ref()
            .and_then(|p| p.fields.get(name))
            .map(String::as_str)
    };
    let field_note = |name: &str| {
        html! {
            @if let Some(note) = problem_of(name) {
                span.field-problem id={ (name) "-problem" } { (note) }
            }
        }
    };
    let described = |name: &str| problem_of(name).map(|_| format!("{name}-problem"));
    let body = html! {
        h1 { "Sign up" }
        @if let Some(problem) = &form.problem {
            (alert(&problem.message))
        }
        form #signup-form .stacked method="post" action="/signup" {
            input type="hidden" name="csrf" value=(form.csrf);
            input type="hidden" name="next" value=(form.next);
            label for="username" { "Username (3 to 30 letters, digits or _)" }
            input #username type="text" name="username" value=(form.username)
                autocomplete="username" required minlength="3" maxlength="30"
                autocapitalize="none" spellcheck="false" aria-describedby=[described("username")];
            (field_note("username"))
            label for="email" { "Email" }
            input #email type="email" name="email" value=(form.email) autocomplete="email" required
                aria-describedby=[described("email")];
            (field_note("email"))
            label for="password" { "Password (at least 8 characters)" }
            input #password type="password" name="password" autocomplete="new-password" required
                minlength="8" aria-describedby=[described("password")];
            (field_note("password"))
            label for="display_name" { "Name shown (optional)" }
            input #display_name type="text" name="display_name" value=(form.display_name)
                autocomplete="name" aria-describedby=[described("display_name")];
            (field_note("display_name"))
            button type="submit" { "Sign up" }
        }
        p { "Have an account? " a href="/login" { "Log in" } }
    };
    layout("Sign up", html! {}, body, None)
}

/// `GET /upload`, and the same form again with what was wrong.
pub fn upload(visitor: &Visitor, problem: Option<&Refusal>) -> Markup {
    let action = format!(
        "/upload?csrf={}",
        url::form_urlencoded::byte_serialize(visitor.csrf.as_bytes()).collect::<String>()
    );
    let body = html! {
        h1 { "Upload a photo" }
        @if let Some(problem) = problem {
            (alert(&problem.message))
            @if !problem.fields.is_empty() {
                ul.alert {
                    @for (name, note) in &problem.fields { li { (name) ": " (note) } }
                }
            }
        }
        form #upload-form .stacked method="post" action=(action) enctype="multipart/form-data" {
            label for="file" { "Photo (JPEG, PNG, GIF, WebP, HEIC or AVIF)" }
            input #file type="file" name="file" accept="image/*" required;
            label for="title" { "Title" }
            input #title type="text" name="title" maxlength="200";
            label for="description" { "Description (#hashtags become tags)" }
            textarea #description name="description" rows="4" maxlength="2200" {}
            label for="alt_text" { "Alt text (what the photo shows, for people who cannot see it)" }
            input #alt_text type="text" name="alt_text" maxlength="1000";
            label for="visibility" { "Who can see it" }
            select #visibility name="visibility" {
                option value="public" selected { "Everyone" }
                option value="followers" { "Followers" }
                option value="private" { "Only me" }
            }
            label for="location" { "Location: latitude, longitude, or “exif” to use the photo’s GPS (optional)" }
            input #location type="text" name="location" placeholder="48.8584, 2.2945" autocomplete="off";
            button type="submit" { "Upload" }
        }
    };
    layout("Upload", html! {}, body, Some(visitor))
}

/// A page saying what went wrong, with nothing else to do but go back.
pub fn problem(title: &str, message: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        (alert(message))
        p { a href="/" { "Explore photos" } }
    };
    layout(title, html! {}, body, None)
}

/// An action (`what`: "comment", "like this photo") the role refused.
pub fn failed(what: &str, refusal: &Refusal, back: &str) -> Markup {
    let body = html! {
        h1 { "Could not " (what) }
        (alert(&refusal.message))
        @if !refusal.fields.is_empty() {
            ul {
                @for (name, note) in &refusal.fields { li { (name) ": " (note) } }
            }
        }
        p { a href=(back) { "Go back" } }
    };
    layout("Could not do that", html! {}, body, None)
}
