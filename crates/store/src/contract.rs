//! The contract every backend must pass (filled in by the contract-suite work).
