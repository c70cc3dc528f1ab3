//! Placeholder: filled in by the handoff work.
