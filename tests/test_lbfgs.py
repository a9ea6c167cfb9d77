"""The projected L-BFGS on NumPy problems whose minimum is known."""

import numpy as np

from style_tf import lbfgs


def test_minimizer_finds_the_box_minimum_of_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    a = np.geomspace(1.0, 1e3, 300)  # Curvatures over three decades.
    c = rng.uniform(-0.5, 1.5, 300).astype(np.float32)  # A third of the minimum lies outside [0, 1].

    def fun(x):  # The loss in float64, so that it resolves the last steps.
        r = x.astype(np.float64) - c
        return float(0.5 * np.sum(a * r * r)), {}, (a * r).astype(np.float32)

    solver = lbfgs.Minimizer(fun, np.full(300, 0.5, np.float32), memory=10)
    losses = [solver.f]
    for _ in range(200):
        if not solver.step():
            break
        losses.append(solver.f)
    np.testing.assert_allclose(solver.x, np.clip(c, 0, 1), atol=1e-3)
    assert solver.x.min() >= 0.0 and solver.x.max() <= 1.0
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # Armijo: never uphill.


def test_a_direction_that_does_not_descend_is_refused():
    def fun(x):
        return float(np.sum(x)), {}, np.ones_like(x)

    x = np.full(4, 0.5, np.float32)
    assert lbfgs.line_search(fun, x, 2.0, np.ones(4, np.float32), np.ones(4, np.float32)) is None


def test_lbfgs_memory_keeps_its_pairs_within_the_byte_budget():
    for pixels in (48 * 48, 340 * 512, 1365 * 2048, 2731 * 4096):
        kept = lbfgs.memory_size(pixels)
        assert 5 <= kept <= lbfgs.MEMORY
        assert kept == 5 or kept * 2 * 4 * 3 * pixels <= lbfgs.MEMORY_BYTES  # float32 (s, y).
    assert lbfgs.memory_size(340 * 512) == lbfgs.MEMORY
    assert lbfgs.memory_size(2731 * 4096) < lbfgs.memory_size(1365 * 2048) < lbfgs.MEMORY


def test_a_loss_rounded_like_bfloat16s_is_minimised_past_its_rounding():
    """A loss that jitters by 1e-4 of itself between nearby points (as a bfloat16 network's does)
    with an exact gradient: Armijo's test alone stalls once a step gains less than the jitter;
    the line search's noise allowance goes on by the slopes."""
    a = np.geomspace(1.0, 1e3, 300)
    c = np.linspace(0.1, 0.9, 300).astype(np.float32)
    weights = np.random.default_rng(1).normal(size=300)

    def fun(x):
        r = x.astype(np.float64) - c
        exact = 0.5 * np.sum(a * r * r) + 1.0  # 1.0: the jitter is relative to a loss that stays positive.
        jitter = 1e-4 * exact * np.sin(1e5 * float(weights @ x))  # Changes between any two steps.
        return float(exact + jitter), {}, (a * r).astype(np.float32)

    def distance(noise):
        solver = lbfgs.Minimizer(fun, np.full(300, 0.5, np.float32), memory=10, noise=noise)
        for _ in range(300):
            if not solver.step():
                break
        return float(np.abs(solver.x - c).max())

    assert distance(0.0) > 1e-3  # Stalled by the rounding.
    assert distance(lbfgs.NOISE["mixed_bfloat16"]) < 1e-4
