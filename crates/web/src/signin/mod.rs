//! Web sign-in for patients, proxies and staff: password then a second factor (TOTP or a
//! recovery code), registration of patients (NHS number, date of birth and postcode checked
//! against the record, or an invitation code), the account page, and signing out.
//!
//! Every account needs a second factor: one without it is sent, right after the password step,
//! to set up an authenticator app, and has no access before that is done. Every sign-in event
//! (success, failure, lockout, sign-out, sign-out everywhere, password or authenticator change,
//! registration) leaves an audit record before the answer is sent ([`audit`]).
//!
//! Routes (all HTML, behind [`crate::ui::headers::security_headers`]):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | to the account page when signed in, else to sign-in |
//! | `GET/POST /login` | username and password ([`password`]) |
//! | `GET/POST /login/second-factor` | TOTP code or recovery code ([`second_factor`]) |
//! | `POST /logout` | ends this session |
//! | `GET /account` | who you are, security settings ([`account`]) |
//! | `GET/POST /account/totp` | set up or replace the authenticator app ([`totp`]) |
//! | `GET/POST /account/password` | change the password |
//! | `POST /account/sign-out-everywhere` | ends every other session (this one is kept) |
//! | `GET/POST /register` | patient registration by NHS number ([`register`]) |
//! | `GET/POST /register/invitation` | patient registration by invitation code ([`invitation`]) |
//! | `GET /login/nhs`, `GET /login/nhs/callback` | sign-in with NHS login, when configured ([`nhs_login`]) |

pub mod account;
pub mod argon;
pub mod audit;
pub mod date_of_birth;
pub mod invitation;
pub mod limits;
pub mod next;
pub mod nhs_login;
pub mod password;
pub mod provision;
pub mod register;
pub mod second_factor;
pub mod totp;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub const LOGIN_PATH: &str = "/login";
pub const LOGOUT_PATH: &str = "/logout";
pub const SECOND_FACTOR_PATH: &str = "/login/second-factor";
pub const ACCOUNT_PATH: &str = "/account";
pub const TOTP_PATH: &str = "/account/totp";
pub const PASSWORD_PATH: &str = "/account/password";
pub const SIGN_OUT_EVERYWHERE_PATH: &str = "/account/sign-out-everywhere";
pub const REGISTER_PATH: &str = "/register";
pub const INVITATION_PATH: &str = "/register/invitation";

/// The sign-in routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route(LOGIN_PATH, get(password::show).post(password::submit))
        .route(LOGOUT_PATH, post(password::logout))
        .route(
            SECOND_FACTOR_PATH,
            get(second_factor::show).post(second_factor::submit),
        )
        .route(ACCOUNT_PATH, get(account::show))
        .route(TOTP_PATH, get(totp::show).post(totp::submit))
        .route(
            PASSWORD_PATH,
            get(account::show_password).post(account::change_password),
        )
        .route(SIGN_OUT_EVERYWHERE_PATH, post(account::sign_out_everywhere))
        .route(REGISTER_PATH, get(register::show).post(register::submit))
        .route(
            INVITATION_PATH,
            get(invitation::show).post(invitation::submit),
        )
}
