//! Searches the import makes against the store, from its worker threads: the resource an
//! identifier or a `PUT Type?query` names (identity rule, step 2), and the target of a
//! conditional reference. Found targets are remembered (a Synthea export names the same few
//! practitioners and organisations in every patient's Bundle); "not found yet" is not, since the
//! target may be imported a moment later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::query::ParseOptions;
use store::{SearchQuery, Store, StoreError};

/// Most conditional references remembered; past it the memory starts over (it stays small
/// however large the import).
const CACHE_LIMIT: usize = 100_000;

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    None,
    One(String),
    Many,
}

/// Why a query cannot be run.
#[derive(Debug)]
pub enum LookupError {
    /// The query is not a valid search; the reason says why.
    Query(String),
    Store(StoreError),
}

/// The store, seen from a worker thread.
pub struct Resolver {
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Handle,
    found: Mutex<HashMap<String, String>>,
}

impl Resolver {
    pub fn new(store: Arc<dyn Store>, runtime: tokio::runtime::Handle) -> Self {
        Resolver {
            store,
            runtime,
            found: Mutex::new(HashMap::new()),
        }
    }

    /// Parses `query` (`a=b&c=d`, percent-encoded) as search criteria on `resource_type`.
    pub fn criteria(resource_type: &str, query: &str) -> Result<SearchQuery, LookupError> {
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode(k)?, decode(v)?));
        }
        let mut q = store::query::parse(resource_type, &params, &ParseOptions::default()).map_err(
            |issues| {
                LookupError::Query(
                    issues
                        .first()
                        .map(|i| i.diagnostics.clone())
                        .unwrap_or_else(|| "the query is not a valid search".into()),
                )
            },
        )?;
        if q.conditions.is_empty() {
            return Err(LookupError::Query(
                "the query has no search criteria; give e.g. identifier=system|value".into(),
            ));
        }
        q.count = 2;
        Ok(q)
    }

    /// The resources of `query` (at most two are looked for: one, or more than one).
    pub fn find(&self, query: &SearchQuery) -> Result<Found, StoreError> {
        let result = self.runtime.block_on(self.store.search(query))?;
        Ok(match result.matches.as_slice() {
            [] => Found::None,
            [one] => Found::One(one.id.clone()),
            _ => Found::Many,
        })
    }

    /// The target of a conditional reference (`Type?query`) as `Type/id`.
    pub fn reference(&self, reference: &str) -> Result<Found, LookupError> {
        if let Some(hit) = self.cached(reference) {
            return Ok(Found::One(hit));
        }
        let Some((resource_type, query)) = crate::references::conditional(reference) else {
            return Err(LookupError::Query("not a conditional reference".into()));
        };
        let q = Self::criteria(resource_type, query)?;
        let found = self.find(&q).map_err(LookupError::Store)?;
        if let Found::One(id) = &found {
            let target = format!("{resource_type}/{id}");
            self.remember(reference, &target);
            return Ok(Found::One(target));
        }
        Ok(found)
    }

    fn cached(&self, reference: &str) -> Option<String> {
        self.found
            .lock()
            .ok()
            .and_then(|m| m.get(reference).cloned())
    }

    fn remember(&self, reference: &str, target: &str) {
        if let Ok(mut m) = self.found.lock() {
            if m.len() >= CACHE_LIMIT {
                m.clear();
            }
            m.insert(reference.to_string(), target.to_string());
        }
    }
}

/// Percent-decoding of a query component (`+` is a space), as the FHIR REST API reads it.
fn decode(s: &str) -> Result<String, LookupError> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| LookupError::Query("the query is not UTF-8 once percent-decoded".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_are_parsed_as_searches() {
        let q = Resolver::criteria(
            "Patient",
            "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number|9000000009",
        )
        .expect("criteria");
        assert_eq!(q.conditions.len(), 1);
        assert_eq!(q.count, 2);
        assert!(matches!(
            Resolver::criteria("Patient", "nonsense=1"),
            Err(LookupError::Query(_))
        ));
        assert!(matches!(
            Resolver::criteria("Patient", "_count=3"),
            Err(LookupError::Query(_))
        ));
    }
}
