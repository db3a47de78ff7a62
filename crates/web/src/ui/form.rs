//! Form errors as the NHS design system shows them: a summary at the top of the form linking to
//! each field that needs attention, and the same message next to the field.

/// One problem with one field. `field` is the id of the input the summary links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

/// The problems of one submitted form, in the order of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Errors {
        Errors::default()
    }

    /// Adds a problem, unless the field has one already (the first, most basic, is shown).
    pub fn add(&mut self, field: &'static str, message: &'static str) {
        if self.for_field(field).is_none() {
            self.0.push(FieldError { field, message });
        }
    }

    /// Errors of one problem.
    pub fn one(field: &'static str, message: &'static str) -> Errors {
        let mut errors = Errors::new();
        errors.add(field, message);
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        !self.0.is_empty()
    }

    /// The message to show beside `field`.
    pub fn for_field(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.message)
    }

    pub fn items(&self) -> &[FieldError] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_problem_of_a_field_is_kept_in_field_order() {
        let mut errors = Errors::new();
        errors.add("username", "Enter your username");
        errors.add("password", "Enter your password");
        errors.add("username", "another");
        assert_eq!(errors.items().len(), 2);
        assert_eq!(errors.for_field("username"), Some("Enter your username"));
        assert_eq!(errors.items()[1].field, "password");
        assert_eq!(errors.for_field("code"), None);
    }
}
