//! Every word the web pages show, in one place, so that a Welsh translation is one more value of
//! [`Text`] rather than a search through templates and handlers. Templates read the fields of
//! the `t` they are given; handlers pick messages from it too. Nothing here is formatted with
//! personal data: pages put the few values they show (a username, a count) beside the text.
//!
//! Wording follows the NHS design system's content guide: plain words, the person addressed as
//! "you", error messages that say what to do ("Enter your username"), not what went wrong.

use identity::password::Weakness;

/// The words of the pages in one language.
#[derive(Debug)]
pub struct Text {
    /// The `lang` attribute of every page.
    pub lang: &'static str,
    pub service_name: &'static str,
    pub skip_link: &'static str,
    pub title_separator: &'static str,
    /// Put before the title of a page that shows errors.
    pub error_title_prefix: &'static str,
    pub error_summary_title: &'static str,
    pub error_prefix: &'static str,
    pub footer: &'static str,
    pub nav_account: &'static str,
    pub nav_sign_out: &'static str,
    pub continue_button: &'static str,

    // Sign in (password step)
    pub sign_in_title: &'static str,
    pub sign_in_intro: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub sign_in_button: &'static str,
    pub enter_username: &'static str,
    pub enter_password: &'static str,
    /// The one answer for a wrong username, a wrong password, a locked or a disabled account.
    pub wrong_credentials: &'static str,
    pub no_account_yet: &'static str,
    pub register_link: &'static str,
    pub register_invitation_link: &'static str,
    pub signed_out: &'static str,

    // Second factor
    pub second_factor_title: &'static str,
    pub totp_label: &'static str,
    pub totp_hint: &'static str,
    pub totp_malformed: &'static str,
    pub totp_wrong: &'static str,
    pub totp_replayed: &'static str,
    pub recovery_summary: &'static str,
    pub recovery_label: &'static str,
    pub recovery_hint: &'static str,
    pub recovery_wrong: &'static str,
    pub enter_recovery_code: &'static str,
    pub verify_button: &'static str,
    pub use_recovery_button: &'static str,

    // TOTP set-up
    pub totp_setup_title: &'static str,
    pub totp_setup_required: &'static str,
    pub totp_setup_step_app: &'static str,
    pub totp_setup_step_scan: &'static str,
    pub totp_setup_secret_label: &'static str,
    pub totp_setup_uri_label: &'static str,
    pub totp_setup_confirm_label: &'static str,
    pub totp_setup_confirm_hint: &'static str,
    pub totp_setup_button: &'static str,
    pub totp_setup_expired: &'static str,
    pub recovery_codes_title: &'static str,
    pub recovery_codes_intro: &'static str,
    pub recovery_codes_once: &'static str,

    // Account
    pub account_title: &'static str,
    pub account_username: &'static str,
    pub account_role: &'static str,
    pub account_identity_level: &'static str,
    pub account_second_factor: &'static str,
    pub account_second_factor_on: &'static str,
    pub account_recovery_left: &'static str,
    pub account_security_heading: &'static str,
    pub account_replace_totp: &'static str,
    pub account_change_password: &'static str,
    pub account_sessions_heading: &'static str,
    pub account_sessions_hint: &'static str,
    pub sign_out_everywhere_button: &'static str,
    pub signed_out_elsewhere: &'static str,
    pub password_changed: &'static str,
    pub totp_replaced: &'static str,
    pub role_patient: &'static str,
    pub role_proxy: &'static str,
    pub role_clinician: &'static str,
    pub role_clerical: &'static str,
    pub role_admin: &'static str,

    // Change password
    pub password_title: &'static str,
    pub current_password_label: &'static str,
    pub new_password_label: &'static str,
    pub new_password_hint: &'static str,
    pub change_password_button: &'static str,
    pub enter_current_password: &'static str,
    pub current_password_wrong: &'static str,
    pub enter_new_password: &'static str,

    // Registration
    pub register_title: &'static str,
    pub register_intro: &'static str,
    pub nhs_number_label: &'static str,
    pub nhs_number_hint: &'static str,
    pub date_of_birth_legend: &'static str,
    pub date_of_birth_hint: &'static str,
    pub day_label: &'static str,
    pub month_label: &'static str,
    pub year_label: &'static str,
    pub postcode_label: &'static str,
    pub choose_username_label: &'static str,
    pub choose_username_hint: &'static str,
    pub choose_password_label: &'static str,
    pub create_account_button: &'static str,
    pub enter_nhs_number: &'static str,
    pub nhs_number_invalid: &'static str,
    pub enter_date_of_birth: &'static str,
    pub date_of_birth_invalid: &'static str,
    pub enter_postcode: &'static str,
    pub username_invalid: &'static str,
    pub username_taken: &'static str,
    /// The one answer when the details do not match a record (or match one with an account).
    pub details_not_matched: &'static str,

    // Invitation
    pub invitation_title: &'static str,
    pub invitation_intro: &'static str,
    pub invitation_code_label: &'static str,
    pub invitation_code_hint: &'static str,
    pub enter_invitation_code: &'static str,
    /// The one answer for an unknown, used, expired or exhausted code, or a wrong date of birth.
    pub invitation_not_accepted: &'static str,

    // Passkeys
    pub passkeys_title: &'static str,
    pub passkeys_intro: &'static str,
    pub passkeys_yours_heading: &'static str,
    pub passkeys_none: &'static str,
    pub passkey_name_label: &'static str,
    pub passkey_name_hint: &'static str,
    pub passkey_added_label: &'static str,
    pub passkey_last_used_label: &'static str,
    pub passkey_never_used: &'static str,
    pub passkey_remove_button: &'static str,
    pub passkey_add_heading: &'static str,
    pub passkey_add_button: &'static str,
    /// Put before the date to name a passkey the person did not name: "Passkey added 1 April 2025".
    pub passkey_default_name: &'static str,
    pub passkeys_unsupported: &'static str,
    /// Passkeys are off on this server (its address is not a domain name).
    pub passkeys_unavailable: &'static str,
    pub passkey_sign_in_again: &'static str,
    pub passkey_added: &'static str,
    pub passkey_removed: &'static str,
    pub passkey_add_failed: &'static str,
    pub passkey_add_cancelled: &'static str,
    pub passkey_already_added: &'static str,
    pub passkey_failed: &'static str,
    pub passkey_signed_out: &'static str,
    pub passkey_sign_in_title: &'static str,
    pub passkey_sign_in_intro: &'static str,
    pub passkey_sign_in_button: &'static str,
    pub passkey_sign_in_link: &'static str,
    pub passkey_sign_in_unsupported: &'static str,
    pub passkey_use_password_link: &'static str,
    /// The one answer for every refused passkey sign-in.
    pub passkey_sign_in_failed: &'static str,
    pub passkey_sign_in_cancelled: &'static str,
    pub account_passkeys_hint: &'static str,
    pub account_manage_passkeys: &'static str,

    // Failures
    pub forbidden_title: &'static str,
    pub forbidden_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub too_many_title: &'static str,
    pub too_many_body: &'static str,
    pub problem_title: &'static str,
    pub problem_body: &'static str,
    pub reference_label: &'static str,

    // NHS login (NHS login's own words for the button: "Continue to NHS login")
    pub nhs_login_heading: &'static str,
    pub nhs_login_intro: &'static str,
    pub nhs_login_button: &'static str,
    pub nhs_login_try_again: &'static str,
    pub nhs_login_use_password: &'static str,
    pub nhs_login_unavailable_title: &'static str,
    pub nhs_login_unavailable_body: &'static str,
    pub nhs_login_cancelled_title: &'static str,
    pub nhs_login_cancelled_body: &'static str,
    pub nhs_login_expired_title: &'static str,
    pub nhs_login_expired_body: &'static str,
    pub nhs_login_failed_title: &'static str,
    pub nhs_login_failed_body: &'static str,
    pub nhs_login_no_record_title: &'static str,
    pub nhs_login_no_record_body: &'static str,
    pub nhs_login_has_account_title: &'static str,
    pub nhs_login_has_account_body: &'static str,
    pub nhs_login_refused_title: &'static str,
    pub nhs_login_refused_body: &'static str,

    /// SMART on FHIR apps: the consent screen and connected apps ([`crate::smart`]).
    pub smart: SmartText,

    /// "Who has looked at your record" ([`crate::access_log`]).
    pub access_log: crate::access_log::AccessLogText,
}

/// The words of the consent screen and the connected apps page. Scope sentences are made from
/// `{what}` (a kind of data, [`SmartText::resource_label`], or `everything`) and `{whose}`.
#[derive(Debug)]
pub struct SmartText {
    pub consent_title: &'static str,
    /// `{app}` is the app's registered name.
    pub consent_heading: &'static str,
    pub consent_can: &'static str,
    pub consent_dropped: &'static str,
    pub consent_whose_patient: &'static str,
    pub consent_whose_staff: &'static str,
    pub consent_choose_person: &'static str,
    pub consent_manage: &'static str,
    pub consent_allow_button: &'static str,
    pub consent_deny_button: &'static str,
    pub scope_identity: &'static str,
    pub scope_offline: &'static str,
    pub scope_read: &'static str,
    pub scope_write: &'static str,
    pub scope_delete: &'static str,
    pub scope_everything: &'static str,
    pub scope_whose_patient: &'static str,
    pub scope_whose_user: &'static str,
    pub apps_title: &'static str,
    pub apps_intro: &'static str,
    pub apps_none: &'static str,
    pub apps_connected_on: &'static str,
    pub apps_can: &'static str,
    pub apps_revoke_button: &'static str,
    pub apps_revoked: &'static str,
    pub apps_link: &'static str,
    pub apps_unregistered: &'static str,
    pub oauth_error_title: &'static str,
    pub oauth_unknown_client: &'static str,
    pub oauth_bad_redirect: &'static str,
    pub oauth_malformed: &'static str,
}

/// British English: the only language so far.
pub static EN_GB: Text = Text {
    lang: "en-GB",
    service_name: "Portico",
    skip_link: "Skip to main content",
    title_separator: " – ",
    error_title_prefix: "Error: ",
    error_summary_title: "There is a problem",
    error_prefix: "Error:",
    footer: "Portico: your health record, appointments and letters.",
    nav_account: "Your account",
    nav_sign_out: "Sign out",
    continue_button: "Continue",

    sign_in_title: "Sign in",
    sign_in_intro: "Sign in with the username and password you chose when you created your account.",
    username_label: "Username",
    password_label: "Password",
    sign_in_button: "Sign in",
    enter_username: "Enter your username",
    enter_password: "Enter your password",
    wrong_credentials: "Enter a correct username and password",
    no_account_yet: "If you do not have an account yet:",
    register_link: "create an account with your NHS number",
    register_invitation_link: "create an account with an invitation code",
    signed_out: "You have signed out.",

    second_factor_title: "Enter your security code",
    totp_label: "Security code",
    totp_hint: "Enter the 6-digit code your authenticator app shows now.",
    totp_malformed: "Enter the 6-digit code from your authenticator app",
    totp_wrong: "Enter the code your authenticator app shows now",
    totp_replayed: "That code has already been used. Wait for the next code and enter it",
    recovery_summary: "I cannot use my authenticator app",
    recovery_label: "Recovery code",
    recovery_hint: "Enter one of the recovery codes you saved when you set up your authenticator app, for example k7qf-2m9x-p4ht. Each code works once.",
    recovery_wrong: "Enter a recovery code you have not used before",
    enter_recovery_code: "Enter a recovery code",
    verify_button: "Continue",
    use_recovery_button: "Use recovery code",

    totp_setup_title: "Set up your authenticator app",
    totp_setup_required: "Your account needs a second way to prove it is you. Set up an authenticator app to continue.",
    totp_setup_step_app: "Open an authenticator app on your phone, for example the one that came with it, and add an account.",
    totp_setup_step_scan: "Scan the QR code, or type in the key below.",
    totp_setup_secret_label: "Key",
    totp_setup_uri_label: "Set-up link",
    totp_setup_confirm_label: "Security code",
    totp_setup_confirm_hint: "Enter the 6-digit code the app now shows for Portico.",
    totp_setup_button: "Confirm",
    totp_setup_expired: "Start the set-up again",
    recovery_codes_title: "Save your recovery codes",
    recovery_codes_intro: "If you lose your phone, each of these codes lets you sign in once. Print them or write them down and keep them somewhere safe.",
    recovery_codes_once: "We will not show these codes again.",

    account_title: "Your account",
    account_username: "Username",
    account_role: "Account type",
    account_identity_level: "Identity checked",
    account_second_factor: "Authenticator app",
    account_second_factor_on: "Set up",
    account_recovery_left: "Recovery codes left",
    account_security_heading: "Signing in",
    account_replace_totp: "Set up a new authenticator app",
    account_change_password: "Change your password",
    account_sessions_heading: "Where you are signed in",
    account_sessions_hint: "If you signed in on a device you no longer use, or you think someone else has signed in as you, sign out everywhere. You will stay signed in here.",
    sign_out_everywhere_button: "Sign out everywhere else",
    signed_out_elsewhere: "You have been signed out on every other device.",
    password_changed: "Your password has been changed. You have been signed out on every other device.",
    totp_replaced: "Your authenticator app has been set up.",
    role_patient: "Patient",
    role_proxy: "Acting for someone else",
    role_clinician: "Clinician",
    role_clerical: "Clerical staff",
    role_admin: "Administrator",

    password_title: "Change your password",
    current_password_label: "Current password",
    new_password_label: "New password",
    new_password_hint: "Use at least 12 characters. A few unrelated words make a long password that is easy to remember.",
    change_password_button: "Change password",
    enter_current_password: "Enter your current password",
    current_password_wrong: "Enter your correct current password",
    enter_new_password: "Enter a new password",

    register_title: "Create your account",
    register_intro: "We check your details against your health record. Enter them exactly as your GP surgery has them.",
    nhs_number_label: "NHS number",
    nhs_number_hint: "This is a 10 digit number, like 999 123 4567. You can find it on an NHS letter or in the NHS App.",
    date_of_birth_legend: "Date of birth",
    date_of_birth_hint: "For example, 15 3 1984",
    day_label: "Day",
    month_label: "Month",
    year_label: "Year",
    postcode_label: "Postcode",
    choose_username_label: "Choose a username",
    choose_username_hint: "3 to 64 characters: letters, numbers, dots, dashes, underscores or an email address.",
    choose_password_label: "Choose a password",
    create_account_button: "Create account",
    enter_nhs_number: "Enter your NHS number",
    nhs_number_invalid: "Enter a valid NHS number, like 999 123 4567",
    enter_date_of_birth: "Enter your date of birth",
    date_of_birth_invalid: "Date of birth must be a real date in the past",
    enter_postcode: "Enter your postcode",
    username_invalid: "Username must be 3 to 64 characters: letters, numbers, dots, dashes, underscores or @",
    username_taken: "That username is taken. Choose another",
    details_not_matched: "We could not create an account with these details. Check them and try again, or contact your GP surgery",

    invitation_title: "Create your account with an invitation code",
    invitation_intro: "Enter the code from the letter or text message we sent you.",
    invitation_code_label: "Invitation code",
    invitation_code_hint: "12 letters and numbers, like 7KQF-2M9X-P4HT",
    enter_invitation_code: "Enter your invitation code",
    invitation_not_accepted: "We could not accept this code with these details. Check them and try again, or ask for a new code",

    passkeys_title: "Passkeys",
    passkeys_intro: "A passkey lets you sign in with your fingerprint, face, screen lock or security key instead of your password and security code. It is kept on your device or in your password manager and works only on this service, so nobody can trick you into using it on a fake website.",
    passkeys_yours_heading: "Your passkeys",
    passkeys_none: "You have not added a passkey.",
    passkey_name_label: "Name",
    passkey_name_hint: "Optional. A name to recognise it by, for example My phone.",
    passkey_added_label: "Added",
    passkey_last_used_label: "Last used",
    passkey_never_used: "Not used yet",
    passkey_remove_button: "Remove",
    passkey_add_heading: "Add a passkey",
    passkey_add_button: "Add a passkey",
    passkey_default_name: "Passkey added",
    passkeys_unsupported: "To add a passkey, use a browser that supports passkeys, with JavaScript turned on.",
    passkeys_unavailable: "Passkeys cannot be used on this service.",
    passkey_sign_in_again: "To add a passkey, sign out and sign in again. For your security, you can only add one in the 15 minutes after signing in.",
    passkey_added: "Your passkey has been added. You can use it to sign in.",
    passkey_removed: "Your passkey has been removed.",
    passkey_add_failed: "Your passkey could not be added. Try again",
    passkey_add_cancelled: "No passkey was added. Try again when you are ready",
    passkey_already_added: "This passkey has already been added",
    passkey_failed: "Something went wrong with the passkey. Reload the page and try again",
    passkey_signed_out: "You have been signed out. Sign in again to continue",
    passkey_sign_in_title: "Sign in with a passkey",
    passkey_sign_in_intro: "Use your fingerprint, face, screen lock or security key.",
    passkey_sign_in_button: "Sign in with a passkey",
    passkey_sign_in_link: "Sign in with a passkey instead",
    passkey_sign_in_unsupported: "Your browser cannot use passkeys here.",
    passkey_use_password_link: "Sign in with your username and password",
    passkey_sign_in_failed: "We could not sign you in with this passkey. Try again, or sign in with your username and password",
    passkey_sign_in_cancelled: "No passkey was used. Try again, or sign in with your username and password",
    account_passkeys_hint: "Sign in with your fingerprint, face or screen lock instead of your password.",
    account_manage_passkeys: "Add or remove passkeys",

    forbidden_title: "This form has expired",
    forbidden_body: "For your security, the form you sent could not be accepted. Go back, reload the page and try again. Nothing was changed.",
    not_found_title: "Page not found",
    not_found_body: "If you typed the web address, check it is correct.",
    too_many_title: "Too many attempts",
    too_many_body: "There have been too many attempts. Wait a few minutes, then try again.",
    problem_title: "Sorry, there is a problem with the service",
    problem_body: "Try again later. If you contact us about this, quote the reference below.",
    reference_label: "Reference",

    nhs_login_heading: "Or use NHS login",
    nhs_login_intro: "If you have an NHS login, the one you use for the NHS App, you can use it to sign in here.",
    nhs_login_button: "Continue to NHS login",
    nhs_login_try_again: "Try again",
    nhs_login_use_password: "Sign in with a username and password instead",
    nhs_login_unavailable_title: "NHS login is not available at the moment",
    nhs_login_unavailable_body: "Try again in a few minutes, or sign in with your username and password.",
    nhs_login_cancelled_title: "You have not been signed in",
    nhs_login_cancelled_body: "NHS login did not sign you in. This happens if you cancel, or if you need to sign in to NHS login again. You can try again.",
    nhs_login_expired_title: "Your sign-in could not be finished",
    nhs_login_expired_body: "This happens if signing in took longer than 30 minutes, or was started in another window or browser. Try again.",
    nhs_login_failed_title: "Sorry, we could not sign you in with NHS login",
    nhs_login_failed_body: "Something went wrong between us and NHS login. Try again. If it keeps happening, sign in with your username and password.",
    nhs_login_no_record_title: "We could not find your record",
    nhs_login_no_record_body: "You signed in to NHS login, but we do not have a health record with your NHS number. Contact your GP surgery or hospital to check they have your details.",
    nhs_login_has_account_title: "You already have an account",
    nhs_login_has_account_body: "There is already an account for your NHS number. Sign in with its username and password. To use NHS login here instead, NHS login needs to have fully checked your identity first: you can do this in the NHS App.",
    nhs_login_refused_title: "We could not sign you in",
    nhs_login_refused_body: "Your NHS login cannot be used with the account we have for you. Contact your GP surgery for help.",

    access_log: crate::access_log::EN_GB,

    smart: SmartText {
        consent_title: "Connect an app",
        consent_heading: "{app} wants to use your Portico account",
        consent_can: "If you allow it, it will be able to:",
        consent_dropped: "It also asked for access that your account cannot give. It will not get:",
        consent_whose_patient: "It will use your own health record.",
        consent_whose_staff: "It will act as you, and reach only what you can see in Portico.",
        consent_choose_person: "Whose health record should it use?",
        consent_manage: "You can disconnect it at any time from your account, under Connected apps.",
        consent_allow_button: "Allow",
        consent_deny_button: "Do not allow",
        scope_identity: "Know who you are",
        scope_offline: "Stay connected when you are not using it, until you disconnect it",
        scope_read: "See {what} in {whose}",
        scope_write: "Add and change {what} in {whose}",
        scope_delete: "Delete {what} from {whose}",
        scope_everything: "everything",
        scope_whose_patient: "the health record",
        scope_whose_user: "the records you can see",
        apps_title: "Connected apps",
        apps_intro: "These apps can use your account. Disconnect an app you no longer use or do not recognise: it loses access straight away.",
        apps_none: "You have not connected any apps.",
        apps_connected_on: "Connected on",
        apps_can: "It can:",
        apps_revoke_button: "Disconnect",
        apps_revoked: "The app has been disconnected. It can no longer use your account.",
        apps_link: "See and disconnect the apps that use your account",
        apps_unregistered: "An app that is no longer registered",
        oauth_error_title: "This app could not connect",
        oauth_unknown_client: "The app is not registered with Portico. Contact the people who make the app.",
        oauth_bad_redirect: "The app gave an address to return to that is not registered for it, so you have not been sent back to it. Contact the people who make the app.",
        oauth_malformed: "The app's request could not be understood. Contact the people who make the app.",
    },
};

/// The words for the current request (only British English so far).
pub fn current() -> &'static Text {
    &EN_GB
}

impl Text {
    /// What to tell a person whose new password breaks a rule.
    pub fn weakness(&self, weakness: Weakness) -> &'static str {
        match weakness {
            Weakness::TooShort => "Use at least 12 characters. A few unrelated words make a long password that is easy to remember",
            Weakness::TooLong => "Use at most 128 characters",
            Weakness::Common => "This password is too common: it appears in lists of breached passwords. Choose another",
            Weakness::CommonWithAdditions => "This password is a common password with numbers or symbols added, which attackers try early. Choose another",
            Weakness::ContainsPersonalInfo => "Do not use your name or username in your password",
            Weakness::Repetitive => "Avoid repeated characters or words, such as aaaa or abcabc",
            Weakness::Sequence => "Avoid sequences such as abcd, 1234 or qwerty",
        }
    }

    /// The name of an account's role as the person sees it.
    pub fn role(&self, role: store::accounts::Role) -> &'static str {
        use store::accounts::Role;
        match role {
            Role::Patient => self.role_patient,
            Role::Proxy => self.role_proxy,
            Role::Clinician => self.role_clinician,
            Role::Clerical => self.role_clerical,
            Role::Admin => self.role_admin,
        }
    }

    /// `"{title} – Portico"`, or `"Error: {title} – Portico"` when the page shows errors.
    pub fn page_title(&self, title: &str, has_errors: bool) -> String {
        let prefix = if has_errors {
            self.error_title_prefix
        } else {
            ""
        };
        format!(
            "{prefix}{title}{}{}",
            self.title_separator, self.service_name
        )
    }
}

impl SmartText {
    /// A kind of data as a person would name it; other types by their FHIR name.
    pub fn resource_label<'a>(&self, resource_type: &'a str) -> &'a str {
        match resource_type {
            "Patient" => "personal details",
            "Observation" => "test results and measurements",
            "DiagnosticReport" => "test reports",
            "Condition" => "conditions and problems",
            "AllergyIntolerance" => "allergies",
            "MedicationRequest" => "prescriptions",
            "MedicationStatement" => "medicines",
            "Immunization" => "vaccinations",
            "Appointment" => "appointments",
            "Encounter" => "visits and admissions",
            "DocumentReference" => "letters and documents",
            "Procedure" => "procedures",
            "ServiceRequest" => "referrals",
            "QuestionnaireResponse" => "questionnaire answers",
            "Communication" => "messages",
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_name_the_page_then_the_service_and_errors_come_first() {
        assert_eq!(EN_GB.page_title("Sign in", false), "Sign in – Portico");
        assert_eq!(
            EN_GB.page_title("Sign in", true),
            "Error: Sign in – Portico"
        );
    }

    #[test]
    fn every_weakness_has_its_own_message() {
        let all = [
            Weakness::TooShort,
            Weakness::TooLong,
            Weakness::Common,
            Weakness::CommonWithAdditions,
            Weakness::ContainsPersonalInfo,
            Weakness::Repetitive,
            Weakness::Sequence,
        ];
        let messages: std::collections::HashSet<&str> =
            all.iter().map(|w| EN_GB.weakness(*w)).collect();
        assert_eq!(messages.len(), all.len());
    }
}
