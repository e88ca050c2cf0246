//! Node setup (placeholder)
