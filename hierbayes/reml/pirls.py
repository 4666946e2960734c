"""Penalized iteratively reweighted least squares (PIRLS): the conditional modes of a GLMM.

At fixed θ (and β, or with β free), the spherical random effects u minimise the penalized
deviance −2 log p(y | η) + ‖u‖², η = Xβ + ZΛu. Each Newton (Fisher scoring) step is a weighted
penalized least-squares problem with the working weights W and working response z of the current
η, which is exactly the Gaussian PLS problem that the REML backends solve: the layout is
re-weighted (layout.reweighted), the same backend factors M = ΛᵀZᵀWZΛ + I, and

    β free  (lme4's nAGQ = 0 stage):  (β, u) = the PLS solution for response z  (pls.profiled)
    β fixed (the Laplace stage):      u = M⁻¹ΛᵀZᵀW(z − Xβ)

A step that does not lower the penalized deviance is halved. The loop stops when a step moves η
and u by less than TOL; the factor kept is that of the weights at the final u, so the Laplace
deviance −2 log p(y | û) + ‖û‖² + log|M| is evaluated at one consistent point. TOL is far tighter
than lme4's so that the deviance is smooth enough for finite-difference gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg import cholesky

from ..design import Design
from .backends import choose_backend
from .blockdiag import BlockDiagBackend
from .glmfamily import GlmFamily, Working
from .layout import Layout, group_template, make_layout, reweighted
from .theta import ThetaLayout

TOL = 1e-10  # largest change of η or u that counts as converged
LME4_TOL = 1e-7  # glmer's tolPwrss: relative change of the penalized deviance
MAX_ITER = 60
MAX_HALVINGS = 12


@dataclass(frozen=True, eq=False)
class PirlsState:
    """The conditional modes at (θ, β) and everything the Laplace deviance needs there."""

    theta: np.ndarray
    beta: np.ndarray  # (p,) absolute
    u: np.ndarray  # (q,) spherical modes, internal column order
    eta: np.ndarray  # (n,)
    layout: Layout  # re-weighted at û
    factor: object  # the backend's factor of M at û
    minus2loglik: float  # −2 log p(y | û)
    logdet: float  # log|M|
    iterations: int
    converged: bool

    @property
    def criterion(self) -> float:
        """The Laplace approximation of −2 log-likelihood (lme4's −2 logLik)."""
        return self.minus2loglik + float(self.u @ self.u) + self.logdet

    @cached_property
    def RX(self) -> np.ndarray:
        """Lower Cholesky factor of XᵀWX − RZXᵀRZX (the β block of the Hessian / 2)."""
        return schur_cholesky(self.layout, self.factor)


def joint_beta(layout: Layout, factor) -> np.ndarray:
    """β of the joint PLS solution: (XᵀWX − RZXᵀRZX) β = XᵀWz − RZXᵀcu (pls.profiled's algebra),
    by a truncated eigendecomposition (p×p: microseconds). Directions whose curvature is below
    1e-12 of the largest get no step: under separation the weights of the separated rows
    underflow, and a Newton step along that direction would be rounding noise divided by ~0,
    throwing β to ±1e15. Designs have full column rank, so nothing else is ever truncated."""
    RZX = factor.RZX
    C = layout.XtX - RZX.T @ RZX
    rhs = layout.Xty - RZX.T @ factor.cu
    if not C.size:
        return rhs
    values, vectors = np.linalg.eigh(C)
    keep = values > 1e-12 * np.max(np.abs(values))
    return vectors[:, keep] @ ((vectors[:, keep].T @ rhs) / values[keep])


def schur_cholesky(layout: Layout, factor) -> np.ndarray:
    """Cholesky factor of XᵀWX − RZXᵀRZX. Under separation the working weights of the separated
    rows underflow and this matrix is singular to rounding; a ridge of 1e-10 of its diagonal then
    stands in for the missing curvature (the estimate along that direction is infinite anyway,
    and the separation check reports it)."""
    RZX = factor.RZX
    C = layout.XtX - RZX.T @ RZX
    if not C.size:
        return C
    try:
        return cholesky(C, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        ridge = 1e-10 * np.max(np.abs(np.diag(C)), initial=1.0)
        return cholesky(C + ridge * np.eye(C.shape[0]), lower=True, check_finite=False)


# What a solve at far-off (θ, β) raises: a factor that is not positive definite (weights that
# overflow make the Schur complement indefinite in floating point) or a floating-point error.
PIRLS_FAILURES = (np.linalg.LinAlgError, FloatingPointError, ValueError)


def failed_state(theta: np.ndarray, beta: np.ndarray, q: int) -> PirlsState:
    """The state of a solve that failed: criterion +inf (no layout, no factor)."""
    return PirlsState(np.array(theta, float), np.array(beta, float), np.zeros(q),
                      np.empty(0), None, None, np.inf, np.inf, 0, False)


@dataclass(frozen=True, eq=False)
class _Point:
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    work: Working

    @property
    def pdev(self) -> float:
        return self.work.minus2loglik + float(self.u @ self.u)


def _converged(point: _Point, new: _Point) -> bool:
    """A step that moves u, and η in units of its working SD (√w·Δη), by less than TOL. Scaling
    by √w lets separated rows, whose weight underflows while their η drifts, stop the loop."""
    d_eta = np.sqrt(point.work.weights) * np.abs(new.eta - point.eta)
    return (np.max(d_eta, initial=0.0) < TOL
            and np.max(np.abs(new.u - point.u), initial=0.0) < TOL)


class Pirls:
    """PIRLS for one design and family. Remembers the last modes to start the next solve."""

    def __init__(self, design: Design, thetas: ThetaLayout, family: GlmFamily):
        self.design, self.thetas, self.family = design, thetas, family
        self.X = design.X
        self.offset = 0.0 if design.offset is None else design.offset  # part of every η
        self.base = make_layout(design)  # unweighted: patterns and level indices
        self.single = len(self.base.groups) == 1
        self.ZtT = self.base.Zt.T.tocsr()  # Z in internal column order
        # The unweighted backend: every PIRLS step's re-weighted one reuses its pattern work.
        self._kind = choose_backend(self.base)
        self._template = None if self.single else self._kind(self.base, thetas)
        self.u = np.zeros(self.base.q)
        self.n_solves = 0

    def solve(self, theta: np.ndarray, beta: np.ndarray | None = None,
              beta_start: np.ndarray | None = None) -> PirlsState:
        """The modes at θ and fixed `beta`, or, with `beta` None, the joint mode of (β, u)
        started from `beta_start`.

        Started from the last solve's modes; when that fails (a factorisation that is not
        positive definite or a penalized deviance that is not finite: the optimiser's trial
        steps can reach (θ, β) whose working weights overflow, and modes diverged there are no
        start for the next point) it is restarted from u = 0, and when that fails too the state
        is `failed_state` (criterion +inf), a step too far for the optimiser to back off from.
        A solve from the last modes that does not converge within MAX_ITER is restarted from
        u = 0 too (a large step in θ scales the old modes' effects: (x | g) on Poisson data
        from θ = (0.3, −0.2, 0.3) to (0, 22, 0) left a penalized deviance of 1.8e14 after 60
        steps), and the lower of the two is kept. A solve is failed, too, when the Schur
        complement XᵀWX − RZXᵀRZX of its weights does not factor (the profiled gradient and the
        covariance need it; it was indefinite at that diverged point)."""
        fixed = beta is not None
        start_beta = np.asarray(beta if fixed else beta_start, float)
        starts = [self.u] if not self.u.any() else [self.u, np.zeros(self.base.q)]
        unconverged = None
        for u0 in starts:
            try:
                state = self._solve_from(theta, start_beta, u0, fixed)
                state.RX  # noqa: B018 (the gradients and the covariance factor it)
            except PIRLS_FAILURES:
                continue
            if not np.isfinite(state.criterion):
                continue
            if state.converged:
                self.u = state.u
                return state
            if unconverged is None or state.criterion < unconverged.criterion:
                unconverged = state
        if unconverged is not None:
            self.u = unconverged.u
            return unconverged
        self.u = np.zeros(self.base.q)
        return failed_state(theta, start_beta, self.base.q)

    def _solve_from(self, theta: np.ndarray, start_beta: np.ndarray, u0: np.ndarray,
                    fixed: bool) -> PirlsState:
        point = self._point(theta, start_beta, u0)
        for it in range(MAX_ITER + 1):
            layout, factor, beta_new, u_new = self._newton(theta, point, fixed)
            new = self._point(theta, beta_new, u_new)
            small = _converged(point, new)
            if small or it == MAX_ITER:
                break
            accepted = self._halve(theta, point, new)
            if accepted is None:  # no step lowers the penalized deviance: at the mode
                small = True
                break
            point = accepted
        return PirlsState(np.array(theta, float), point.beta, point.u, point.eta, layout, factor,
                          point.work.minus2loglik, float(factor.logdet), it, bool(small))

    def solve_lme4(self, theta: np.ndarray, beta: np.ndarray, eta0: np.ndarray,
                   tol: float = LME4_TOL) -> PirlsState:
        """The modes at θ and fixed `beta` as lme4's glmer devfun (nAGQ = 1) finds them: scoring
        from the weights of `eta0` (lme4's lp0, the nAGQ = 0 stage's η) and u = 0, stopped
        when the penalized deviance changes by less than `tol` relatively. The state keeps the
        factor that produced the last step, i.e. the weights one step before û: glmer's
        log|L|² is that one, which is what puts its deviance (and SEs) off the exact Laplace
        value. A step that raises the deviance is halved first, as glmer does. A solve that
        fails is `failed_state`, as in `solve` (it starts from u = 0 already)."""
        try:
            state = self._solve_lme4(theta, beta, eta0, tol)
        except PIRLS_FAILURES:
            return failed_state(theta, beta, self.base.q)
        return state if np.isfinite(state.criterion) else failed_state(theta, beta, self.base.q)

    def _solve_lme4(self, theta, beta, eta0, tol) -> PirlsState:
        point = _Point(beta, np.zeros(self.base.q), eta0, self.family.working(eta0))
        old, done, steps = np.inf, False, 0
        while steps < MAX_ITER:
            steps += 1
            layout, factor, _, u = self._newton(theta, point, True)
            new = self._point(theta, beta, u)
            done = abs((old - new.pdev) / new.pdev) < tol
            if done:
                break
            if new.pdev > old:  # never on the first step: η0 is not a point of this (θ, β)
                halved = self._halve(theta, point, new)
                if halved is None:  # glmer stops with an error here; keep the last step
                    break
                new = halved
            old, point = new.pdev, new
        return PirlsState(np.array(theta, float), np.array(beta, float), new.u, new.eta, layout,
                          factor, new.work.minus2loglik, float(factor.logdet), steps, done)

    def _newton(self, theta: np.ndarray, point: _Point, fixed: bool):
        """One scoring step from `point`: the PLS solution for its working response."""
        self.n_solves += 1
        layout = reweighted(self.base, self.X, point.work.response - self.offset,
                            point.work.weights)
        factor = self._backend_for(layout).evaluate(theta)
        if fixed:
            u = factor.backward(factor.cu - factor.RZX @ (point.beta - layout.beta_ols))
            return layout, factor, point.beta, u
        beta = joint_beta(layout, factor)
        u = factor.backward(factor.cu - factor.RZX @ beta)
        return layout, factor, layout.beta_ols + beta, u

    def _backend_for(self, layout: Layout):
        if self.single:
            return BlockDiagBackend(layout, self.thetas)
        return self._kind(layout, self.thetas, like=self._template)

    def _halve(self, theta, point: _Point, new: _Point) -> _Point | None:
        """The full step if it lowers the penalized deviance, else the first halving that does."""
        slack = 1e-13 * (1.0 + abs(point.pdev))  # rounding must not reject a converging step
        candidate = new
        for _ in range(MAX_HALVINGS):
            if candidate.pdev <= point.pdev + slack:
                return candidate
            candidate = self._point(theta, 0.5 * (point.beta + candidate.beta),
                                    0.5 * (point.u + candidate.u))
        return None

    def _point(self, theta: np.ndarray, beta: np.ndarray, u: np.ndarray) -> _Point:
        eta = self.X @ beta + self.ZtT @ self.lambda_times(theta, u) + self.offset
        return _Point(beta, u, eta, self.family.working(eta))

    def lambda_times(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """b = Λu in internal column order (each level's K values times its group template)."""
        templates = self.thetas.templates(theta)
        parts = []
        for group in self.base.groups:
            T = group_template(group, templates)
            parts.append((u[group.offset:group.offset + group.q].reshape(-1, group.K) @ T.T)
                         .ravel())
        return np.concatenate(parts) if parts else u
