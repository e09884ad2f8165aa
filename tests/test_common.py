"""scikit-learn's estimator checks over every estimator of the package."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer


# The checks' random data are not fixed-point maps: 200 L-BFGS iterations on
# them may stop at max_iter, which the approximator rightly warns about.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([RecurrentFixedPointTransformer(), FeedforwardApproximator()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
