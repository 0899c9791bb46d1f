//! Mock server (work in progress).
