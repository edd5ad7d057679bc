//! Plain `heroku login` (the browser flow) against Slipway, end to end: the real heroku CLI in
//! a pseudo-terminal with `HEROKU_LOGIN_HOST` pointed at the API, and a real headless
//! Chromium (driven through ChromeDriver's WebDriver protocol) filling Slipway's login page,
//! first with a wrong password, then the right one; the CLI then holds a working key in its
//! netrc.

mod support;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Server;

const PASSWORD: &str = "correct horse battery staple";

/// Debian's Chromium and ChromeDriver, which `.ci/run` installs (packages `chromium` and
/// `chromium-driver`): a missing one fails the test rather than skipping it.
fn browser_binaries() -> (&'static str, &'static str) {
    let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    for path in [chromium, driver] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: install it with `apt-get install -y chromium chromium-driver` (as .ci/run does)"
        );
    }
    (chromium, driver)
}

/// A running ChromeDriver with one headless Chromium session, ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let (chromium, driver_path) = browser_binaries();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags the machine notes give for a closed network, as root.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let created: Value = http
            .post(format!("{base}/session"))
            // Lookups wait (up to 20 s) for an element to appear: a form post's answer
            // may still be loading when the click returns.
            .json(&json!({"capabilities": {"alwaysMatch": {
                "timeouts": {"implicit": 20000},
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.http.request(method.clone(), url);
        // WebDriver's GETs take no body; its POSTs always take a JSON object.
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            json!({}),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The password of the netrc entry for `machine`.
fn netrc_token(home: &Path, machine: &str) -> Option<String> {
    let text = std::fs::read_to_string(home.join(".netrc")).unwrap_or_default();
    let mut tokens = text.split_whitespace();
    while let Some(token) = tokens.next() {
        if token == "machine" && tokens.next() == Some(machine) {
            for token in tokens.by_ref() {
                if token == "machine" {
                    return None;
                }
                if token == "password" {
                    return tokens.next().map(str::to_owned);
                }
            }
        }
    }
    None
}

/// Waits until `output` contains `needle`; returns the output.
async fn wait_for(output: &Arc<Mutex<String>>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = output.lock().unwrap().clone();
        if seen.contains(needle) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} from heroku login:\n{seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_heroku_login_logs_in_through_slipways_page_in_a_real_browser() {
    let server = Server::start();
    let cli = support::heroku_cli();
    let browser = Browser::start().await;
    let mut add = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["users:add", "dev@example.com", "--password-stdin"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &server.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(add.wait_with_output().unwrap().status.success());

    // `heroku login` at a terminal (`script`), logged in nowhere yet; its browser is `true`,
    // so the URL it prints is what the test's browser opens.
    let home = tempfile::tempdir().unwrap();
    let mut child = server
        .heroku_command(OsStr::new("script"), home.path(), home.path())
        .env("HEROKU_HOST", &server.api_url)
        .env("HEROKU_PARTICLEBOARD_URL", &server.api_url)
        .env("HEROKU_LOGIN_HOST", &server.api_url)
        .env("HEROKU_NETRC_WRITE", "true")
        .env("BROWSER", "true")
        .env("TERM", "dumb")
        .env_remove("HEROKU_API_KEY")
        .arg("-qfec")
        .arg(format!("{} login", cli.display()))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run heroku login under script");
    let output = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let seen = Arc::clone(&output);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    wait_for(&output, "Press any key").await;
    stdin.write_all(b"b").unwrap();
    let printed = wait_for(&output, "/auth/browser/").await;
    let url = printed
        .split_whitespace()
        .find(|word| word.contains("/auth/browser/"))
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    assert!(url.starts_with(&server.api_url), "{url}");

    // A wrong password: the page says so and the CLI keeps waiting.
    browser.goto(&url).await;
    browser.type_into("#email", "dev@example.com").await;
    browser.type_into("#password", "not the password").await;
    browser.click("#login").await;
    let problem = browser.text("#problem").await;
    assert!(problem.contains("wrong"), "{problem}");
    assert!(child.try_wait().unwrap().is_none(), "the CLI gave up");

    // The right one: the page says who is logged in, and the CLI finishes.
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    let done = browser.text("#done").await;
    assert!(done.contains("Logged in as dev@example.com"), "{done}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "heroku login did not finish:\n{}",
            output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(stdin);
    let printed = output.lock().unwrap().clone();
    assert!(status.success(), "{printed}");
    assert!(
        printed.contains("Logged in as dev@example.com"),
        "{printed}"
    );

    // The key in the netrc is a working key of that account.
    let machine = server.api_url.trim_start_matches("http://");
    let token = netrc_token(home.path(), machine).expect("a netrc entry for the API");
    let account: Value = reqwest::Client::new()
        .get(format!("{}/account", server.api_url))
        .header("accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["email"], "dev@example.com", "{account}");
    // The login page of a finished login offers nothing more.
    browser.goto(&url).await;
    let title = browser.text("h1").await;
    assert_eq!(title, "Login expired");
}
