//! The embedded R4 definition files.

pub const STRUCTURE_RESOURCES: &str = include_str!("../definitions/structure-resources.json");
pub const STRUCTURE_TYPES: &str = include_str!("../definitions/structure-types.json");
pub const SEARCH_PARAMETERS: &str = include_str!("../definitions/search-parameters.json");
pub const VALUESETS_REQUIRED: &str = include_str!("../definitions/valuesets-required.json");
pub const COMPARTMENT_PATIENT: &str =
    include_str!("../definitions/compartmentdefinition-patient.json");
