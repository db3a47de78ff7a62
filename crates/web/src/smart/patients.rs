//! Whose record an app may be given: the patient context of a grant.
//!
//! A patient's own record. A proxy's people come from their grant: the RelatedPerson the
//! account is names the patient it is related to (`RelatedPerson.patient`); while that link
//! cannot be resolved (no RelatedPerson on the account, or one without a patient), the patient
//! the account itself is linked to, if any. Staff have no patient picker here: their apps use
//! `user/` scopes.

use serde_json::Value;
use store::accounts::{Account, Role};
use store::Store;

use crate::WebError;

/// A person whose record the app could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The Patient id.
    pub patient_id: String,
    /// The name on the record, for the picker (the id when there is none).
    pub label: String,
}

/// The people `account` may give an app access to, in a stable order.
pub async fn candidates(store: &dyn Store, account: &Account) -> Result<Vec<Candidate>, WebError> {
    let ids: Vec<String> = match account.role {
        Role::Patient => account.patient_id.iter().cloned().collect(),
        Role::Proxy => {
            let related = match &account.related_person_id {
                Some(id) => related_patient(store, id).await?,
                None => None,
            };
            related
                .or_else(|| account.patient_id.clone())
                .into_iter()
                .collect()
        }
        Role::Clinician | Role::Clerical | Role::Admin => Vec::new(),
    };
    let mut out = Vec::new();
    for patient_id in ids {
        let label = patient_name(store, &patient_id)
            .await?
            .unwrap_or_else(|| patient_id.clone());
        out.push(Candidate { patient_id, label });
    }
    Ok(out)
}

/// The Patient id a RelatedPerson's `patient` reference names, when it is a plain
/// `Patient/{id}` reference to this server.
async fn related_patient(
    store: &dyn Store,
    related_person_id: &str,
) -> Result<Option<String>, WebError> {
    let Some(version) = store.read("RelatedPerson", related_person_id).await? else {
        return Ok(None);
    };
    if version.deleted {
        return Ok(None);
    }
    let resource = version.parse()?;
    Ok(resource["patient"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| fhir::types::is_valid_id(id))
        .map(str::to_string))
}

/// The patient's name as the record gives it: `name[0].text`, else given names and family.
async fn patient_name(store: &dyn Store, patient_id: &str) -> Result<Option<String>, WebError> {
    let Some(version) = store.read("Patient", patient_id).await? else {
        return Ok(None);
    };
    if version.deleted {
        return Ok(None);
    }
    Ok(display_name(&version.parse()?))
}

fn display_name(patient: &Value) -> Option<String> {
    let name = patient["name"].as_array()?.first()?;
    if let Some(text) = name["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(text.trim().to_string());
    }
    let mut parts: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(family) = name["family"].as_str() {
        parts.push(family);
    }
    let joined = parts.join(" ");
    (!joined.trim().is_empty()).then(|| joined.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_name_is_its_text_or_given_names_then_family() {
        assert_eq!(
            display_name(&json!({"name": [{"text": " Amy Pond "}]})).as_deref(),
            Some("Amy Pond")
        );
        assert_eq!(
            display_name(&json!({"name": [{"given": ["Amelia", "Jessica"], "family": "Pond"}]}))
                .as_deref(),
            Some("Amelia Jessica Pond")
        );
        assert_eq!(display_name(&json!({"name": []})), None);
        assert_eq!(display_name(&json!({"id": "x"})), None);
        assert_eq!(display_name(&json!({"name": [{"text": "  "}]})), None);
    }
}
