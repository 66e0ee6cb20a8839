//! Store (todo).
