//! Numerical kernels shared by the agents of scg-ev and scg-home: today the interior-point
//! method [`qp`] for diagonal quadratic programs with bounds and coupling rows (its sparse
//! system factorised by `clarabel::qdldl`, the one dependency).
//!
//! Pure computation on slices: it must never do I/O, draw randomness, panic on any input or
//! know the domain (vehicles, tanks, prices) of the problems it solves.

pub mod qp;
