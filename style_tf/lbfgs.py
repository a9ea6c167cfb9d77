"""Projected L-BFGS in the box [0, 1] (Bertsekas' projected quasi-Newton), for images.

Pixels at a bound whose gradient points out of the box are held there; the two-loop
recursion over the last steps gives the direction of the others, and a line search runs
along the clipped path. Plain NumPy on flat float32 vectors: the loss and its gradient come
from a function the caller compiles. Its memory is float32, half of scipy's L-BFGS-B's, and
its own work per step is a small part of a step (benchmarks/RESULTS.md, "Optimize engine").
"""

from typing import Callable

import numpy as np

MEMORY = 40  # Steps remembered at most (see memory_size).
MEMORY_BYTES = 1.4e9  # What that memory may take: larger images remember fewer steps.
FIRST_STEP = 0.25  # Largest pixel change of the first step, before there is any curvature.
# The loss's relative rounding error, by the Keras dtype policy of the network that computes it
# (`vgg.dtype_policy`; None: float32): a bfloat16 VGG's loss jitters by up to 2e-4 of itself
# between nearby images, as much as a long run's tail gains in a step (benchmarks/RESULTS.md,
# "Optimize engine").
NOISE = {"mixed_bfloat16": 5e-4, None: 1e-6}

# x (flat float32 in [0, 1]) -> (loss, {part name: value}, gradient like x).
Function = Callable[[np.ndarray], tuple[float, dict, np.ndarray]]


def memory_size(pixels: int) -> int:
    """Steps remembered for an image of `pixels` RGB pixels: MEMORY, or fewer where their
    float32 (s, y) pairs would pass MEMORY_BYTES (at least 5)."""
    return int(max(5, min(MEMORY, MEMORY_BYTES // (2 * 4 * 3 * pixels))))


class Minimizer:
    """Minimises `fun` from `x`, one iteration per `step()`.

    Attributes:
      x, f, parts, g: the current point, its loss, the loss's named parts and its gradient.
    """

    def __init__(self, fun: Function, x: np.ndarray, memory: int, noise: float = NOISE[None]):
        """`noise`: the loss's relative rounding error (`NOISE`), which the line search allows."""
        self.fun, self.keep, self.noise = fun, memory, noise
        self.x = np.asarray(x, np.float32)
        self.f, self.parts, self.g = fun(self.x)
        self._memory = []  # (s, y, s.y) of the last steps, oldest first.

    def step(self) -> bool:
        """One iteration; False when no descent was found even along the plain gradient."""
        while True:
            found = line_search(self.fun, self.x, self.f, self.g, direction(self.x, self.g, self._memory),
                                noise=self.noise)
            if found is not None:
                break
            if not self._memory:
                return False
            self._memory.clear()  # Curvature gone stale: start again from the gradient.
        x_new, self.f, self.parts, g_new = found
        s, y = x_new - self.x, g_new - self.g
        sy = float(np.dot(s, y))
        if sy > 1e-10 * float(np.dot(y, y)):  # Keeps the implied Hessian positive definite.
            self._memory = (self._memory + [(s, y, sy)])[-self.keep:]
        self.x, self.g = x_new, g_new
        return True


def direction(x: np.ndarray, g: np.ndarray, memory: list) -> np.ndarray:
    """The projected L-BFGS direction at `x` (flat, in [0, 1]) with gradient `g` (an ascent
    direction when `memory` has gone stale, which the line search refuses)."""
    free = ~(((x <= 0.0) & (g > 0)) | ((x >= 1.0) & (g < 0)))
    q = np.where(free, g, 0.0).astype(np.float32)
    alphas = []
    for s, y, sy in reversed(memory):
        alphas.append(float(np.dot(s, q)) / sy)
        q -= alphas[-1] * y
    if memory:
        s, y, sy = memory[-1]
        q *= sy / float(np.dot(y, y))
    else:  # No curvature yet: the first step moves no pixel by more than FIRST_STEP.
        q *= FIRST_STEP / max(float(np.abs(q).max()), 1e-30)
    for (s, y, sy), alpha in zip(memory, reversed(alphas)):
        q += (alpha - float(np.dot(y, q)) / sy) * s
    return -np.where(free, q, 0.0)


def line_search(fun: Function, x, f, g, d, tries: int = 10, noise: float = 0.0):
    """A step along clip(x + t d), from t = 1: halved until the loss falls enough, doubled
    while the slope stays steep (the curvature half of the Wolfe conditions), at most `tries`
    evaluations. (x, loss, parts, gradient) of the best point, or None (also when `d` does not
    descend, or is zero: nothing left to move).

    The loss falls enough when it passes Armijo's test, or, where the step's gain is below the
    loss's rounding error (`noise`, relative), when it rose by no more than that error and the
    slope at the new point says the step went downhill (Hager and Zhang's approximate Wolfe
    condition: on a quadratic it means a tenth of the predicted gain). Gradients keep their
    accuracy where differences of two rounded losses have none."""
    t, best, slope = 1.0, None, float(np.dot(g, d))
    if not slope < 0:
        return None
    for _ in range(tries):
        x_new = np.clip(x + t * d, 0.0, 1.0)
        f_new, parts, g_new = fun(x_new)
        step = x_new - x
        gain = float(np.dot(g, step))  # The first-order change, < 0.
        if not (np.isfinite(f_new) and np.isfinite(g_new).all() and (
                f_new <= f + 1e-4 * gain
                or (f_new <= f + noise * abs(f) and float(np.dot(g_new, step)) <= -0.8 * gain))):
            if best is not None:
                return best
            t *= 0.5
            continue
        if best is not None and f_new >= best[1]:
            return best
        best = (x_new, f_new, parts, g_new)
        if float(np.dot(g_new, d)) >= 0.9 * slope or t >= 16:
            return best
        t *= 2.0
    return best
