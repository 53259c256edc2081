//! `testrelay login`, `logout` and `status`: the cloud bridge for humans. They share the
//! bridge's connection code, so what `status` reports is what the IDE session sees.

use std::io::Read;
use std::process::ExitCode;

use crate::cli::{LoginArgs, ServerArg};
use crate::cloud::{self, CloudConfig, CloudError, Credentials, Secret, ServerSpec, StoreKind};
use crate::printer::Printer;
use crate::server::AppContext;

fn config(ctx: &AppContext) -> Result<CloudConfig, String> {
    match &ctx.cloud_error {
        Some(e) => Err(e.clone()),
        None => Ok(ctx.bridge.config().clone()),
    }
}

/// Run a blocking credential-store call (keychains block) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CloudError> + Send + 'static,
) -> Result<T, CloudError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CloudError::Credentials(e.to_string()))?
}

async fn open_store(kind: StoreKind) -> Result<Credentials, CloudError> {
    let dir = cloud::default_file_dir();
    blocking(move || Credentials::open(kind, &dir)).await
}

/// What a fresh connection reports, before it is closed: (server description, tool count).
async fn summarize(
    spec: &ServerSpec,
    connected: Result<cloud::Upstream, CloudError>,
) -> Result<(String, usize), CloudError> {
    let client = connected?;
    let described = cloud::describe_upstream(&client);
    let tools = cloud::list_upstream_tools(&client)
        .await
        .map_err(|reason| CloudError::Connect {
            url: spec.url.to_string(),
            reason,
        })?;
    let _ = client.cancel().await;
    Ok((described, tools.len()))
}

/// Connect with `key` and list tools: (server description, tool count).
async fn verify(spec: &ServerSpec, key: &Secret) -> Result<(String, usize), CloudError> {
    cloud::init_tls();
    let handler = cloud::UpstreamHandler::detached();
    summarize(
        spec,
        cloud::connect_upstream(&spec.url, Some(key), handler).await,
    )
    .await
}

pub async fn login(ctx: AppContext, a: LoginArgs) -> ExitCode {
    let mut printer = Printer::new();
    let cfg = match config(&ctx) {
        Ok(c) => c,
        Err(e) => {
            printer.error(&e);
            return ExitCode::from(2);
        }
    };
    let spec = match cfg.pick(a.server.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    if !a.api_key_stdin {
        return browser_login(cfg.credential_store, &spec, &mut printer).await;
    }
    let mut key = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut key) {
        printer.error(&format!(
            "failed to read the API key from standard input: {e}"
        ));
        return ExitCode::from(2);
    }
    let key = Secret::new(key.trim());
    if key.expose().is_empty() || key.expose().contains(char::is_whitespace) {
        printer.error("the API key on standard input is empty or contains whitespace");
        return ExitCode::from(2);
    }
    let store = match open_store(cfg.credential_store).await {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    // A key the server rejects is not stored; one for a server that is down is stored, so
    // the IDE connects once it is back.
    let verdict = verify(&spec, &key).await;
    if let Err(CloudError::Unauthorized { url }) = &verdict {
        printer.error(&format!(
            "{url} rejected the API key (HTTP 401); nothing was stored"
        ));
        return ExitCode::from(1);
    }
    let url = spec.url.clone();
    let described = store.describe().to_string();
    if let Err(e) = blocking(move || store.set(&url, &key)).await {
        printer.error(&e.to_string());
        return ExitCode::from(2);
    }
    match verdict {
        Ok((server, tools)) => {
            printer.text(&format!(
                "signed in to {} ({server}, {tools} tools); the key is in the {described}\n",
                spec.url
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.text(&format!("stored the key in the {described}, but {e}\n"));
            ExitCode::from(1)
        }
    }
}

/// `testrelay login URL` without a key: OAuth in the browser, then a check that the
/// server accepts the new token. Only the authorization URL is printed (to stderr).
async fn browser_login(kind: StoreKind, spec: &ServerSpec, printer: &mut Printer) -> ExitCode {
    let store = match open_store(kind).await {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let described = store.describe().to_string();
    let lock_dir = cloud::default_lock_dir(&cloud::default_file_dir());
    let oauth = cloud::OAuthStore::new(store.clone(), &spec.url, &lock_dir);
    let wait = cloud::login_timeout();
    if let Err(e) = cloud::sign_in(&spec.url, oauth.clone(), wait, |m| printer.note(m)).await {
        printer.error(&format!(
            "{e}\n  (to use an API key instead: `testrelay login {} --api-key-stdin < key.txt`)",
            spec.url
        ));
        return ExitCode::from(1);
    }
    // An API key stored earlier would win over the new sign-in; the user chose OAuth.
    let url = spec.url.clone();
    let _ = blocking(move || store.delete_kind(&url, cloud::CredentialKind::ApiKey)).await;
    let connected =
        cloud::connect_oauth(&spec.url, oauth, cloud::UpstreamHandler::detached()).await;
    let verdict = summarize(spec, connected).await;
    match verdict {
        Ok((server, tools)) => {
            printer.text(&format!(
                "signed in to {} with OAuth ({server}, {tools} tools); the tokens are in the {described}\n",
                spec.url
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.text(&format!(
                "signed in with OAuth and stored the tokens in the {described}, but {e}\n"
            ));
            ExitCode::from(1)
        }
    }
}

pub async fn logout(ctx: AppContext, a: ServerArg) -> ExitCode {
    let mut printer = Printer::new();
    let spec =
        match config(&ctx).and_then(|c| c.pick(a.server.as_deref()).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                printer.error(&e);
                return ExitCode::from(2);
            }
        };
    let kind = ctx.bridge.config().credential_store;
    let store = match open_store(kind).await {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let store = std::sync::Arc::new(store);
    // Revoke at the server first (it needs the stored tokens), then delete them here
    // whatever the server said: logging out never leaves the tokens behind.
    let revoked = cloud::revoke(store.clone(), &spec.url).await;
    let url = spec.url.clone();
    match blocking(move || store.delete(&url)).await {
        Ok(true) => printer.text(&format!(
            "removed the stored credential and client registration for {}\n",
            spec.url
        )),
        Ok(false) => printer.text(&format!("no credential was stored for {}\n", spec.url)),
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    }
    match revoked {
        cloud::Revocation::NothingStored => ExitCode::SUCCESS,
        cloud::Revocation::Revoked { endpoint } => {
            printer.text(&format!("revoked the sign-in at {endpoint}\n"));
            ExitCode::SUCCESS
        }
        cloud::Revocation::Unsupported => {
            printer.note(
                "the authorization server offers no token revocation: the tokens it issued stay valid until they expire",
            );
            ExitCode::SUCCESS
        }
        cloud::Revocation::Failed(why) => {
            printer.error(&format!(
                "could not revoke the sign-in at the server ({why}); the tokens are deleted here, but the server may accept them until they expire (you can also revoke testrelay's access in the service's account settings)"
            ));
            ExitCode::from(1)
        }
    }
}

pub async fn status(ctx: AppContext) -> ExitCode {
    let mut printer = Printer::new();
    if let Some(e) = &ctx.cloud_error {
        printer.error(e);
        return ExitCode::from(2);
    }
    if !ctx.bridge.configured() {
        printer.text("no cloud server configured: pass --server URL, set TESTRELAY_SERVER, or add [[server]] to the config file\n");
        return ExitCode::from(1);
    }
    let bridge = ctx.bridge.clone();
    let store = tokio::task::spawn_blocking(move || bridge.credential_store())
        .await
        .unwrap_or_default();
    let reports = ctx.bridge.report(true).await;
    let mut out = format!("credential store: {store}\n");
    let mut all_ok = true;
    for r in &reports {
        let ok = r.state == cloud::ConnState::Connected;
        all_ok &= ok;
        let mark = if ok { "✓" } else { "✗" };
        let state = serde_json::to_value(&r.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        out.push_str(&format!("{mark} {} {} ({state})", r.name, r.url));
        if let Some(s) = &r.server {
            out.push_str(&format!(": {s}, {} tools", r.tools));
        }
        match r.auth {
            Some(cloud::AuthStyle::Oauth) => out.push_str(", signed in with oauth"),
            Some(cloud::AuthStyle::ApiKey) => out.push_str(", signed in with an api key"),
            None => {}
        }
        out.push('\n');
        if let Some(c) = &r.credential {
            out.push_str(&format!("    credential: {c}\n"));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("    {e}\n"));
        }
        if let Some(n) = &r.next_step {
            out.push_str(&format!("    next: {n}\n"));
        }
    }
    printer.text(&out);
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
