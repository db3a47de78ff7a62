//! The subset of FHIRPath that the R4 search-parameter expressions of the types in scope use.
