//! TCP wire format (placeholder while being written).
