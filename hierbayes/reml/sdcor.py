"""Variance parameters on lme4's profile scale (SDs, correlations, σ) and their map to θ.

lme4 profiles the variance components as standard deviations and correlations (its `devfun2`),
not as θ. Here the coordinates φ of a fit are, per design block, its k SDs relative to the fit's
scale ŝ (`RemlFit.sd_scale`: σ̂, the median known SD, or 1 on a GLMM's link scale), then for a
correlated block its canonical partial correlations (CPCs), then ℓ = log(σ/σ̂) when σ is
estimated, then `n_extra` coordinates passed through untouched (a GLMM's β, the negative
binomial's log α).

CPCs (Lewandowski, Kurowicka & Joe 2009; the LKJ distribution's parameters): the Cholesky factor
C of a correlation matrix has unit rows, row r built from z_r0, ..., z_r,r−1 as
C_rc = z_rc·√(1 − Σ_{c'<c} C_rc'²). Every point of the box [−1, 1]^(k(k−1)/2) is a valid
correlation matrix, so an optimiser over CPCs needs no other constraint, and the first CPC is the
correlation of the first two terms. To profile the correlation of terms (i, l) the block's terms
are taken in the order (i, l, the others): its first CPC is then that correlation (`pair`).

A block's covariance is ŝ²·diag(r)·R·diag(r), R = C Cᵀ in the original term order, and θ is the
lower-triangular T with non-negative diagonal and T Tᵀ = diag(r)·R·diag(r)·(ŝ/s)², s the
current scale (σ̂·e^ℓ, or ŝ when σ is not estimated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .theta import ThetaLayout

# CPCs stay this far inside ±1: at ±1 exactly the map to θ has an infinite derivative.
CPC_MAX = 1.0 - 1e-6
JACOBIAN_STEP = 1e-7


@dataclass(frozen=True)
class Component:
    """One row of `varcorr()`: an SD ("sd", block, i), a correlation ("corr", block, i, l) or
    the residual SD ("sigma")."""

    kind: str
    block: int = -1
    i: int = -1
    l: int = -1


def sds_and_correlations(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block covariance's SDs and correlation matrix; a correlation involving an SD of
    exactly 0 is undefined: NaN (the one rule for every table, printout and bootstrap)."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    denom = np.outer(sd, sd)
    corr = np.full(cov.shape, np.nan)
    np.divide(cov, denom, out=corr, where=denom > 0)
    return sd, corr


def components(design, has_sigma: bool) -> list[Component]:
    """The rows of `varcorr()` in order: per block its SDs, then its correlations (i < l,
    correlated blocks only), then the residual SD when σ is estimated."""
    out = []
    for b, block in enumerate(design.blocks):
        out += [Component("sd", b, i) for i in range(block.n_terms)]
        if block.correlated:
            out += [Component("corr", b, i, l) for i in range(block.n_terms)
                    for l in range(i + 1, block.n_terms)]
    return out + ([Component("sigma")] if has_sigma else [])


@dataclass(frozen=True)
class _Block:
    k: int
    correlated: bool
    at: int  # index of its first SD in φ; its CPCs follow the k SDs
    order: tuple[int, ...]  # the term order its CPCs refer to

    @property
    def n_cpc(self) -> int:
        return self.k * (self.k - 1) // 2 if self.correlated else 0


class Coordinates:
    """φ of one design (see the module docstring); `pair` = (block, i, l) puts terms i and l
    of that block first, so that φ holds their correlation."""

    def __init__(self, design, thetas: ThetaLayout, scale: float, has_sigma: bool,
                 n_extra: int = 0, pair: tuple[int, int, int] | None = None):
        self.thetas, self.scale, self.has_sigma = thetas, float(scale), has_sigma
        blocks, at = [], 0
        for b, block in enumerate(design.blocks):
            k = block.n_terms
            order = tuple(range(k))
            if pair is not None and pair[0] == b:
                first = (pair[1], pair[2])
                order = first + tuple(t for t in range(k) if t not in first)
            blocks.append(_Block(k, block.correlated, at, order))
            at += k + blocks[-1].n_cpc
        self.blocks: tuple[_Block, ...] = tuple(blocks)
        self.n_psi = at + int(has_sigma)  # the variance coordinates
        self.size = self.n_psi + n_extra

    # --- where things are -------------------------------------------------------------------
    def index(self, c: Component) -> int:
        """The φ coordinate of a component (a correlation needs `pair` set to its terms)."""
        if c.kind == "sigma":
            return self.n_psi - 1
        block = self.blocks[c.block]
        if c.kind == "sd":
            return block.at + c.i
        if block.order[:2] != (c.i, c.l):
            raise ValueError(f"these coordinates do not hold the correlation {c}")
        return block.at + block.k

    def cpc_indices(self, b: int) -> range:
        """The φ coordinates of block b's CPCs."""
        block = self.blocks[b]
        return range(block.at + block.k, block.at + block.k + block.n_cpc)

    @property
    def lower(self) -> np.ndarray:
        lo = np.full(self.size, -np.inf)
        for block in self.blocks:
            lo[block.at:block.at + block.k] = 0.0
            lo[block.at + block.k:block.at + block.k + block.n_cpc] = -CPC_MAX
        return lo

    @property
    def upper(self) -> np.ndarray:
        hi = np.full(self.size, np.inf)
        for block in self.blocks:
            hi[block.at + block.k:block.at + block.k + block.n_cpc] = CPC_MAX
        return hi

    @property
    def is_sd(self) -> np.ndarray:
        mask = np.zeros(self.size, bool)
        for block in self.blocks:
            mask[block.at:block.at + block.k] = True
        return mask

    def value(self, c: Component, x: float) -> float:
        """A coordinate on the reported scale: SD, correlation or σ."""
        if c.kind == "sd":
            return x * self.scale
        return self.scale * float(np.exp(x)) if c.kind == "sigma" else x

    # --- maps -------------------------------------------------------------------------------
    def theta(self, phi: np.ndarray) -> tuple[np.ndarray, float]:
        """(θ, s/ŝ) at φ."""
        ratio = float(np.exp(phi[self.n_psi - 1])) if self.has_sigma else 1.0
        theta = np.empty(self.thetas.n_theta)
        for b, block in enumerate(self.blocks):
            T = self._template(block, phi) / ratio
            mine = self.thetas.block_of == b
            theta[mine] = T[self.thetas.rows[mine], self.thetas.cols[mine]]
        return theta, ratio

    def _template(self, block: _Block, phi: np.ndarray) -> np.ndarray:
        r = phi[block.at:block.at + block.k]
        if block.n_cpc == 0:
            return np.diag(r)
        C = cpc_cholesky(phi[block.at + block.k:block.at + block.k + block.n_cpc], block.k)
        G = np.empty_like(C)
        G[list(block.order)] = C  # rows back in the original term order
        G = r[:, None] * G
        return G if block.order == tuple(range(block.k)) else lower_factor(G)

    def from_theta(self, theta: np.ndarray, extra=()) -> np.ndarray:
        """φ at θ with s = ŝ (ℓ = 0), e.g. at the fit's optimum; `extra` appended."""
        phi = np.zeros(self.n_psi)
        for block, T in zip(self.blocks, self.thetas.templates(theta), strict=True):
            norms = np.sqrt(np.sum(T * T, axis=1))
            phi[block.at:block.at + block.k] = norms
            if block.n_cpc:
                # A zero row has no direction: any unit row will do (its correlations are moot).
                N = np.where(norms[:, None] > 0, T / np.where(norms > 0, norms, 1.0)[:, None],
                             np.eye(block.k))
                C = lower_factor(N[list(block.order)])
                phi[block.at + block.k:block.at + block.k + block.n_cpc] = cpcs(C)
        return np.concatenate([phi, np.asarray(extra, float)])

    def values(self, phi: np.ndarray, comps: list[Component]) -> np.ndarray:
        """The components on the reported scale (SD, correlation, σ) at φ."""
        corr = {}
        for b, block in enumerate(self.blocks):
            if block.n_cpc:
                C = cpc_cholesky(phi[block.at + block.k:block.at + block.k + block.n_cpc],
                                 block.k)
                G = np.empty_like(C)
                G[list(block.order)] = C
                corr[b] = G @ G.T
        out = []
        for c in comps:
            if c.kind == "corr":
                out.append(corr[c.block][c.i, c.l])
            else:
                out.append(self.value(c, phi[self.index(c)]))
        return np.array(out)

    def theta_jacobian(self, phi: np.ndarray) -> np.ndarray:
        """∂θ/∂φ (n_theta × size) by differences of the (cheap) map; one-sided at bounds."""
        return jacobian(lambda x: self.theta(x)[0], phi, self.lower, self.upper,
                        self.thetas.n_theta, self.n_psi)


def cpc_cholesky(z: np.ndarray, k: int) -> np.ndarray:
    """The k×k lower Cholesky factor (unit rows) of the correlation matrix with CPCs z (row by
    row: z_10, z_20, z_21, z_30, ...)."""
    C = np.zeros((k, k))
    C[0, 0] = 1.0
    at = 0
    for r in range(1, k):
        rest = 1.0
        for c in range(r):
            C[r, c] = z[at] * np.sqrt(rest)
            rest = max(rest - C[r, c] ** 2, 0.0)
            at += 1
        C[r, r] = np.sqrt(rest)
    return C


def cpcs(C: np.ndarray) -> np.ndarray:
    """The CPCs of a unit-row lower Cholesky factor (the inverse of `cpc_cholesky`)."""
    out = []
    for r in range(1, C.shape[0]):
        rest = 1.0
        for c in range(r):
            z = C[r, c] / np.sqrt(rest) if rest > 1e-300 else 0.0
            out.append(float(np.clip(z, -CPC_MAX, CPC_MAX)))
            rest = max(rest - C[r, c] ** 2, 0.0)
    return np.array(out)


def lower_factor(G: np.ndarray) -> np.ndarray:
    """The lower-triangular T with non-negative diagonal and T Tᵀ = G Gᵀ (by QR of Gᵀ, which
    works for singular G too)."""
    _, R = np.linalg.qr(G.T)
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return R.T * signs[None, :]


def jacobian(fun, x: np.ndarray, lower: np.ndarray, upper: np.ndarray, m: int,
             n_columns: int) -> np.ndarray:
    """(m × x.size) ∂fun/∂x over the first `n_columns` coordinates (the rest: 0). Central
    differences, one-sided where a step would cross a bound."""
    J = np.zeros((m, x.size))
    for j in range(n_columns):
        h = JACOBIAN_STEP * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] = min(x[j] + h, upper[j])
        down[j] = max(x[j] - h, lower[j])
        J[:, j] = (fun(up) - fun(down)) / (up[j] - down[j])
    return J
