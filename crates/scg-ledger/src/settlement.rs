//! Settlement (todo).
