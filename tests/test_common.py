"""scikit-learn's estimator checks over every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer


@parametrize_with_checks([RecurrentFixedPointTransformer(), FeedforwardApproximator()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
