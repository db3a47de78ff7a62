//! FHIR R4 for Portico: the resource types in scope, validation against the official structure
//! definitions, search-parameter definitions and index extraction, date ranges, and the small
//! resources the server itself produces (OperationOutcome, Bundle, CapabilityStatement).
//!
//! Every table here is derived from the R4 definitions embedded from `definitions/`.

pub mod compartment;
pub mod datetime;
pub mod definitions;
pub mod fhirpath;
pub mod index;
pub mod nhs_number;
pub mod outcome;
pub mod schema;
pub mod search_params;
pub mod types;
pub mod validate;

pub use outcome::{Issue, IssueType, OperationOutcome, Severity};
pub use types::{is_supported_type, RESOURCE_TYPES};
