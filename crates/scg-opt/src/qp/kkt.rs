//! The sparse Newton system of [`super`] for problems with many coupling rows: a reduced KKT
//! system, ordered once (AMD) and factorised `L·D·Lᵀ` numerically each iteration by
//! `clarabel::qdldl`.
//!
//! Why reduced KKT and not the normal equations alone: a variable in many rows (a plan's peak
//! variable is in every step's peak row) makes `R·D⁻¹·Rᵀ` dense among those rows. Such
//! "dense" columns stay unknowns of the system,
//! `[D_d  R_dᵀ; R_d  −(R_s·D_s⁻¹·R_sᵀ + Σ)]`, quasi-definite, while every other variable is
//! eliminated into the rows' block as in the dense method; the rows' block is then sparse
//! (a step's rows meet only that step's variables, a vehicle's rows only its steps').
//!
//! It must never allocate after [`SparseKkt::new`], nor take a system larger than
//! [`MAX_UNKNOWNS`] unknowns or whose factor has more than [`MAX_FACTOR_NONZEROS`] entries
//! (memory stays bounded: the caller falls back to a general solver).

use super::Problem;
use clarabel::algebra::CscMatrix;
use clarabel::qdldl::{QDLDLFactorisation, QDLDLSettings};

/// A column in more coupling rows than this stays an unknown of the system (a step's
/// power variable is in a handful of rows, a peak variable in every step's).
pub(super) const DENSE_COLUMN_ENTRIES: usize = 16;

/// Most unknowns (kept columns plus coupling rows) of the sparse system.
pub const MAX_UNKNOWNS: usize = 20_000;

/// Most entries of the factor `L` (16 bytes each with its row index): about 64 MB.
pub const MAX_FACTOR_NONZEROS: usize = 4_000_000;

/// A pivot of the wrong sign or smaller than this marks a dependent row, as the dense
/// Cholesky's pivot test: it is replaced by a huge one so the row's multiplier step is
/// (near) zero.
const PIVOT_EPS: f64 = 1e-30;
const DEPENDENT_PIVOT: f64 = 1e64;

/// Most refinement steps per solve (each stops unless the residual halves).
const REFINE_STEPS: usize = 3;

/// The system's pattern, the slots of its values and the factorisation.
pub(super) struct SparseKkt {
    /// Per variable: its unknown (`< kept`) when it is kept, else `usize::MAX`.
    slot: Vec<usize>,
    /// Kept variables, in unknown order.
    kept: Vec<usize>,
    /// Value slot of each unknown's diagonal entry.
    diag: Vec<usize>,
    /// Value slots of the eliminated columns' products, in [`Self::factor`]'s order.
    pairs: Vec<usize>,
    /// The matrix's upper triangle (compressed columns), for the refinement's products.
    colptr: Vec<usize>,
    rowval: Vec<usize>,
    values: Vec<f64>,
    all: Vec<usize>,
    /// The right-hand side, the solution and the residual.
    rhs: Vec<f64>,
    work: Vec<f64>,
    residual: Vec<f64>,
    ldl: QDLDLFactorisation<f64>,
}

impl SparseKkt {
    /// The pattern of `pb`'s system and its symbolic factorisation; `None` when it exceeds
    /// the size bounds.
    pub(super) fn new(pb: &Problem) -> Option<Self> {
        let (n, m) = (pb.n(), pb.rows());
        let keep = kept_columns(pb);
        let kept: Vec<usize> = (0..n).filter(|&j| keep[j]).collect();
        let nd = kept.len();
        let size = nd + m;
        if size > MAX_UNKNOWNS {
            return None;
        }
        let mut slot = vec![usize::MAX; n];
        for (d, &j) in kept.iter().enumerate() {
            slot[j] = d;
        }
        // Upper-triangle entries as (column, row): diagonals, kept columns' entries, then
        // the eliminated columns' products.
        let mut keys: Vec<(usize, usize)> = (0..size).map(|k| (k, k)).collect();
        for (d, &j) in kept.iter().enumerate() {
            keys.extend(pb.column(j).iter().map(|&(r, _)| (nd + r, d)));
        }
        let cross_end = keys.len();
        for j in (0..n).filter(|&j| !keep[j]) {
            let col = pb.column(j);
            for &(ra, _) in col {
                keys.extend(
                    col.iter()
                        .filter(|e| ra <= e.0)
                        .map(|&(rb, _)| (nd + rb, nd + ra)),
                );
            }
        }
        let mut pattern = keys.clone();
        pattern.sort_unstable();
        pattern.dedup();
        let at = |key: &(usize, usize)| pattern.binary_search(key).unwrap_or(0);
        let diag: Vec<usize> = keys[..size].iter().map(at).collect();
        let cross: Vec<usize> = keys[size..cross_end].iter().map(at).collect();
        let pairs: Vec<usize> = keys[cross_end..].iter().map(at).collect();
        let mut colptr = vec![0usize; size + 1];
        for &(c, _) in &pattern {
            colptr[c + 1] += 1;
        }
        for c in 0..size {
            colptr[c + 1] += colptr[c];
        }
        let rowval: Vec<usize> = pattern.iter().map(|&(_, r)| r).collect();
        let mut values = vec![0.0; pattern.len()];
        // The kept columns' coefficients never change: set once.
        let coefficients = kept.iter().flat_map(|&j| pb.column(j).iter().map(|e| e.1));
        for (&k, v) in cross.iter().zip(coefficients) {
            values[k] += v;
        }
        let matrix = CscMatrix::new(size, size, colptr.clone(), rowval.clone(), values.clone());
        let signs = (0..size).map(|k| if k < nd { 1 } else { -1 }).collect();
        let settings = QDLDLSettings {
            logical: true,
            Dsigns: Some(signs),
            regularize_enable: true,
            regularize_eps: PIVOT_EPS,
            regularize_delta: DEPENDENT_PIVOT,
            ..QDLDLSettings::default()
        };
        let ldl = QDLDLFactorisation::new(&matrix, Some(settings)).ok()?;
        if ldl.nnzL() > MAX_FACTOR_NONZEROS {
            return None;
        }
        Some(Self {
            slot,
            kept,
            diag,
            pairs,
            all: (0..values.len()).collect(),
            colptr,
            rowval,
            values,
            rhs: vec![0.0; size],
            work: vec![0.0; size],
            residual: vec![0.0; size],
            ldl,
        })
    }

    /// Whether variable `j` is an unknown of the system (not eliminated).
    pub(super) fn is_kept(&self, j: usize) -> bool {
        self.slot[j] != usize::MAX
    }

    /// Set the values for the diagonal `d` of the quadratic and barriers and the rows'
    /// `s/z` (`sigma`, inequality rows only) and factorise; `None` on a failed factorisation.
    pub(super) fn factor(&mut self, pb: &Problem, d: &[f64], sigma: &[f64]) -> Option<()> {
        let nd = self.kept.len();
        for &k in &self.diag[nd..] {
            self.values[k] = 0.0;
        }
        for &k in &self.pairs {
            self.values[k] = 0.0;
        }
        for (u, &j) in self.kept.iter().enumerate() {
            self.values[self.diag[u]] = d[j];
        }
        for (i, s) in sigma.iter().enumerate() {
            self.values[self.diag[nd + pb.eq_rows + i]] -= s;
        }
        let mut p = 0;
        for j in (0..pb.n()).filter(|&j| self.slot[j] == usize::MAX) {
            let inv = 1.0 / d[j];
            let col = pb.column(j);
            for &(ra, va) in col {
                for &(_, vb) in col.iter().filter(|e| ra <= e.0) {
                    self.values[self.pairs[p]] -= inv * va * vb;
                    p += 1;
                }
            }
        }
        if !self.values.iter().all(|v| v.is_finite()) {
            return None;
        }
        self.ldl.update_values(&self.all, &self.values);
        self.ldl.refactor().ok()
    }

    /// Solve for the multipliers' step: `h = R·t + rp + …` in, the step out (in place), with
    /// `r1` the dual right-hand side of the kept variables' rows.
    pub(super) fn solve(&mut self, r1: &[f64], h: &mut [f64]) {
        let nd = self.kept.len();
        for (u, &j) in self.kept.iter().enumerate() {
            self.rhs[u] = r1[j];
        }
        for (w, v) in self.rhs[nd..].iter_mut().zip(h.iter()) {
            *w = -v;
        }
        self.work.copy_from_slice(&self.rhs);
        self.ldl.solve(&mut self.work);
        // Iterative refinement: an L·D·Lᵀ without pivoting of a quasi-definite matrix whose
        // diagonal spans many magnitudes (barriers near the solution) loses digits the dense
        // Cholesky of the normal equations keeps; without it, the last iterations' primal
        // residuals stall above the tolerance (seen on 74-step fleet plans).
        let norm = |v: &[f64]| v.iter().fold(0.0_f64, |a, x| a.max(x.abs()));
        let mut last = f64::INFINITY;
        for _ in 0..REFINE_STEPS {
            self.residual_of_work();
            let size = norm(&self.residual);
            if !(size > 0.0 && size < 0.5 * last) {
                break;
            }
            last = size;
            self.ldl.solve(&mut self.residual);
            for (x, dx) in self.work.iter_mut().zip(&self.residual) {
                *x += dx;
            }
        }
        self.residual_of_work();
        h.copy_from_slice(&self.work[nd..]);
    }

    /// `residual = rhs − K·work`, `K` symmetric from its upper triangle.
    fn residual_of_work(&mut self) {
        self.residual.copy_from_slice(&self.rhs);
        for c in 0..self.work.len() {
            for k in self.colptr[c]..self.colptr[c + 1] {
                let (r, v) = (self.rowval[k], self.values[k]);
                self.residual[r] -= v * self.work[c];
                if r != c {
                    self.residual[c] -= v * self.work[r];
                }
            }
        }
    }
}

/// Columns kept as unknowns: those in more than [`DENSE_COLUMN_ENTRIES`] rows, except where an
/// equality row would keep no eliminated entry (its block diagonal would be zero and the
/// system no longer quasi-definite).
fn kept_columns(pb: &Problem) -> Vec<bool> {
    let n = pb.n();
    let mut keep: Vec<bool> = (0..n)
        .map(|j| pb.column(j).len() > DENSE_COLUMN_ENTRIES)
        .collect();
    let mut eliminated = vec![0usize; pb.rows()];
    for j in (0..n).filter(|&j| !keep[j]) {
        for &(r, _) in pb.column(j) {
            eliminated[r] += 1;
        }
    }
    for (j, kept) in keep.iter_mut().enumerate() {
        let bare = |r: usize| r < pb.eq_rows && eliminated[r] == 0;
        if *kept && pb.column(j).iter().any(|e| bare(e.0)) {
            *kept = false;
            for &(r, _) in pb.column(j) {
                eliminated[r] += 1;
            }
        }
    }
    keep
}
