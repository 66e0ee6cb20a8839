//! A primal-dual interior-point method (Mehrotra predictor-corrector) for diagonal quadratic
//! programs: first written for the EV planner's plans (`scg_ev::mpc`), a diagonal quadratic,
//! a bound on every variable and coupling rows (a vehicle's energy, a step's site limit and
//! peak, the V2G battery balance), and used for the thermal day plans of scg-home.
//!
//! Why it exists: the built-in apartment's fleet solves about 3,800 plans a year of about 100
//! variables and 210 rows, of which about 190 are single-variable bounds. A general conic
//! solver factorises the whole sparse KKT system each iteration; here the bounds are diagonal
//! barrier terms, and the coupling rows `R = [E; G]` form the normal equations
//! `R·D⁻¹·Rᵀ + diag(0; s/z)` (`D` the diagonal of the quadratic plus the bound barriers):
//! dense and factorised by Cholesky below [`SPARSE_FROM_ROWS`] coupling rows, else a reduced
//! sparse KKT system ordered once per problem and factorised `L·D·Lᵀ` each iteration
//! ([`kkt`]: variables in many rows stay unknowns so the rows' block stays sparse).
//!
//! [`solve`] answers `None` when the problem is outside its class (a variable with neither
//! bound, an empty box, a sparse system over [`MAX_UNKNOWNS`] unknowns or
//! [`MAX_FACTOR_NONZEROS`] factor entries) or when it does not converge: the caller then uses
//! the general solver. It accepts a point only by clarabel's termination test with clarabel's
//! default tolerances (relative primal and dual residuals and the duality gap, see
//! [`Tolerances`]).
//!
//! It must never panic on any input, loop past [`MAX_ITERATIONS`] or allocate inside the
//! iteration loop (every buffer is sized before it).

mod kkt;

pub use kkt::{MAX_FACTOR_NONZEROS, MAX_UNKNOWNS};

/// Coupling (non-bound) rows from which the sparse system of [`kkt`] is used: below, the
/// dense normal equations (`rows³/6` per iteration, `rows²` floats) are cheaper, having no
/// ordering or symbolic work per problem.
pub const SPARSE_FROM_ROWS: usize = 64;

/// Most interior-point iterations before giving up (the plan problems take 10-30).
pub const MAX_ITERATIONS: u32 = 100;

/// Share of the distance to the boundary a step takes (keeps the iterates interior).
const STEP_FRACTION: f64 = 0.995;

/// A Cholesky pivot at or below this share of its diagonal entry is treated as a dependent row
/// (its multiplier step is dropped), as LP interior-point codes do.
const PIVOT_SHARE: f64 = 1e-30;

/// The termination test, as clarabel's `DefaultSettings` defaults: a point is optimal when
/// the absolute or the relative duality gap and both relative residuals are below these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Absolute duality gap.
    pub gap_abs: f64,
    /// Duality gap relative to the smaller of the objectives' magnitudes (at least 1).
    pub gap_rel: f64,
    /// Primal and dual residuals, relative to the data and iterate norms as clarabel's.
    pub feas: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            gap_abs: 1e-8,
            gap_rel: 1e-8,
            feas: 1e-8,
        }
    }
}

/// Sparse rows `Σ val·x[col] (= or ≤) rhs[row]` as triplets (`row`, `col`, `val` of equal
/// length; every `row` below `rhs.len()`).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// Row of each entry.
    pub row: &'a [usize],
    /// Variable of each entry.
    pub col: &'a [usize],
    /// Coefficient of each entry.
    pub val: &'a [f64],
    /// Right-hand side of each row.
    pub rhs: &'a [f64],
}

/// `min ½·Σ p·x² + q·x` subject to `eq` (equalities) and `ineq` (`≤`); single-entry
/// inequality rows become bounds.
#[derive(Debug, Clone, Copy)]
pub struct QpInput<'a> {
    /// Diagonal of the quadratic term (≥ 0), one per variable.
    pub p_diag: &'a [f64],
    /// Linear term, one per variable.
    pub q: &'a [f64],
    /// Equality rows.
    pub eq: Rows<'a>,
    /// Inequality rows.
    pub ineq: Rows<'a>,
}

/// A solved problem.
#[derive(Debug, Clone, PartialEq)]
pub struct QpSolution {
    /// The primal solution.
    pub x: Vec<f64>,
    /// Interior-point iterations taken.
    pub iterations: u32,
}

/// Solve `input` to `tol`, or `None` (outside the class, or not converged: use a general
/// solver).
pub fn solve(input: &QpInput<'_>, tol: &Tolerances) -> Option<QpSolution> {
    solve_with(input, tol, SPARSE_FROM_ROWS)
}

/// [`solve`] with the sparse system from `sparse_from_rows` coupling rows (the tests compare
/// the two systems).
fn solve_with(
    input: &QpInput<'_>,
    tol: &Tolerances,
    sparse_from_rows: usize,
) -> Option<QpSolution> {
    let problem = Problem::from_input(input)?;
    let normal = if problem.rows() < sparse_from_rows {
        Normal::Dense(vec![0.0; problem.rows() * problem.rows()])
    } else {
        Normal::Sparse(Box::new(kkt::SparseKkt::new(&problem)?))
    };
    let mut ipm = Ipm::new(&problem, normal);
    ipm.run(&problem, tol)
}

/// The problem split into bounds and coupling rows, the rows stored by variable.
#[derive(Debug)]
struct Problem {
    p: Vec<f64>,
    q: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    /// Coupling rows: `eq_rows` equalities first, then inequalities.
    eq_rows: usize,
    rhs: Vec<f64>,
    /// Entries of variable `j`: `entries[col_start[j]..col_start[j + 1]]` as (row, value).
    col_start: Vec<usize>,
    entries: Vec<(usize, f64)>,
    /// The bounds with a missing one as 0 (so masked products stay finite).
    lower_or_0: Vec<f64>,
    upper_or_0: Vec<f64>,
    /// Norm of the constraint data (`rhs` and the finite bounds as rows), for the
    /// termination test.
    norm_b: f64,
    /// Norm of `q`.
    norm_q: f64,
}

impl Problem {
    fn from_input(input: &QpInput<'_>) -> Option<Self> {
        let n = input.q.len();
        if input.p_diag.len() != n || !rows_valid(&input.eq, n) || !rows_valid(&input.ineq, n) {
            return None;
        }
        let mut lower = vec![f64::NEG_INFINITY; n];
        let mut upper = vec![f64::INFINITY; n];
        // Inequality rows with one entry are bounds; the rest are coupling rows.
        let mut count = vec![0usize; input.ineq.rhs.len()];
        for &r in input.ineq.row {
            count[r] += 1;
        }
        for (i, &r) in input.ineq.row.iter().enumerate() {
            if count[r] != 1 {
                continue;
            }
            let (j, a, b) = (input.ineq.col[i], input.ineq.val[i], input.ineq.rhs[r]);
            if a > 0.0 {
                upper[j] = upper[j].min(b / a);
            } else if a < 0.0 {
                lower[j] = lower[j].max(b / a);
            } else if b < 0.0 {
                return None;
            }
        }
        if count
            .iter()
            .zip(input.ineq.rhs)
            .any(|(&c, &b)| c == 0 && b < 0.0)
        {
            return None;
        }
        let eq_rows = input.eq.rhs.len();
        let mut index = vec![usize::MAX; count.len()];
        let mut rhs = input.eq.rhs.to_vec();
        for (r, &c) in count.iter().enumerate() {
            if c > 1 {
                index[r] = rhs.len();
                rhs.push(input.ineq.rhs[r]);
            }
        }
        if !boxes_valid(&lower, &upper, input.p_diag) {
            return None;
        }
        let coupling = input
            .eq
            .row
            .iter()
            .zip(input.eq.col)
            .zip(input.eq.val)
            .map(|((&r, &j), &v)| (r, j, v))
            .chain(
                input
                    .ineq
                    .row
                    .iter()
                    .zip(input.ineq.col)
                    .zip(input.ineq.val)
                    .filter(|((r, _), _)| index[**r] != usize::MAX)
                    .map(|((&r, &j), &v)| (index[r], j, v)),
            );
        let mut col_start = vec![0usize; n + 1];
        for (_, j, _) in coupling.clone() {
            col_start[j + 1] += 1;
        }
        for j in 0..n {
            col_start[j + 1] += col_start[j];
        }
        let mut fill = col_start.clone();
        let mut entries = vec![(0usize, 0.0); col_start[n]];
        for (r, j, v) in coupling {
            entries[fill[j]] = (r, v);
            fill[j] += 1;
        }
        let mut bounds_b = 0.0;
        for (&l, &u) in lower.iter().zip(&upper) {
            let l = if l.is_finite() { l } else { 0.0 };
            let u = if u.is_finite() { u } else { 0.0 };
            bounds_b += l * l;
            bounds_b += u * u;
        }
        let or_0 = |b: &f64| if b.is_finite() { *b } else { 0.0 };
        Some(Self {
            lower_or_0: lower.iter().map(or_0).collect(),
            upper_or_0: upper.iter().map(or_0).collect(),
            p: input.p_diag.to_vec(),
            q: input.q.to_vec(),
            lower,
            upper,
            eq_rows,
            norm_b: sum_squares(0.0, &rhs).sqrt().hypot(bounds_b.sqrt()),
            norm_q: sum_squares(0.0, input.q).sqrt(),
            rhs,
            col_start,
            entries,
        })
    }

    fn n(&self) -> usize {
        self.q.len()
    }

    fn rows(&self) -> usize {
        self.rhs.len()
    }

    fn column(&self, j: usize) -> &[(usize, f64)] {
        &self.entries[self.col_start[j]..self.col_start[j + 1]]
    }

    /// `out = R·v`.
    #[inline]
    fn times(&self, v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (j, &vj) in v.iter().enumerate() {
            for &(r, a) in self.column(j) {
                out[r] += a * vj;
            }
        }
    }

    /// `(Rᵀ·w)_j`.
    #[inline]
    fn transpose_at(&self, w: &[f64], j: usize) -> f64 {
        let mut sum = 0.0;
        for &(r, a) in self.column(j) {
            sum += a * w[r];
        }
        sum
    }
}

/// Every triplet in range and finite.
fn rows_valid(rows: &Rows<'_>, n: usize) -> bool {
    let m = rows.rhs.len();
    rows.row.len() == rows.col.len()
        && rows.row.len() == rows.val.len()
        && rows.row.iter().all(|&r| r < m)
        && rows.col.iter().all(|&j| j < n)
        && rows.val.iter().chain(rows.rhs).all(|v| v.is_finite())
}

/// Every variable has a bound and a non-empty interior, and a finite non-negative quadratic.
fn boxes_valid(lower: &[f64], upper: &[f64], p: &[f64]) -> bool {
    lower.iter().zip(upper).zip(p).all(|((&l, &u), &pj)| {
        let width_ok = !(l.is_finite() && u.is_finite()) || u - l > 1e-9 * l.abs().max(1.0);
        (l.is_finite() || u.is_finite()) && width_ok && pj.is_finite() && pj >= 0.0
    })
}

/// The factorised Newton system.
enum Normal {
    /// The normal equations `R·D⁻¹·Rᵀ + diag(0; s/z)`, row-major, Cholesky-factorised.
    Dense(Vec<f64>),
    /// The reduced KKT system of [`kkt`].
    Sparse(Box<kkt::SparseKkt>),
}

/// Complementarity right-hand sides of a Newton system.
struct Targets<'a> {
    rows: &'a [f64],
    lower: &'a [f64],
    upper: &'a [f64],
}

/// A Newton direction.
#[derive(Debug, Clone)]
struct Direction {
    x: Vec<f64>,
    mult: Vec<f64>,
    s: Vec<f64>,
    zl: Vec<f64>,
    zu: Vec<f64>,
}

impl Direction {
    fn zeros(n: usize, m: usize, mi: usize) -> Self {
        Self {
            x: vec![0.0; n],
            mult: vec![0.0; m],
            s: vec![0.0; mi],
            zl: vec![0.0; n],
            zu: vec![0.0; n],
        }
    }
}

/// The iterate and the workspace.
struct Ipm {
    x: Vec<f64>,
    /// Multipliers of the coupling rows (equalities first).
    mult: Vec<f64>,
    /// Slacks of the coupling inequalities.
    s: Vec<f64>,
    sl: Vec<f64>,
    su: Vec<f64>,
    zl: Vec<f64>,
    zu: Vec<f64>,
    /// 1 where the variable has a lower (upper) bound, else 0. A missing bound keeps its
    /// slack at 1 and its multiplier, target and reciprocal at 0, so the loops below need no
    /// branch: its terms vanish.
    has_l: Vec<f64>,
    has_u: Vec<f64>,
    /// Complementarity pairs (coupling inequalities and finite bounds).
    pairs: usize,
    // Workspace.
    rd: Vec<f64>,
    rp: Vec<f64>,
    d: Vec<f64>,
    /// `1/d`, `1/sl`, `1/su` of the current iteration (zero for a missing bound).
    inv_d: Vec<f64>,
    inv_sl: Vec<f64>,
    inv_su: Vec<f64>,
    r1: Vec<f64>,
    t: Vec<f64>,
    rhs: Vec<f64>,
    normal: Normal,
    rc_rows: Vec<f64>,
    rc_lower: Vec<f64>,
    rc_upper: Vec<f64>,
    affine: Direction,
    step: Direction,
}

impl Ipm {
    fn new(pb: &Problem, normal: Normal) -> Self {
        let (n, m) = (pb.n(), pb.rows());
        let mi = m - pb.eq_rows;
        let mask = |b: &f64| if b.is_finite() { 1.0 } else { 0.0 };
        let has_l: Vec<f64> = pb.lower.iter().map(mask).collect();
        let has_u: Vec<f64> = pb.upper.iter().map(mask).collect();
        let pairs = mi
            + pb.lower
                .iter()
                .chain(&pb.upper)
                .filter(|b| b.is_finite())
                .count();
        // Start in the middle of each box (one unit inside a one-sided bound).
        let x: Vec<f64> = pb
            .lower
            .iter()
            .zip(&pb.upper)
            .map(|(&l, &u)| match (l.is_finite(), u.is_finite()) {
                (true, true) => 0.5 * (l + u),
                (true, false) => l + 1.0,
                _ => u - 1.0,
            })
            .collect();
        let sl = x
            .iter()
            .zip(&pb.lower)
            .map(|(x, l)| if l.is_finite() { x - l } else { 1.0 })
            .collect();
        let su = x
            .iter()
            .zip(&pb.upper)
            .map(|(x, u)| if u.is_finite() { u - x } else { 1.0 })
            .collect();
        let mut rx = vec![0.0; m];
        pb.times(&x, &mut rx);
        let s = (pb.eq_rows..m)
            .map(|r| (pb.rhs[r] - rx[r]).max(1.0))
            .collect();
        let mult: Vec<f64> = (0..m)
            .map(|r| if r < pb.eq_rows { 0.0 } else { 1.0 })
            .collect();
        // Bound multipliers that make the start dual feasible where the bounds allow
        // (`zl − zu = P·x + q + Rᵀ·mult`), shifted by one so each is interior: the plan
        // problems' costs (the value of energy, ~1,000 EUR/kWh) are far from one.
        let reduced: Vec<f64> = (0..n)
            .map(|j| pb.p[j] * x[j] + pb.q[j] + pb.transpose_at(&mult, j))
            .collect();
        let zl = (0..n)
            .map(|j| {
                if has_l[j] != 0.0 {
                    reduced[j].max(0.0) + 1.0
                } else {
                    0.0
                }
            })
            .collect();
        let zu = (0..n)
            .map(|j| {
                if has_u[j] != 0.0 {
                    (-reduced[j]).max(0.0) + 1.0
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            x,
            mult,
            s,
            sl,
            su,
            zl,
            zu,
            has_l,
            has_u,
            pairs,
            rd: vec![0.0; n],
            rp: vec![0.0; m],
            d: vec![0.0; n],
            inv_d: vec![0.0; n],
            inv_sl: vec![0.0; n],
            inv_su: vec![0.0; n],
            r1: vec![0.0; n],
            t: vec![0.0; n],
            rhs: vec![0.0; m],
            normal,
            rc_rows: vec![0.0; mi],
            rc_lower: vec![0.0; n],
            rc_upper: vec![0.0; n],
            affine: Direction::zeros(n, m, mi),
            step: Direction::zeros(n, m, mi),
        }
    }

    fn run(&mut self, pb: &Problem, tol: &Tolerances) -> Option<QpSolution> {
        let me = pb.eq_rows;
        for iteration in 0..MAX_ITERATIONS {
            self.residuals(pb);
            let pairs = self.pairs;
            let mu = self.complementarity() / pairs.max(1) as f64;
            if !mu.is_finite() {
                return None;
            }
            if self.converged(pb, tol) {
                return Some(QpSolution {
                    x: std::mem::take(&mut self.x),
                    iterations: iteration,
                });
            }
            self.factor(pb)?;
            // Predictor: the affine-scaling direction.
            for i in 0..self.s.len() {
                self.rc_rows[i] = -self.s[i] * self.mult[me + i];
            }
            for j in 0..self.x.len() {
                self.rc_lower[j] = -self.sl[j] * self.zl[j];
                self.rc_upper[j] = -self.su[j] * self.zu[j];
            }
            let mut affine = std::mem::replace(&mut self.affine, Direction::zeros(0, 0, 0));
            self.newton(pb, &mut affine);
            let alpha = self.max_step(&affine);
            let mu_affine = self.complementarity_after(&affine, alpha) / pairs.max(1) as f64;
            let sigma = (mu_affine / mu).clamp(0.0, 1.0).powi(3);
            // Corrector: centring plus Mehrotra's second-order term.
            let target = sigma * mu;
            for i in 0..self.s.len() {
                self.rc_rows[i] =
                    target - self.s[i] * self.mult[me + i] - affine.s[i] * affine.mult[me + i];
            }
            for j in 0..self.x.len() {
                self.rc_lower[j] =
                    (target - self.sl[j] * self.zl[j] - affine.x[j] * affine.zl[j]) * self.has_l[j];
                self.rc_upper[j] =
                    (target - self.su[j] * self.zu[j] + affine.x[j] * affine.zu[j]) * self.has_u[j];
            }
            self.affine = affine;
            let mut step = std::mem::replace(&mut self.step, Direction::zeros(0, 0, 0));
            self.newton(pb, &mut step);
            let alpha = (STEP_FRACTION * self.max_step(&step)).min(1.0);
            if alpha.is_nan() || alpha <= 1e-12 {
                return None;
            }
            self.advance(&step, alpha);
            self.step = step;
        }
        None
    }

    fn complementarity(&self) -> f64 {
        let me = self.mult.len() - self.s.len();
        let mut rows = 0.0;
        for (s, z) in self.s.iter().zip(&self.mult[me..]) {
            rows += s * z;
        }
        let mut bounds = 0.0;
        for j in 0..self.x.len() {
            bounds += self.sl[j] * self.zl[j] + self.su[j] * self.zu[j];
        }
        rows + bounds
    }

    fn complementarity_after(&self, d: &Direction, alpha: f64) -> f64 {
        let me = self.mult.len() - self.s.len();
        let mut rows = 0.0;
        for i in 0..self.s.len() {
            rows += (self.s[i] + alpha * d.s[i]) * (self.mult[me + i] + alpha * d.mult[me + i]);
        }
        let mut bounds = 0.0;
        for j in 0..self.x.len() {
            let l = (self.sl[j] + alpha * d.x[j]) * (self.zl[j] + alpha * d.zl[j]);
            let u = (self.su[j] - alpha * d.x[j]) * (self.zu[j] + alpha * d.zu[j]);
            bounds += l + u;
        }
        rows + bounds
    }

    /// Dual residual `rd = P·x + q + Rᵀ·mult − zl + zu` and primal `rp = R·x + (0; s) − rhs`.
    fn residuals(&mut self, pb: &Problem) {
        for j in 0..self.x.len() {
            self.rd[j] = pb.p[j] * self.x[j] + pb.q[j] + pb.transpose_at(&self.mult, j)
                - self.zl[j]
                + self.zu[j];
        }
        pb.times(&self.x, &mut self.rp);
        let me = pb.eq_rows;
        for (r, rp) in self.rp.iter_mut().enumerate() {
            *rp -= pb.rhs[r];
            if r >= me {
                *rp += self.s[r - me];
            }
        }
    }

    /// Clarabel's test (`DefaultInfo::is_solved`), its norms on this problem's parts: the
    /// bounds are rows `−x ≤ −l` and `x ≤ u` with slacks `sl`, `su`. Plain loops (this runs
    /// every iteration); each norm sums its squares in the order clarabel's vectors hold them.
    fn converged(&self, pb: &Problem, tol: &Tolerances) -> bool {
        let norm_x = sum_squares(0.0, &self.x).sqrt();
        let norm_s = sum_squares(sum_squares(sum_squares(0.0, &self.s), &self.sl), &self.su).sqrt();
        let norm_z = sum_squares(
            sum_squares(sum_squares(0.0, &self.mult), &self.zl),
            &self.zu,
        )
        .sqrt();
        // Bound rows' residuals: x − sl − l and u − x − su (round-off only), interleaved.
        let mut bound_res = 0.0;
        let mut x_px = 0.0;
        let mut qx = 0.0;
        let mut bounds_z = 0.0;
        for j in 0..self.x.len() {
            let rl = (self.x[j] - self.sl[j] - pb.lower_or_0[j]) * self.has_l[j];
            let ru = (pb.upper_or_0[j] - self.x[j] - self.su[j]) * self.has_u[j];
            bound_res += rl * rl;
            bound_res += ru * ru;
            x_px += pb.p[j] * self.x[j] * self.x[j];
            qx += pb.q[j] * self.x[j];
            bounds_z += -pb.lower_or_0[j] * self.zl[j] + pb.upper_or_0[j] * self.zu[j];
        }
        let res_primal = sum_squares(0.0, &self.rp).sqrt().hypot(bound_res.sqrt())
            / (pb.norm_b + norm_x + norm_s).max(1.0);
        let res_dual = sum_squares(0.0, &self.rd).sqrt() / (pb.norm_q + norm_x + norm_z).max(1.0);
        let cost_primal = 0.5 * x_px + qx;
        let mut bz = 0.0;
        for (b, z) in pb.rhs.iter().zip(&self.mult) {
            bz += b * z;
        }
        let cost_dual = -0.5 * x_px - (bz + bounds_z);
        let gap_abs = (cost_primal - cost_dual).abs();
        let gap_rel = gap_abs / cost_primal.abs().min(cost_dual.abs()).max(1.0);
        (gap_abs < tol.gap_abs || gap_rel < tol.gap_rel)
            && res_primal < tol.feas
            && res_dual < tol.feas
    }

    /// Form and factorise `R·D⁻¹·Rᵀ + diag(0; s/z)`; `None` on a non-finite entry.
    fn factor(&mut self, pb: &Problem) -> Option<()> {
        let (n, m, me) = (pb.n(), pb.rows(), pb.eq_rows);
        // Reciprocals once per iteration (zero for a missing bound): both Newton solves of
        // the iteration multiply by them instead of dividing.
        for j in 0..n {
            self.inv_sl[j] = self.has_l[j] / self.sl[j];
            self.inv_su[j] = self.has_u[j] / self.su[j];
            self.d[j] = pb.p[j] + self.zl[j] * self.inv_sl[j] + self.zu[j] * self.inv_su[j];
            self.inv_d[j] = 1.0 / self.d[j];
        }
        let a = match &mut self.normal {
            Normal::Dense(a) => a,
            Normal::Sparse(kkt) => {
                // s/z of the inequality rows, in the (so far unused) right-hand side.
                for i in 0..m - me {
                    self.rhs[i] = self.s[i] / self.mult[me + i];
                }
                return kkt.factor(pb, &self.d, &self.rhs[..m - me]);
            }
        };
        a.fill(0.0);
        for j in 0..n {
            let inv = 1.0 / self.d[j];
            let col = pb.column(j);
            for &(r, v) in col {
                for &(k, w) in col {
                    if k <= r {
                        a[r * m + k] += inv * v * w;
                    }
                }
            }
        }
        for i in 0..m - me {
            a[(me + i) * m + me + i] += self.s[i] / self.mult[me + i];
        }
        cholesky(a, m)
    }

    /// Solve the Newton system for the complementarity targets in `rc_*` into `dir`.
    fn newton(&mut self, pb: &Problem, dir: &mut Direction) {
        let (n, m, me) = (pb.n(), pb.rows(), pb.eq_rows);
        let targets = Targets {
            rows: &self.rc_rows,
            lower: &self.rc_lower,
            upper: &self.rc_upper,
        };
        // A missing bound has a zero target and reciprocal, so its terms vanish.
        for j in 0..n {
            self.r1[j] =
                -self.rd[j] + targets.lower[j] * self.inv_sl[j] - targets.upper[j] * self.inv_su[j];
        }
        match &self.normal {
            Normal::Dense(_) => {
                for j in 0..n {
                    self.t[j] = self.r1[j] * self.inv_d[j];
                }
            }
            Normal::Sparse(kkt) => {
                for j in 0..n {
                    self.t[j] = if kkt.is_kept(j) {
                        0.0
                    } else {
                        self.r1[j] * self.inv_d[j]
                    };
                }
            }
        }
        pb.times(&self.t, &mut self.rhs);
        for r in 0..m {
            self.rhs[r] += self.rp[r];
            if r >= me {
                self.rhs[r] += targets.rows[r - me] / self.mult[r];
            }
        }
        match &mut self.normal {
            Normal::Dense(a) => cholesky_solve(a, m, &mut self.rhs),
            Normal::Sparse(kkt) => kkt.solve(&self.r1, &mut self.rhs),
        }
        dir.mult.copy_from_slice(&self.rhs);
        for j in 0..n {
            let dx = (self.r1[j] - pb.transpose_at(&dir.mult, j)) * self.inv_d[j];
            dir.x[j] = dx;
            dir.zl[j] = (targets.lower[j] - self.zl[j] * dx) * self.inv_sl[j];
            dir.zu[j] = (targets.upper[j] + self.zu[j] * dx) * self.inv_su[j];
        }
        for i in 0..m - me {
            dir.s[i] = (targets.rows[i] - self.s[i] * dir.mult[me + i]) / self.mult[me + i];
        }
    }

    /// Largest step in (0, 1] keeping every slack and multiplier non-negative.
    fn max_step(&self, d: &Direction) -> f64 {
        let me = self.mult.len() - self.s.len();
        let mut alpha: f64 = 1.0;
        for i in 0..self.s.len() {
            alpha = shrink(alpha, self.s[i], d.s[i]);
            alpha = shrink(alpha, self.mult[me + i], d.mult[me + i]);
        }
        // A missing bound's direction entries are zero (its multiplier's by the Newton
        // solve, its slack's by the mask), so it never limits the step.
        for j in 0..self.x.len() {
            alpha = shrink(alpha, self.sl[j], d.x[j] * self.has_l[j]);
            alpha = shrink(alpha, self.zl[j], d.zl[j]);
            alpha = shrink(alpha, self.su[j], -d.x[j] * self.has_u[j]);
            alpha = shrink(alpha, self.zu[j], d.zu[j]);
        }
        alpha
    }

    fn advance(&mut self, d: &Direction, alpha: f64) {
        for j in 0..self.x.len() {
            let step = alpha * d.x[j];
            self.x[j] += step;
            self.sl[j] += step * self.has_l[j];
            self.zl[j] += alpha * d.zl[j];
            self.su[j] -= step * self.has_u[j];
            self.zu[j] += alpha * d.zu[j];
        }
        for (v, dv) in self.mult.iter_mut().zip(&d.mult) {
            *v += alpha * dv;
        }
        for (v, dv) in self.s.iter_mut().zip(&d.s) {
            *v += alpha * dv;
        }
    }
}

/// In-place Cholesky `A = L·Lᵀ` of the lower triangle of the row-major `m × m` matrix `a`. A
/// pivot at or below [`PIVOT_SHARE`] of its diagonal entry marks a dependent row: its `L` entry
/// is set huge so the row's solution component is (near) zero. `None` on a non-finite entry.
fn cholesky(a: &mut [f64], m: usize) -> Option<()> {
    for i in 0..m {
        // Row i's leading zeros stay zero in L (its envelope): skip them in every dot.
        let first = a[i * m..i * m + i]
            .iter()
            .position(|&v| v != 0.0)
            .unwrap_or(i);
        let (done, rest) = a.split_at_mut(i * m);
        let row_i = &mut rest[..m];
        for j in first..=i {
            let row_j: &[f64] = if j == i { &[] } else { &done[j * m..j * m + j] };
            let dot = if j == i {
                dot(&row_i[first..i], &row_i[first..i])
            } else {
                dot(&row_i[first..j], &row_j[first..j])
            };
            let v = row_i[j] - dot;
            if !v.is_finite() {
                return None;
            }
            row_i[j] = if j == i {
                if v <= PIVOT_SHARE * row_i[i].abs() || v <= 0.0 {
                    1e64
                } else {
                    v.sqrt()
                }
            } else {
                v / done[j * m + j]
            };
        }
    }
    Some(())
}

/// `alpha.min(−v / dv)` when `dv < 0` (the step that takes `v` to zero), dividing only when
/// the quotient can be below `alpha`: the test is loose by 1e-9 so it never skips a smaller
/// quotient, and the result is the same as always dividing.
#[inline]
fn shrink(alpha: f64, v: f64, dv: f64) -> f64 {
    if dv < 0.0 && v <= alpha * -dv * (1.0 + 1e-9) {
        alpha.min(-v / dv)
    } else {
        alpha
    }
}

/// `acc + Σ v²`, summed in order.
fn sum_squares(mut acc: f64, v: &[f64]) -> f64 {
    for x in v {
        acc += x * x;
    }
    acc
}

/// `Σ a·b` with four partial sums (the dependent-add chain of one sum is what limits a
/// Cholesky of a few dozen rows).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solve `L·Lᵀ·x = b` in place with the factor from [`cholesky`].
fn cholesky_solve(l: &[f64], m: usize, b: &mut [f64]) {
    for i in 0..m {
        let v = b[i] - dot(&l[i * m..i * m + i], &b[..i]);
        b[i] = v / l[i * m + i];
    }
    // `Lᵀ·x = y` by rows of `L` (contiguous): once `x_i` is known, take its share out of
    // the earlier entries.
    for i in (0..m).rev() {
        let row = &l[i * m..i * m + i];
        let xi = b[i] / l[i * m + i];
        b[i] = xi;
        for (bk, lik) in b[..i].iter_mut().zip(row) {
            *bk -= lik * xi;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows<'a>(row: &'a [usize], col: &'a [usize], val: &'a [f64], rhs: &'a [f64]) -> Rows<'a> {
        Rows { row, col, val, rhs }
    }

    /// `min −x − 2y` with `0 ≤ x, y ≤ 1` and `x + y ≤ 1.5`: the optimum is (0.5, 1).
    #[test]
    fn solves_a_small_lp() {
        let eq = rows(&[], &[], &[], &[]);
        let ineq = rows(
            &[0, 1, 2, 3, 4, 4],
            &[0, 0, 1, 1, 0, 1],
            &[-1.0, 1.0, -1.0, 1.0, 1.0, 1.0],
            &[0.0, 1.0, 0.0, 1.0, 1.5],
        );
        let input = QpInput {
            p_diag: &[0.0, 0.0],
            q: &[-1.0, -2.0],
            eq,
            ineq,
        };
        let sol = solve(&input, &Tolerances::default()).unwrap();
        assert!((sol.x[0] - 0.5).abs() < 1e-6 && (sol.x[1] - 1.0).abs() < 1e-6);
    }

    /// Outside the class or malformed: `None`, never a panic.
    #[test]
    fn declines_what_it_cannot_take() {
        let none = rows(&[], &[], &[], &[]);
        // A variable without any bound.
        let free = QpInput {
            p_diag: &[1.0],
            q: &[1.0],
            eq: none,
            ineq: none,
        };
        assert!(solve(&free, &Tolerances::default()).is_none());
        // An entry naming a variable that does not exist.
        let bad = QpInput {
            p_diag: &[0.0],
            q: &[1.0],
            eq: none,
            ineq: rows(&[0], &[3], &[1.0], &[1.0]),
        };
        assert!(solve(&bad, &Tolerances::default()).is_none());
        // An empty box (0 ≤ x ≤ 0).
        let empty = QpInput {
            p_diag: &[0.0],
            q: &[1.0],
            eq: none,
            ineq: rows(&[0, 1], &[0, 0], &[-1.0, 1.0], &[0.0, 0.0]),
        };
        assert!(solve(&empty, &Tolerances::default()).is_none());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sparse_tests {
    use super::*;
    use clarabel::algebra::CscMatrix;
    use clarabel::solver::{
        DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, SupportedConeT,
        ZeroConeT,
    };
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A problem owned: rows as (row, col, val) triplets with right-hand sides.
    #[derive(Debug, Default)]
    struct Owned {
        p: Vec<f64>,
        q: Vec<f64>,
        eq: (Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>),
        ineq: (Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>),
    }

    impl Owned {
        fn var(&mut self, p: f64, q: f64, lower: f64, upper: f64) -> usize {
            let j = self.q.len();
            self.p.push(p);
            self.q.push(q);
            self.le(&[(j, -1.0)], -lower);
            if upper.is_finite() {
                self.le(&[(j, 1.0)], upper);
            }
            j
        }

        fn le(&mut self, terms: &[(usize, f64)], rhs: f64) {
            push(&mut self.ineq, terms, rhs);
        }

        fn equal(&mut self, terms: &[(usize, f64)], rhs: f64) {
            push(&mut self.eq, terms, rhs);
        }

        fn input(&self) -> QpInput<'_> {
            fn rows(r: &(Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>)) -> Rows<'_> {
                Rows {
                    row: &r.0,
                    col: &r.1,
                    val: &r.2,
                    rhs: &r.3,
                }
            }
            QpInput {
                p_diag: &self.p,
                q: &self.q,
                eq: rows(&self.eq),
                ineq: rows(&self.ineq),
            }
        }

        fn objective(&self, x: &[f64]) -> f64 {
            (0..x.len())
                .map(|j| 0.5 * self.p[j] * x[j] * x[j] + self.q[j] * x[j])
                .sum()
        }

        /// Worst row violation of `x`.
        fn violation(&self, x: &[f64]) -> f64 {
            let lhs = |r: &(Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>)| {
                let mut out = vec![0.0; r.3.len()];
                for k in 0..r.0.len() {
                    out[r.0[k]] += r.2[k] * x[r.1[k]];
                }
                out
            };
            let eq = lhs(&self.eq)
                .iter()
                .zip(&self.eq.3)
                .map(|(l, b)| (l - b).abs())
                .fold(0.0, f64::max);
            lhs(&self.ineq)
                .iter()
                .zip(&self.ineq.3)
                .map(|(l, b)| (l - b).max(0.0))
                .fold(eq, f64::max)
        }

        /// Clarabel's solution (the reference), equalities stacked above the inequalities.
        fn clarabel(&self) -> Vec<f64> {
            let n = self.q.len();
            let (me, mi) = (self.eq.3.len(), self.ineq.3.len());
            let ri = self
                .eq
                .0
                .iter()
                .copied()
                .chain(self.ineq.0.iter().map(|r| r + me))
                .collect();
            let rj = [self.eq.1.as_slice(), &self.ineq.1].concat();
            let rv = [self.eq.2.as_slice(), &self.ineq.2].concat();
            let b = [self.eq.3.as_slice(), &self.ineq.3].concat();
            let a = CscMatrix::new_from_triplets(me + mi, n, ri, rj, rv);
            let diag: Vec<usize> = (0..n).filter(|&j| self.p[j] != 0.0).collect();
            let pv = diag.iter().map(|&j| self.p[j]).collect();
            let p = CscMatrix::new_from_triplets(n, n, diag.clone(), diag, pv);
            let mut cones: Vec<SupportedConeT<f64>> = vec![NonnegativeConeT(mi)];
            if me > 0 {
                cones.insert(0, ZeroConeT(me));
            }
            let settings = DefaultSettings {
                verbose: false,
                ..DefaultSettings::default()
            };
            let mut solver = DefaultSolver::new(&p, &self.q, &a, &b, &cones, settings).unwrap();
            solver.solve();
            assert_eq!(solver.solution.status, SolverStatus::Solved);
            solver.solution.x.clone()
        }
    }

    fn push(
        rows: &mut (Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>),
        terms: &[(usize, f64)],
        rhs: f64,
    ) {
        let r = rows.3.len();
        for &(j, v) in terms {
            rows.0.push(r);
            rows.1.push(j);
            rows.2.push(v);
        }
        rows.3.push(rhs);
    }

    /// A thermal day plan: heat `u_t ∈ [0, 3]` kW bought at a price, a temperature
    /// `θ_t ∈ [19, 23]` °C, and the chain `θ_t = a·θ_{t−1} + b·u_t + c_t` as `steps` equality
    /// rows, each touching steps `t` and `t − 1`.
    fn thermal(rng: &mut ChaCha8Rng, steps: usize) -> Owned {
        let mut pb = Owned::default();
        // Drifting towards an outdoor 5-15 °C, heat can always hold 19 °C: feasible.
        let (a, b) = (rng.random_range(0.9..0.98), rng.random_range(0.6..2.0));
        let mut prev = None;
        for _ in 0..steps {
            let u = pb.var(1e-6, rng.random_range(0.05..0.4), 0.0, 3.0);
            let theta = pb.var(0.0, 0.0, 19.0, 23.0);
            let c = rng.random_range(5.0..15.0) * (1.0 - a);
            match prev {
                Some(p) => pb.equal(&[(theta, 1.0), (p, -a), (u, -b)], c),
                None => pb.equal(&[(theta, 1.0), (u, -b)], c + a * 21.0),
            }
            prev = Some(theta);
        }
        pb
    }

    /// An EV plan's shape: charge power per vehicle and step, each vehicle's energy row, each
    /// step's site limit and a peak row per step against each of `peaks` peak variables
    /// (dense columns, as a plan's scenarios).
    fn fleet(rng: &mut ChaCha8Rng, vehicles: usize, steps: usize, peaks: usize) -> Owned {
        let mut pb = Owned::default();
        let peak: Vec<usize> = (0..peaks)
            .map(|_| {
                pb.var(
                    0.0,
                    rng.random_range(1.0..20.0),
                    rng.random_range(0.0..20.0),
                    1e4,
                )
            })
            .collect();
        let mut at_step: Vec<Vec<(usize, f64)>> = vec![Vec::new(); steps];
        for _ in 0..vehicles {
            let start = rng.random_range(0..steps);
            let end = rng.random_range(start + 1..=steps);
            let max_kw = rng.random_range(1.0..11.0);
            let mut energy = Vec::new();
            for terms in &mut at_step[start..end] {
                let price = rng.random_range(-0.02..0.3) - 1.0;
                let c = pb.var(1e-6, price * 0.25, 0.0, max_kw);
                energy.push((c, 0.25 * 0.9));
                terms.push((c, 1.0));
            }
            pb.le(&energy, rng.random_range(0.0..40.0));
        }
        let limit = rng.random_range(5.0..60.0);
        for terms in at_step.iter().filter(|t| !t.is_empty()) {
            pb.le(terms, limit);
            for &v in &peak {
                let mut with_peak = terms.clone();
                with_peak.push((v, -1.0));
                pb.le(&with_peak, 0.0);
            }
        }
        pb
    }

    fn check(pb: &Owned, sol: &QpSolution) -> Result<(), TestCaseError> {
        let reference = pb.clarabel();
        let (f, fc) = (pb.objective(&sol.x), pb.objective(&reference));
        prop_assert!(
            (f - fc).abs() <= 1e-6 * fc.abs().max(1.0),
            "objective {} vs {} (clarabel)",
            f,
            fc
        );
        prop_assert!(
            pb.violation(&sol.x) <= 1e-6,
            "violation {}",
            pb.violation(&sol.x)
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Thermal chains of 24 and 96 steps (banded equality rows): the sparse and the dense
        /// system both answer, with clarabel's objective and feasible rows.
        #[test]
        fn thermal_chains_match_clarabel(seed in any::<u64>(), long in any::<bool>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let pb = thermal(&mut rng, if long { 96 } else { 24 });
            let tol = Tolerances::default();
            let sparse = solve_with(&pb.input(), &tol, 0).unwrap();
            let dense = solve_with(&pb.input(), &tol, usize::MAX).unwrap();
            check(&pb, &sparse)?;
            check(&pb, &dense)?;
        }

        /// Fleet plans up to 15-minute size (up to 96 steps, 20 vehicles and 3 peak
        /// variables: up to about 400 rows, each peak variable in a row of every step): the sparse system answers with clarabel's
        /// objective and feasible rows, as does the dense one.
        #[test]
        fn fleet_plans_match_clarabel(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let steps = rng.random_range(2..97usize);
            let vehicles = rng.random_range(1..21usize);
            let peaks = rng.random_range(1..4usize);
            let pb = fleet(&mut rng, vehicles, steps, peaks);
            let tol = Tolerances::default();
            let sparse = solve_with(&pb.input(), &tol, 0).unwrap();
            check(&pb, &sparse)?;
            let dense = solve_with(&pb.input(), &tol, usize::MAX).unwrap();
            check(&pb, &dense)?;
        }
    }

    /// A 96-step fleet plan has more than 300 coupling rows and takes the sparse system by
    /// default.
    #[test]
    fn a_15_minute_plan_is_large() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let pb = fleet(&mut rng, 20, 96, 3);
        let problem = Problem::from_input(&pb.input()).unwrap();
        assert!(problem.rows() > 300 && problem.rows() >= SPARSE_FROM_ROWS);
        check(&pb, &solve(&pb.input(), &Tolerances::default()).unwrap()).unwrap();
    }
}
