//! A person in a real browser: headless Chromium (Debian's `chromium`),
//! driven over WebDriver (`chromedriver`, from `chromium-driver`), searches
//! for 森林里浓雾和阳光 from the explore page, opens the first result, sees
//! the photo load, logs in on the web, likes the photo, follows its author
//! and comments. On every page: no console errors, and no serious or
//! critical accessibility violations found by axe-core run in the page;
//! html-validate finds no errors in the pages' HTML, anonymous or logged
//! in. The detail page's largest contentful paint and layout shift are
//! printed, and the shift must stay under 0.01.
//!
//! Needs `apt-get install chromium chromium-driver` and
//! `npm ci --prefix tests/browser` (infra/test.sh does both); fails, naming
//! them, when they are missing. The roles-apart run also needs the Kafka
//! broker of `infra/stack.sh up`.
//!
//! html-validate runs with `html-validate:recommended`
//! (tests/browser/.htmlvalidate.json), where inline styles are allowed for
//! `background-color` only: a photo's dominant colour, shown while it
//! loads, is data of that photo, not a style.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::Locator;
use fantoccini::elements::Element;
use pinhole_config::{BusUrl, KafkaSettings, Settings};
use pinhole_testkit::{free_port, unique, wait_for};
use pinhole_tests::app::{App, PASSWORD, small_photo};
use reqwest::StatusCode;
use serde_json::{Value, json};

const QUERY: &str = "森林里浓雾和阳光";
const TITLE: &str = "森林中的浓雾与阳光";
/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL_BROWSER: &str = "install Debian's chromium and chromium-driver: `apt-get install chromium chromium-driver` (infra/test.sh does)";
const INSTALL_NPM: &str =
    "install axe-core and html-validate: `npm ci --prefix tests/browser` (infra/test.sh does)";
/// How long one step in the browser (a page, a form) may take.
const STEP: Duration = Duration::from_secs(30);
/// How long search may take to index the photo.
const INDEXED: Duration = Duration::from_secs(60);
const SECRET: &str = "an-internal-secret-of-at-least-32-chars";

/// `tests/browser`: the npm packages.
fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Every role in one process, on the embedded backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_searches_opens_and_acts_on_a_photo_in_chromium() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let dir = tempfile::tempdir()?;
    let app = App::start_roles(Settings::embedded(dir.path()), dir, pinhole::ROLES).await?;
    let base = app.server.url();
    scenario(&tools, &app, &base, &base, "all roles in one process").await
}

/// The search role on a server of its own, fed by the other roles' events
/// through Kafka: the gateway's pages ask it over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_the_search_role_apart() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let main_dir = tempfile::tempdir()?;
    let search_dir = tempfile::tempdir()?;
    let main_port = free_port()?;
    let search_port = free_port()?;
    let bus = BusUrl::Kafka(KafkaSettings {
        brokers: pinhole_testkit::kafka_brokers(),
    });
    let namespace = unique("browser");
    let mut main = Settings::embedded(main_dir.path());
    main.bus = bus.clone();
    main.bus_namespace = namespace.clone();
    main.internal_token = Some(SECRET.to_owned().into());
    main.listen = ([127, 0, 0, 1], main_port).into();
    main.role_urls.search = Some(format!("http://127.0.0.1:{search_port}").parse()?);
    let mut search = Settings::embedded(search_dir.path());
    search.bus = bus;
    search.bus_namespace = namespace;
    search.internal_token = Some(SECRET.to_owned().into());
    search.listen = ([127, 0, 0, 1], search_port).into();
    search.role_urls.users = Some(format!("http://127.0.0.1:{main_port}").parse()?);
    search.role_urls.images = Some(format!("http://127.0.0.1:{main_port}").parse()?);
    let app = App::start_roles(
        main,
        main_dir,
        &["users", "images", "thumbnails", "gateway"],
    )
    .await?;
    let search = pinhole::start(search, &["search"]).await?;
    let base = app.server.url();
    let outcome = scenario(&tools, &app, &base, &search.url(), "search apart").await;
    search.stop().await?;
    outcome
}

/// What the test runs besides the server, found before it starts one.
struct Tools {
    axe: String,
    html_validate: PathBuf,
}

impl Tools {
    fn find() -> anyhow::Result<Self> {
        ensure!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: {INSTALL_BROWSER}"
        );
        let driver = Command::new("chromedriver").arg("--version").output();
        ensure!(
            driver.is_ok_and(|o| o.status.success()),
            "chromedriver is missing: {INSTALL_BROWSER}"
        );
        let axe = npm_dir().join("node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&axe)
            .with_context(|| format!("{} is missing: {INSTALL_NPM}", axe.display()))?;
        let html_validate = npm_dir().join("node_modules/.bin/html-validate");
        ensure!(
            html_validate.exists(),
            "{} is missing: {INSTALL_NPM}",
            html_validate.display()
        );
        Ok(Self { axe, html_validate })
    }
}

/// The people, the photos, then the browser. `site` serves the pages,
/// `search_api` the search API; `app` the rest of the API.
async fn scenario(
    tools: &Tools,
    app: &App,
    site: &str,
    search_api: &str,
    deployment: &str,
) -> anyhow::Result<()> {
    let author = "ana";
    let ana = app.user(author).await?;
    let viewer = "bea";
    app.user(viewer).await?;
    let forest = app
        .posted(
            &ana,
            small_photo("Wood.jpg", 1)?,
            &[("title", TITLE), ("description", "清晨的树林 #forest")],
        )
        .await?;
    let id = forest["id"].as_str().context("image id")?.to_owned();
    for (n, (file, title)) in [
        ("Aqua.jpg", "Blue water"),
        ("Storm.jpg", "Storm over the hills"),
        ("LadyBird.jpg", "A ladybird on a leaf"),
    ]
    .into_iter()
    .enumerate()
    {
        app.posted(&ana, small_photo(file, n + 2)?, &[("title", title)])
            .await?;
    }
    let q: String = url::form_urlencoded::byte_serialize(QUERY.as_bytes()).collect();
    let found = format!("{search_api}/api/v1/search/images?q={q}");
    wait_for(INDEXED, "the photo to be found by search", || async {
        let v: Value = app.http.get(&found).send().await.ok()?.json().await.ok()?;
        v["items"]
            .as_array()?
            .iter()
            .any(|i| i["image"]["id"] == id.as_str())
            .then_some(())
    })
    .await?;

    let driver = Driver::start().await?;
    let mut browser = driver.browser(site, &tools.axe).await?;
    let outcome = browse(&mut browser, tools, app, &id, author, viewer, deployment).await;
    if outcome.is_err() {
        browser.leave_evidence().await;
    }
    // Quit Chromium the polite way; the driver's guard kills what is left.
    let _ = browser.client.close().await;
    outcome
}

/// Everything done in the browser, and the HTML checked beside it.
async fn browse(
    b: &mut Browser,
    tools: &Tools,
    app: &App,
    id: &str,
    author: &str,
    viewer: &str,
    deployment: &str,
) -> anyhow::Result<()> {
    let detail = format!("/p/{id}");

    // Explore, then search from the box in the header.
    b.open("/").await?;
    b.check("/").await?;
    let q = b.find("form[role=search] input[name=q]").await?;
    q.send_keys(QUERY).await?;
    b.find("form[role=search] button[type=submit]")
        .await?
        .click()
        .await?;
    b.until(
        "the search results",
        "location.pathname === '/search' && document.querySelector('li.tile a') !== null",
    )
    .await?;
    b.check("/search").await?;

    // The first result is the photo; its page shows it, loaded.
    b.find("li.tile a").await?.click().await?;
    b.until(
        "the detail page",
        &format!("location.pathname === '{detail}' && document.readyState === 'complete'"),
    )
    .await?;
    let h1 = b.find("h1").await?.text().await?;
    ensure!(
        h1 == TITLE,
        "the first result's page is titled {h1:?}, not {TITLE:?}"
    );
    let width = b
        .until(
            "the photo to load",
            "const i = document.querySelector('figure.photo img'); \
             return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null",
        )
        .await?;
    ensure!(width.as_u64().is_some_and(|w| w > 0), "{width}");
    let paint = b.paint().await?;
    let cls = paint["cls"].as_f64().context("layout shift")?;
    eprintln!(
        "browser [{deployment}]: detail page largest contentful paint {} ms ({}), \
         cumulative layout shift {cls:.4} ({} shifts)",
        paint["lcp_ms"]
            .as_f64()
            .map_or_else(|| "none".to_owned(), |ms| format!("{ms:.0}")),
        paint["lcp_element"].as_str().unwrap_or("no element"),
        paint["shifts"],
    );
    ensure!(
        cls < 0.01,
        "the detail page's layout shifts by {cls} (at most 0.01)"
    );
    b.check("/p/{id}").await?;

    // The author's profile.
    b.find("a[rel=author]").await?.click().await?;
    b.until(
        "the profile",
        &format!("location.pathname === '/u/{author}' && document.readyState === 'complete'"),
    )
    .await?;
    ensure!(
        b.has(&format!("li.tile a[href=\"{detail}\"]")).await?,
        "the photo on its author's profile"
    );
    b.check("/u/{username}").await?;

    // The HTML anonymous visitors get.
    let anonymous = [
        ("explore", "/".to_owned()),
        ("search", format!("/search?q={}", b.encoded(QUERY))),
        ("detail", detail.clone()),
        ("profile", format!("/u/{author}")),
    ];
    b.validate(tools, app, "anonymous", &anonymous, None)
        .await?;

    // Logging in on the web, from the photo's page.
    b.open(&detail).await?;
    ensure!(
        b.has("header a[href=\"/login\"]").await?,
        "a log-in link in the header of a logged-out page"
    );
    ensure!(
        !b.has("form#logout-form").await?,
        "no log-out form for an anonymous visitor"
    );
    ensure!(
        !b.has("form#like-form").await?,
        "no like form for an anonymous visitor"
    );
    let link = b.find("a#login-link").await?;
    let href = link.attr("href").await?.unwrap_or_default();
    ensure!(
        href.starts_with("/login?next="),
        "the log-in link goes to {href:?}"
    );
    b.open("/signup").await?;
    let form = b.find("form#signup-form").await?;
    for field in ["username", "email", "password", "display_name"] {
        form.find(Locator::Css(&format!("[name={field}]")))
            .await
            .with_context(|| format!("the sign-up form's {field}"))?;
    }
    b.check("/signup").await?;
    b.open(&detail).await?;
    b.find("a#login-link").await?.click().await?;
    b.until(
        "the log-in page",
        "location.pathname === '/login' && document.readyState === 'complete'",
    )
    .await?;
    let form = b.find("form#login-form").await?;
    ensure!(
        form.attr("method")
            .await?
            .is_some_and(|m| m.eq_ignore_ascii_case("post"))
            && form.attr("action").await?.as_deref() == Some("/login"),
        "the log-in form posts to /login"
    );
    let next = form.find(Locator::Css("input[name=next]")).await?;
    ensure!(
        next.attr("type").await?.as_deref() == Some("hidden")
            && next.prop("value").await?.as_deref() == Some(detail.as_str()),
        "the log-in form's next is {:?}",
        next.prop("value").await?
    );
    let csrf = form.find(Locator::Css("input[name=csrf]")).await?;
    ensure!(
        csrf.attr("type").await?.as_deref() == Some("hidden")
            && csrf.prop("value").await?.is_some_and(|v| !v.is_empty()),
        "the log-in form carries a CSRF token"
    );
    b.check("/login").await?;
    form.find(Locator::Css("input[name=username]"))
        .await?
        .send_keys(viewer)
        .await?;
    form.find(Locator::Css("input[name=password]"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    b.button(&form, "Log in").await?.click().await?;
    b.until(
        "the photo's page, logged in",
        &format!(
            "location.pathname === '{detail}' && document.readyState === 'complete' \
             && document.querySelector('form#logout-form') !== null"
        ),
    )
    .await?;
    ensure!(
        !b.has("header a[href=\"/login\"]").await?,
        "no log-in link once logged in"
    );
    b.check("/p/{id}, logged in").await?;

    // Like.
    let likes = b.likes().await?;
    let form = b.find("form#like-form").await?;
    b.button(&form, "Like").await?.click().await?;
    b.until(
        "the photo liked",
        "const b = document.querySelector('form#like-form button'); \
         return document.readyState === 'complete' && b !== null && b.textContent.trim() === 'Unlike'",
    )
    .await?;
    let now = b.likes().await?;
    ensure!(now == likes + 1, "{likes} likes before liking, {now} after");

    // Follow the author.
    let form = b.find("form#follow-form").await?;
    b.button(&form, "Follow").await?.click().await?;
    b.until(
        "the author followed",
        "const b = document.querySelector('form#follow-form button'); \
         return document.readyState === 'complete' && b !== null && b.textContent.trim() === 'Unfollow'",
    )
    .await?;

    // Comment.
    let said = "雾里的光真好看";
    let form = b.find("form#comment-form").await?;
    form.find(Locator::Css("textarea[name=text]"))
        .await?
        .send_keys(said)
        .await?;
    b.button(&form, "Comment").await?.click().await?;
    b.until(
        "the comment on the page",
        &format!(
            "return document.readyState === 'complete' && location.pathname === '{detail}' \
             && [...document.querySelectorAll('section.comments li')].some(li => li.textContent.includes('{said}'))"
        ),
    )
    .await?;
    b.check("/p/{id}, after liking, following and commenting")
        .await?;
    b.open("/").await?;
    b.check("/, logged in").await?;

    // The HTML of the log-in pages, and of the pages as the viewer sees them.
    let cookie = b.cookie_header().await?;
    let login = [
        ("login", format!("/login?next={}", b.encoded(&detail))),
        ("signup", "/signup".to_owned()),
    ];
    b.validate(tools, app, "anonymous", &login, None).await?;
    b.validate(tools, app, "logged-in", &anonymous, Some(&cookie))
        .await?;

    // Log out.
    let form = b.find("form#logout-form").await?;
    form.find(Locator::Css("button")).await?.click().await?;
    b.until(
        "logged out",
        "document.readyState === 'complete' && document.querySelector('header a[href=\"/login\"]') !== null",
    )
    .await?;

    ensure!(
        b.findings.is_empty(),
        "{} problem(s) in the pages:\n{}",
        b.findings.len(),
        b.findings.join("\n")
    );
    Ok(())
}

/// chromedriver on a port of its own, in a process group of its own with
/// every Chromium process it starts: the whole group is killed when this is
/// dropped, whatever the test did.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("chromedriver could not be started: {INSTALL_BROWSER}"))?;
        let driver = Self {
            child,
            port,
            profile: tempfile::tempdir()?,
        };
        let http = reqwest::Client::new();
        let status = format!("http://127.0.0.1:{port}/status");
        wait_for(STEP, "chromedriver to be ready", || async {
            let v: Value = http.get(&status).send().await.ok()?.json().await.ok()?;
            (v["value"]["ready"] == true).then_some(())
        })
        .await?;
        Ok(driver)
    }

    /// A new headless Chromium, logging everything its pages log.
    async fn browser(&self, site: &str, axe: &str) -> anyhow::Result<Browser> {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1280,900",
                    "--no-first-run",
                    // Nothing of Google's: this machine reaches no outside host.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            // Every command ends well within nextest's terminate-after.
            "timeouts": {"pageLoad": STEP.as_millis(), "script": STEP.as_millis(), "implicit": 0},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            bail!("capabilities are an object");
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .with_context(|| format!("starting {CHROMIUM} through chromedriver"))?;
        Ok(Browser {
            client,
            site: site.to_owned(),
            axe: axe.to_owned(),
            findings: Vec::new(),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /session/{id}/se/log` of chromedriver: the browser's console and
/// network errors since the last call.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A browser on the site, and what the checks found wrong with its pages.
struct Browser {
    client: fantoccini::Client,
    site: String,
    axe: String,
    findings: Vec<String>,
}

impl Browser {
    async fn open(&self, path: &str) -> anyhow::Result<()> {
        self.client
            .goto(&format!("{}{path}", self.site))
            .await
            .with_context(|| format!("opening {path}"))?;
        Ok(())
    }

    /// The first element matching `css`, once there is one.
    async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let found = self
            .client
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => Ok(e),
            Err(e) => {
                let at = self.client.current_url().await.map(|u| u.to_string());
                Err(anyhow::Error::new(e)
                    .context(format!("no {css} on {}", at.unwrap_or_default())))
            }
        }
    }

    /// Whether the page has an element matching `css` now.
    async fn has(&self, css: &str) -> anyhow::Result<bool> {
        Ok(!self.client.find_all(Locator::Css(css)).await?.is_empty())
    }

    /// The button of `form` that says `label`.
    async fn button(&self, form: &Element, label: &str) -> anyhow::Result<Element> {
        for button in form.find_all(Locator::Css("button")).await? {
            if button.text().await?.trim() == label {
                return Ok(button);
            }
        }
        bail!("no {label:?} button in {}", form.html(false).await?)
    }

    /// Waits until the script `js` (an expression, or a body that
    /// returns) gives something other than `null`, `false` or nothing;
    /// what it gave.
    async fn until(&self, what: &str, js: &str) -> anyhow::Result<Value> {
        let script = if js.contains("return ") {
            js.to_owned()
        } else {
            format!("return {js};")
        };
        wait_for(STEP, what, || async {
            let v = self.client.execute(&script, vec![]).await.ok()?;
            (!v.is_null() && v != false).then_some(v)
        })
        .await
    }

    /// The number in `span.likes`.
    async fn likes(&self) -> anyhow::Result<u64> {
        let text = self.find("span.likes").await?.text().await?;
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .with_context(|| format!("a like count in {text:?}"))
    }

    fn encoded(&self, s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    /// Largest contentful paint and layout shift of the page so far, from
    /// the buffered performance entries, once two more frames are painted.
    async fn paint(&self) -> anyhow::Result<Value> {
        let script = "
            const done = arguments[arguments.length - 1];
            const read = (type) => {
                const seen = [];
                const o = new PerformanceObserver((l) => seen.push(...l.getEntries()));
                o.observe({type, buffered: true});
                seen.push(...o.takeRecords());
                return [o, seen];
            };
            const [lo, lcp] = read('largest-contentful-paint');
            const [so, shifts] = read('layout-shift');
            requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => {
                lcp.push(...lo.takeRecords());
                shifts.push(...so.takeRecords());
                lo.disconnect();
                so.disconnect();
                const last = lcp[lcp.length - 1];
                done({
                    lcp_ms: last ? last.startTime : null,
                    lcp_element: last && last.element ? last.element.tagName.toLowerCase() : null,
                    cls: shifts.filter((s) => !s.hadRecentInput).reduce((sum, s) => sum + s.value, 0),
                    shifts: shifts.length,
                });
            })));
        ";
        Ok(self.client.execute_async(script, vec![]).await?)
    }

    /// The page's console and network errors, and its serious or critical
    /// axe-core violations, into `findings` (and printed at once).
    async fn check(&mut self, page: &str) -> anyhow::Result<()> {
        let mut found = Vec::new();
        let log = self.client.issue_cmd(BrowserLog).await?;
        for entry in log.as_array().into_iter().flatten() {
            if entry["level"] == "SEVERE" {
                found.push(format!("{page}: console: {}", entry["message"]));
            }
        }
        self.client
            .execute(&self.axe, vec![])
            .await
            .context("loading axe-core")?;
        let script = "
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']})
                .then((r) => done(r.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                    nodes: v.nodes.map((n) => ({target: n.target.join(' '), html: n.html, why: n.failureSummary})),
                }))))
                .catch((e) => done({error: String(e)}));
        ";
        let violations = self.client.execute_async(script, vec![]).await?;
        if let Some(e) = violations.get("error") {
            bail!("axe-core on {page}: {e}");
        }
        for v in violations.as_array().into_iter().flatten() {
            let impact = v["impact"].as_str().unwrap_or("unknown");
            let mut text = format!(
                "{page}: axe {impact} {}: {} ({})",
                v["id"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                v["url"].as_str().unwrap_or_default()
            );
            for n in v["nodes"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "\n    at {} {}\n      {}",
                    n["target"].as_str().unwrap_or_default(),
                    n["html"].as_str().unwrap_or_default(),
                    n["why"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('\n', "\n      ")
                ));
            }
            if matches!(impact, "serious" | "critical") {
                found.push(text);
            } else {
                eprintln!("browser (not failing): {text}");
            }
        }
        for f in &found {
            eprintln!("browser: {f}");
        }
        self.findings.extend(found);
        Ok(())
    }

    /// `Cookie:` with the browser's cookies for the site (HttpOnly too).
    async fn cookie_header(&self) -> anyhow::Result<String> {
        let cookies = self.client.get_all_cookies().await?;
        ensure!(!cookies.is_empty(), "a session cookie after logging in");
        Ok(cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Fetches `pages` (name, path) as served (with `cookie`, when given)
    /// and runs html-validate on them; its errors go into `findings`.
    async fn validate(
        &mut self,
        tools: &Tools,
        app: &App,
        who: &str,
        pages: &[(&str, String)],
        cookie: Option<&str>,
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut files = Vec::new();
        for (name, path) in pages {
            let mut request = app.http.get(format!("{}{path}", self.site));
            if let Some(cookie) = cookie {
                request = request.header(reqwest::header::COOKIE, cookie);
            }
            let response = request.send().await?;
            let status = response.status();
            let html = response.text().await?;
            ensure!(status == StatusCode::OK, "{who} {path}: {status} {html}");
            let file = dir.path().join(format!("{who}-{name}.html"));
            std::fs::write(&file, html)?;
            files.push(file);
        }
        let out = Command::new(&tools.html_validate)
            .arg("--config")
            .arg(npm_dir().join(".htmlvalidate.json"))
            .args(["--formatter", "text"])
            .args(&files)
            .output()
            .with_context(|| format!("running html-validate: {INSTALL_NPM}"))?;
        if !out.status.success() {
            let text = format!(
                "html-validate ({who}):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("browser: {text}");
            self.findings.push(text);
        }
        Ok(())
    }

    /// After a failure: where the browser was, a screenshot of it, and
    /// what was found so far.
    async fn leave_evidence(&self) {
        let at = self.client.current_url().await.map(|u| u.to_string());
        let shot = std::env::temp_dir().join(format!("{}.png", unique("pinhole-browser")));
        let saved = match self.client.screenshot().await {
            Ok(png) => std::fs::write(&shot, png).is_ok(),
            Err(_) => false,
        };
        eprintln!(
            "browser: failed at {}{}",
            at.unwrap_or_default(),
            if saved {
                format!("; screenshot {}", shot.display())
            } else {
                String::new()
            }
        );
        for f in &self.findings {
            eprintln!("browser: found earlier: {f}");
        }
    }
}
