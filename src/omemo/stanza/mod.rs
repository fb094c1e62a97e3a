//! OMEMO stanza elements (placeholder: being written).
