//! Who may see and who may act.
//!
//! Without a password the dashboard is open to whoever reaches the listener (loopback by default)
//! and read-only. With a password, every page's data and `/metrics` need a session (a cookie set
//! by `POST /api/login`) or `Authorization: Bearer <password>`. Actions need actions enabled (which
//! needs a password), a session or bearer, and — for a cookie session, which a browser sends by
//! itself — the CSRF token in the `X-CSRF-Token` header: another site's page can make the browser
//! send the cookie, but it cannot read the token (`GET /api/session` is same-origin only).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, Shared};

/// The session cookie's name.
const COOKIE: &str = "zrq_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The dashboard's access rules and secrets (made at start-up, kept in memory: a restart signs
/// everyone out).
#[derive(Debug)]
pub struct Auth {
    password: Option<String>,
    actions: bool,
    session: String,
    csrf: String,
}

impl Auth {
    /// Rules for `password` (none: open and read-only) and `actions` (refused without a
    /// password, so that no one can act on queues through an unprotected listener).
    pub fn new(password: Option<String>, actions: bool) -> Result<Auth, String> {
        let password = password.filter(|p| !p.is_empty());
        if actions && password.is_none() {
            return Err(
                "actions need a password: give --password (or ZRQ_DASHBOARD_PASSWORD), or leave \
                 out --actions for a read-only dashboard"
                    .into(),
            );
        }
        Ok(Auth {
            password,
            actions,
            session: secret(),
            csrf: secret(),
        })
    }

    /// Whether the request may read: no password, or a session cookie, or the bearer password.
    pub fn may_read(&self, headers: &HeaderMap) -> bool {
        self.password.is_none() || self.has_session(headers) || self.has_bearer(headers)
    }

    /// The request may read, or the error to reply with.
    pub(super) fn check_read(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.may_read(headers) {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "sign in first"))
        }
    }

    /// The request may act, or the error to reply with.
    pub(super) fn check_action(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.actions {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this dashboard is read-only (start it with --actions and a password)",
            ));
        }
        if self.has_bearer(headers) {
            return Ok(());
        }
        if !self.has_session(headers) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "sign in first"));
        }
        let token = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if same(token, &self.csrf) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (X-CSRF-Token)",
            ))
        }
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && same(value, &self.session))
    }

    fn has_bearer(&self, headers: &HeaderMap) -> bool {
        let Some(password) = &self.password else {
            return false;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given, password))
    }
}

/// 256 random bits as hex (two v4 UUIDs: the operating system's random source).
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares secrets in time independent of where they differ.
fn same(given: &str, secret: &str) -> bool {
    given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// What the page needs to know about its visitor.
#[derive(Serialize)]
pub struct Session {
    /// Whether a password protects the dashboard.
    password: bool,
    /// Whether the visitor may read (no password, or signed in).
    signed_in: bool,
    /// Whether actions are enabled (the visitor still needs to be signed in).
    actions: bool,
    /// The CSRF token to send with actions, once signed in.
    csrf: Option<String>,
}

/// `GET /api/session`.
pub async fn session(State(app): State<Shared>, headers: HeaderMap) -> Json<Session> {
    let auth = &app.auth;
    let signed_in = auth.may_read(&headers);
    Json(Session {
        password: auth.password.is_some(),
        signed_in,
        actions: auth.actions,
        csrf: (signed_in && auth.actions).then(|| auth.csrf.clone()),
    })
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
pub struct Login {
    password: String,
}

/// `POST /api/login` (JSON, which a form on another site cannot send): sets the session cookie
/// when the password is right.
pub async fn login(State(app): State<Shared>, Json(login): Json<Login>) -> Response {
    let auth = &app.auth;
    match &auth.password {
        Some(password) if same(&login.password, password) => {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                auth.session
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => (
                    [(header::SET_COOKIE, value)],
                    Json(serde_json::json!({ "ok": true })),
                )
                    .into_response(),
                Err(e) => {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong password").into_response(),
        None => {
            ApiError::new(StatusCode::BAD_REQUEST, "this dashboard has no password").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn actions_need_a_password() {
        assert!(Auth::new(None, true).is_err());
        assert!(Auth::new(Some(String::new()), true).is_err());
        assert!(Auth::new(Some("pw".into()), true).is_ok());
        assert!(Auth::new(None, false).is_ok());
    }

    #[test]
    fn who_may_read_and_act() {
        let open = Auth::new(None, false).unwrap();
        let guarded = Auth::new(Some("pw".into()), true).unwrap();
        let cookie = format!("other=1; {COOKIE}={}", guarded.session);
        let nothing = headers(&[]);
        let session = headers(&[("cookie", &cookie)]);
        let session_csrf = headers(&[("cookie", &cookie), (CSRF_HEADER, &guarded.csrf)]);
        let session_bad_csrf = headers(&[("cookie", &cookie), (CSRF_HEADER, "nope")]);
        let csrf_only = headers(&[(CSRF_HEADER, &guarded.csrf)]);
        let bearer = headers(&[("authorization", "Bearer pw")]);
        let bad_bearer = headers(&[("authorization", "Bearer pw2")]);
        let status = |r: Result<(), ApiError>| r.err().map(|e| e.status.as_u16());
        // (auth, headers, may read, action outcome: None = allowed, else the status)
        let cases: [(&Auth, &HeaderMap, bool, Option<u16>); 9] = [
            (&open, &nothing, true, Some(403)),
            (&open, &bearer, true, Some(403)),
            (&guarded, &nothing, false, Some(401)),
            (&guarded, &session, true, Some(403)),
            (&guarded, &session_bad_csrf, true, Some(403)),
            (&guarded, &session_csrf, true, None),
            (&guarded, &csrf_only, false, Some(401)),
            (&guarded, &bearer, true, None),
            (&guarded, &bad_bearer, false, Some(401)),
        ];
        for (i, (auth, headers, read, act)) in cases.into_iter().enumerate() {
            assert_eq!(auth.may_read(headers), read, "case {i}");
            assert_eq!(status(auth.check_action(headers)), act, "case {i}");
        }
    }
}
