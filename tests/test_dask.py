"""Scale-out with Dask: block-wise transform and GridSearchCV on a LocalCluster."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

from joblib import parallel_config  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def test_dask_array_transform_blockwise(client, wta_fitted, wta_inputs):
    X = da.from_array(wta_inputs, chunks=(17, wta_inputs.shape[1]))
    lazy = X.map_blocks(
        wta_fitted.transform,
        dtype=np.float64,
        chunks=(X.chunks[0], (wta_fitted.n_units_,)),
    )
    result = lazy.compute()
    np.testing.assert_allclose(result, wta_fitted.transform(wta_inputs), atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_dask_backend(client, wta_fitted, wta_inputs):
    targets = wta_fitted.transform(wta_inputs)
    search = GridSearchCV(
        FeedforwardApproximator(max_iter=50, random_state=0),
        {"hidden_layer_size": [4, 8], "alpha": [1e-4, 1e-2]},
        cv=2,
    )
    with parallel_config(backend="dask"):
        search.fit(wta_inputs, targets)
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert np.isfinite(search.best_score_)


def _numba_threads_in_worker():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def test_joblib_workers_start_numba_with_their_share():
    from joblib import Parallel, cpu_count, delayed

    shares = Parallel(n_jobs=2)(delayed(_numba_threads_in_worker)() for _ in range(2))
    assert shares == [max(1, cpu_count() // 2)] * 2


def test_omp_num_threads_caps_default_threads(monkeypatch):
    from rnnapprox._thread_control import n_threads

    rnn = RecurrentFixedPointTransformer()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert n_threads(rnn.n_jobs) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    import numba

    assert n_threads(rnn.n_jobs) == numba.config.NUMBA_NUM_THREADS
    assert n_threads(rnn.set_params(n_jobs=1).n_jobs) == 1
