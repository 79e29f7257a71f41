//! `protocol/openapi.yaml` held against the running server over real sockets.
//!
//! Each documented operation is driven into every status code the document lists for it, and
//! every answer is validated against the schema the document gives for that status (JSON
//! Schema 2020-12, as OpenAPI 3.1 uses). The document's own list of operations and statuses is
//! the checklist: a route or status added to the YAML without a probe here fails the test, and
//! so does a probe whose answer the YAML does not describe. Paths the document does not list
//! must answer the JSON 404; methods it does not list for a path the JSON 405 with `Allow`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{ALICE, BOB, Harness};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;
use reqwest::Method;
use serde_json::{Value, json};

const API_KEY: &str = "contract-key";
const ADMIN_KEY: &str = "contract-admin-key";
const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/openapi.yaml");

struct Spec(Value);

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(SPEC).unwrap();
        Spec(serde_norway::from_str(&text).unwrap())
    }

    /// Every (method, path template) the document lists, with its status codes.
    fn operations(&self) -> BTreeMap<(String, String), BTreeSet<u16>> {
        let mut operations = BTreeMap::new();
        for (path, item) in self.0["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let statuses = operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|s| s.parse().unwrap())
                    .collect();
                operations.insert((method.to_uppercase(), path.clone()), statuses);
            }
        }
        operations
    }

    /// The methods the document lists for a path template, as `Allow` should name them.
    fn methods(&self, path: &str) -> BTreeSet<String> {
        self.0["paths"][path]
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect()
    }

    /// The response the document gives for `status` of an operation, `$ref` resolved.
    fn response(&self, method: &str, path: &str, status: u16) -> &Value {
        let response =
            &self.0["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
        match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference.strip_prefix("#/components/responses/").unwrap();
                &self.0["components"]["responses"][name]
            }
            None => response,
        }
    }

    /// Checks an answer against the document: its media type and body against the schema
    /// for `status` of the operation (rooted beside the document's `components` so that its
    /// `$ref`s resolve), and every header the response requires.
    fn check(&self, method: &str, path: &str, status: u16, answer: &Answer) {
        let what = format!("{method} {path} {status}");
        let response = self.response(method, path, status);
        let schema = &response["content"][&answer.media_type]["schema"];
        assert!(
            schema.is_object(),
            "{what}: the document lists no {} answer: {}",
            answer.media_type,
            answer.body
        );
        self.validate(schema, &answer.body, &what);
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let value = answer
                .headers
                .get(name.as_str())
                .map(|v| v.to_str().unwrap());
            let Some(value) = value else {
                assert!(header["required"] != true, "{what}: no {name} header");
                continue;
            };
            let value = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
            self.validate(&header["schema"], &value, &format!("{what} header {name}"));
        }
    }

    fn validate(&self, schema: &Value, body: &Value, what: &str) {
        let mut root = schema.clone();
        root["components"] = self.0["components"].clone();
        let validator = jsonschema::draft202012::new(&root).unwrap();
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{what}: {body} does not match: {errors:?}"
        );
    }
}

/// What the server answered: the body is JSON, or a string for `text/plain`.
struct Answer {
    status: u16,
    media_type: String,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

/// One request to the server and what the document says it is.
struct Probe {
    method: Method,
    template: &'static str,
    url: String,
    body: Option<(&'static str, String)>,
    bearer: Option<&'static str>,
}

impl Probe {
    fn get(h: &Harness, template: &'static str, path: &str) -> Probe {
        Probe {
            method: Method::GET,
            template,
            url: h.api(path),
            body: None,
            bearer: None,
        }
    }

    fn poll(h: &Harness, content_type: &'static str, body: String) -> Probe {
        Probe {
            method: Method::POST,
            template: "/v1/logins/poll",
            url: h.api("/v1/logins/poll"),
            body: Some((content_type, body)),
            bearer: None,
        }
    }

    fn post(
        h: &Harness,
        template: &'static str,
        content_type: &'static str,
        body: impl Into<String>,
    ) -> Probe {
        Probe {
            method: Method::POST,
            template,
            url: h.api(template),
            body: Some((content_type, body.into())),
            bearer: None,
        }
    }

    /// A request to the admin listener of `h` (or to its API's address when it has none).
    fn admin(
        h: &Harness,
        method: Method,
        template: &'static str,
        path: &str,
        body: Option<(&'static str, String)>,
    ) -> Probe {
        let addr = h.daemon().admin_addr.unwrap_or(h.daemon().http_addr);
        Probe {
            method,
            template,
            url: format!("http://{addr}{path}"),
            body,
            bearer: Some(ADMIN_KEY),
        }
    }

    fn mint(h: &Harness) -> Probe {
        Probe {
            method: Method::POST,
            template: "/v1/logins",
            url: h.api("/v1/logins"),
            body: None,
            bearer: None,
        }
    }

    fn keyed(mut self) -> Probe {
        self.bearer = Some(API_KEY);
        self
    }

    fn unkeyed(mut self) -> Probe {
        self.bearer = None;
        self
    }

    /// Sends the probe; the answer must be JSON, or text where the document says so.
    async fn send(&self, h: &Harness) -> Answer {
        let mut request = h.http.request(self.method.clone(), &self.url);
        if let Some((content_type, body)) = &self.body {
            request = request
                .header("content-type", *content_type)
                .body(body.clone());
        }
        if let Some(key) = self.bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap().trim().to_owned();
        let body = match media_type.as_str() {
            "application/json" => response.json().await.unwrap(),
            "text/plain" => Value::String(response.text().await.unwrap()),
            _ => panic!("{} {} answered {content_type:?}", self.method, self.url),
        };
        Answer {
            status,
            media_type,
            body,
            headers,
        }
    }
}

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let spec = Spec::load();
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "contract".into(),
            sha256: api_key_hash(API_KEY),
        }];
    })
    .await;
    let keyless = Harness::start().await;
    // One poll and one mint a minute, so the second is refused at once.
    let limited = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "contract".into(),
            sha256: api_key_hash(API_KEY),
        }];
        c.limits.poll_per_minute = 1;
        c.limits.poll_burst = 1;
        c.limits.mint_per_minute = 1;
        c.limits.mint_burst = 1;
        c.limits.password_failures_per_account_per_hour = 1;
    })
    .await;
    let admin = Harness::start_with(Options::default(), |c| {
        c.http.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.http.admin_key = Some(ADMIN_KEY.into());
    })
    .await;
    // An account for `GET /admin/accounts/{number}` to show (and then erase).
    let (v, t) = admin.app_token(0);
    admin.phone_sends(ALICE, &format!("LOGIN {t}")).await;
    assert_eq!(admin.poll(&v, &t, 10_000).await.1["state"], "complete");
    // Sessions belong to the app's own core here: the session routes answer 404.
    let remote = Harness::start_with(Options::default(), |c| {
        c.auth.mode = moauth::auth::config::AuthMode::Remote;
        c.auth.remote = Some(crate::remote_auth::remote_config(
            "http://127.0.0.1:9/auth".into(),
        ));
    })
    .await;

    let (verifier, token) = h.app_token(0);
    let (other, _) = h.app_token(0);
    let (old_verifier, old) = h.app_token(3_600);
    let (typo_verifier, typo_token) = h.app_token(0);
    let (fresh_verifier, fresh_token) = h.app_token(0);
    let poll_body = |v: &moauth::core::token::Verifier, t: &moauth::core::token::Token| {
        json!({ "verifier": v.to_base64url(), "token": t.to_string() }).to_string()
    };
    let lookup = |t: &moauth::core::token::Token| format!("/v1/logins/{}", t.compact());

    let mut probes = vec![
        // pending, then complete and consumed once the SMS is in (sent below).
        Probe::poll(&h, "application/json", poll_body(&verifier, &token)),
        Probe::get(&h, "/v1/logins/{token}", &lookup(&old)).keyed(),
        Probe::poll(&h, "application/json", "{not json".into()),
        Probe::poll(
            &h,
            "application/json",
            json!({ "verifier": "short", "token": token.to_string() }).to_string(),
        ),
        Probe::poll(
            &h,
            "application/json",
            json!({ "verifier": verifier.to_base64url(), "token": "1234" }).to_string(),
        ),
        Probe::poll(&h, "application/json", poll_body(&other, &token)),
        Probe::poll(
            &h,
            "application/json",
            format!("{{\"verifier\": \"{}\"}}", "x".repeat(10_000)),
        ),
        Probe::poll(&h, "text/plain", poll_body(&verifier, &token)),
        Probe::get(&h, "/v1/logins/{token}", "/v1/logins/not-a-token").keyed(),
        Probe::get(
            &h,
            "/v1/logins/{token}",
            &format!("{}?wait_ms=soon", lookup(&token)),
        )
        .keyed(),
        Probe::get(&h, "/v1/logins/{token}", &lookup(&token)),
        Probe::get(&keyless, "/v1/logins/{token}", &lookup(&token)),
        Probe::mint(&h).keyed(),
        Probe::mint(&h),
        Probe::mint(&keyless),
        Probe::get(&h, "/healthz", "/healthz"),
        Probe::get(&h, "/readyz", "/readyz"),
        Probe::get(&h, "/status", "/status"),
        Probe::get(&h, "/metrics", "/metrics"),
        Probe::poll(&limited, "application/json", poll_body(&verifier, &token)),
        Probe::poll(&limited, "application/json", poll_body(&verifier, &token)),
        Probe::get(&limited, "/v1/logins/{token}", &lookup(&token)).keyed(),
        Probe::mint(&limited).keyed(),
        Probe::mint(&limited).keyed(),
    ];
    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    let big = format!("token={}", "x".repeat(10_000));
    for route in ["/v1/sessions/introspect", "/v1/sessions/revoke"] {
        probes.extend([
            Probe::post(&h, route, FORM, "token=no-such-session").keyed(),
            Probe::post(&h, route, JSON, r#"{"token": 7}"#).keyed(),
            Probe::post(&h, route, FORM, "token=no-such-session"),
            Probe::post(&keyless, route, FORM, "token=no-such-session"),
            Probe::post(&h, route, FORM, big.clone()).keyed(),
            Probe::post(&h, route, "text/plain", "token=x").keyed(),
        ]);
    }
    let all = "/v1/sessions/revoke-all";
    probes.extend([
        Probe::post(&h, all, FORM, "account_id=1").keyed(),
        Probe::post(&h, all, JSON, r#"{"account_id": "one"}"#).keyed(),
        Probe::post(&h, all, FORM, "account_id=1"),
        Probe::post(&keyless, all, FORM, "account_id=1"),
        Probe::post(&h, all, FORM, big.clone()).keyed(),
        Probe::post(&h, all, "text/plain", "account_id=1").keyed(),
    ]);
    let (accounts, all_admin) = ("/admin/accounts/{number}", "/admin/sessions/revoke-all");
    let json_body = |text: &str| Some((JSON, text.to_owned()));
    for (target, method, template, path, body) in [
        (
            &admin,
            Method::GET,
            accounts,
            "/admin/accounts/%2B8613800138000",
            None,
        ),
        (
            &admin,
            Method::GET,
            accounts,
            "/admin/accounts/not-a-number",
            None,
        ),
        (
            &h,
            Method::GET,
            accounts,
            "/admin/accounts/%2B8613800138000",
            None,
        ),
        (
            &admin,
            Method::DELETE,
            accounts,
            "/admin/accounts/%2B8613800138000",
            None,
        ),
        (&admin, Method::DELETE, accounts, "/admin/accounts/x", None),
        (
            &h,
            Method::DELETE,
            accounts,
            "/admin/accounts/%2B8613800138000",
            None,
        ),
        (
            &admin,
            Method::POST,
            all_admin,
            all_admin,
            json_body(r#"{"account_id": "1"}"#),
        ),
        (
            &admin,
            Method::POST,
            all_admin,
            all_admin,
            json_body(r#"{"account_id": "x"}"#),
        ),
        (
            &admin,
            Method::POST,
            all_admin,
            all_admin,
            Some(("text/plain", "x".into())),
        ),
        (
            &h,
            Method::POST,
            all_admin,
            all_admin,
            json_body(r#"{"account_id": "1"}"#),
        ),
        (&admin, Method::GET, "/admin/outbox", "/admin/outbox", None),
        (&h, Method::GET, "/admin/outbox", "/admin/outbox", None),
        (
            &admin,
            Method::DELETE,
            "/admin/outbox/{id}",
            "/admin/outbox/7",
            None,
        ),
        (
            &admin,
            Method::DELETE,
            "/admin/outbox/{id}",
            "/admin/outbox/seven",
            None,
        ),
        (
            &h,
            Method::DELETE,
            "/admin/outbox/{id}",
            "/admin/outbox/7",
            None,
        ),
        (&admin, Method::GET, "/admin/inbox", "/admin/inbox", None),
        (&h, Method::GET, "/admin/inbox", "/admin/inbox", None),
        (
            &admin,
            Method::GET,
            "/admin/rejected",
            "/admin/rejected",
            None,
        ),
        (&h, Method::GET, "/admin/rejected", "/admin/rejected", None),
    ] {
        probes.push(Probe::admin(target, method, template, path, body));
    }
    // Every command without the admin key (401), and on a daemon that has none (403).
    let no_admin_key = Harness::start_with(Options::default(), |c| {
        c.http.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    for (method, template, path) in [
        (Method::GET, accounts, "/admin/accounts/%2B8613800138000"),
        (Method::DELETE, accounts, "/admin/accounts/%2B8613800138000"),
        (Method::POST, all_admin, all_admin),
        (Method::GET, "/admin/outbox", "/admin/outbox"),
        (Method::DELETE, "/admin/outbox/{id}", "/admin/outbox/7"),
        (Method::GET, "/admin/inbox", "/admin/inbox"),
        (Method::GET, "/admin/rejected", "/admin/rejected"),
    ] {
        let body = (method == Method::POST).then(|| json_body(r#"{"account_id": "1"}"#).unwrap());
        let unkeyed = Probe::admin(&admin, method.clone(), template, path, body.clone()).unkeyed();
        probes.push(unkeyed);
        probes.push(Probe::admin(&no_admin_key, method, template, path, body));
    }
    let pw = "/v1/password-logins";
    let guess = json!({ "login": ALICE, "password": "guess" }).to_string();
    probes.extend([
        Probe::post(&h, pw, JSON, guess.clone()),
        Probe::post(&h, pw, JSON, r#"{"login": "+8613800138000"}"#),
        Probe::post(&remote, pw, JSON, guess.clone()),
        Probe::post(&h, pw, FORM, big.clone()),
        Probe::post(&h, pw, "text/plain", guess.clone()),
        Probe::post(&limited, pw, JSON, guess.clone()),
        Probe::post(&limited, pw, JSON, guess.clone()),
    ]);

    let mut seen: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    let mut record = |probe: &Probe, answer: &Answer| {
        spec.check(probe.method.as_str(), probe.template, answer.status, answer);
        seen.entry((probe.method.to_string(), probe.template.to_owned()))
            .or_default()
            .insert(answer.status);
    };
    for probe in &probes {
        let answer = probe.send(&h).await;
        record(probe, &answer);
    }

    // Every state of a login, each answer checked against the document.
    // A login the key minted: the only kind the token lookup hands out.
    let (minted_verifier, minted, _) = h.mint(API_KEY).await;
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    h.phone_sends(BOB, &format!("LOGIN {minted}")).await;
    let mut typo: Vec<char> = typo_token.to_string().chars().collect();
    let last = typo.last_mut().unwrap();
    *last = if *last == 'Z' { 'Y' } else { 'Z' };
    h.phone_sends(ALICE, &format!("LOGIN {}", typo.iter().collect::<String>()))
        .await;
    let sms = h.settled_submits(3).await;
    // ALICE's credential SMS ("... password abc. Keep it private.") logs her in by password.
    // BOB's may come first: new accounts' passwords are made side by side.
    let texted = sms
        .iter()
        .find(|s| s.to == ALICE && s.text.contains("password "))
        .map(|s| common::texted_password(&s.text))
        .unwrap();
    let by_password = Probe::post(
        &h,
        "/v1/password-logins",
        "application/json",
        json!({ "login": ALICE, "password": texted }).to_string(),
    );
    let answer = by_password.send(&h).await;
    record(&by_password, &answer);
    let mut states = BTreeSet::new();
    probes = vec![
        Probe::poll(&h, "application/json", poll_body(&verifier, &token)),
        Probe::get(
            &h,
            "/v1/logins/{token}",
            &format!("{}?wait_ms=10000", lookup(&minted)),
        )
        .keyed(),
        Probe::poll(&h, "application/json", poll_body(&minted_verifier, &minted)),
        Probe::poll(
            &h,
            "application/json",
            poll_body(&typo_verifier, &typo_token),
        ),
        Probe::poll(&h, "application/json", poll_body(&old_verifier, &old)),
        Probe::poll(
            &h,
            "application/json",
            poll_body(&fresh_verifier, &fresh_token),
        ),
    ];
    for probe in &probes {
        let answer = probe.send(&h).await;
        record(probe, &answer);
        states.insert(answer.body["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        states,
        ["complete", "consumed", "rejected", "expired", "pending"]
            .map(String::from)
            .into(),
    );

    // Not ready once the only SMSC is gone. The link state has no change notification to
    // wait on from outside, so this asks again until the unbind shows, within PATIENCE.
    h.sim.stop();
    let ready = Probe::get(&h, "/readyz", "/readyz");
    common::eventually("/readyz 503 once the SMSC is gone", async || {
        let answer = ready.send(&h).await;
        record(&ready, &answer);
        answer.status == 503
    })
    .await;

    assert_eq!(seen, spec.operations(), "statuses seen vs documented");
}

/// Whether a concrete path falls under a path template such as `/v1/logins/{token}`.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

#[tokio::test]
async fn undocumented_routes_and_methods_answer_json_404_and_405() {
    let spec = Spec::load();
    let h = Harness::start().await;
    // The operators' `/admin/` routes exist only on an admin listener.
    let admin = Harness::start_with(Options::default(), |c| {
        c.http.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.http.admin_key = Some(ADMIN_KEY.into());
    })
    .await;
    let error = json!({ "$ref": "#/components/schemas/Error" });

    for path in [
        "/",
        "/v1",
        "/v1/logins/poll/again",
        "/healthz/",
        "/v2/logins/poll",
        "/status.json",
        "/admin",
    ] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let probe = Probe {
                method: method.clone(),
                template: "",
                url: h.api(path),
                body: None,
                bearer: None,
            };
            let Answer { status, body, .. } = probe.send(&h).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(body["error"], "not_found");
            spec.validate(&error, &body, path);
        }
    }

    let documented = spec.operations();
    let templates: BTreeSet<&String> = documented.keys().map(|(_, p)| p).collect();
    for template in &templates {
        let path = template
            .replace("{token}", "1ABCD")
            .replace("{number}", "%2B8613800138000")
            .replace("{id}", "7");
        let url = match template.starts_with("/admin/") {
            true => format!("http://{}{path}", admin.daemon().admin_addr.unwrap()),
            false => h.api(&path),
        };
        let allowed = spec.methods(template);
        // `/v1/logins/poll` is also a `/v1/logins/{token}`: GET there is documented.
        let documented_here: BTreeSet<String> = templates
            .iter()
            .filter(|t| matches(t, &path))
            .flat_map(|t| spec.methods(t))
            .collect();
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if documented_here.contains(method.as_str()) {
                continue;
            }
            let probe = Probe {
                method: method.clone(),
                template: "",
                url: url.clone(),
                body: None,
                bearer: None,
            };
            let Answer {
                status,
                body,
                headers,
                ..
            } = probe.send(&h).await;
            assert_eq!(status, 405, "{method} {path}: {body}");
            assert_eq!(body["error"], "method_not_allowed");
            spec.validate(&error, &body, &path);
            let allow: BTreeSet<String> = headers["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| m != "HEAD")
                .collect();
            assert_eq!(allow, allowed, "Allow for {path}");
        }
    }
}
