//! The policy's rules, one test per rule, and its properties; one test binary.

mod admin;
mod anonymous;
mod patient;
mod properties;
mod proxy;
mod scopes;
mod shape;
mod staff;
mod support;
mod system;
