"""scikit-learn's estimator checks over every estimator of the package."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import random_ei_network


# The checks' random data are not fixed-point maps: 200 L-BFGS iterations on
# them may stop at max_iter, which the approximator rightly warns about.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([
    RecurrentFixedPointTransformer(),
    RecurrentFixedPointTransformer(network=random_ei_network(8, 2, random_state=0), method="active_set"),
    FeedforwardApproximator(),
])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
