import io
import re
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest

from rnnapprox import RecurrentFixedPointTransformer, __version__
from rnnapprox.cli import Progress, main, time_per_row

FAST = ["--n-samples", "120", "--hidden", "8", "--max-iter", "30", "--figure", "none", "--quiet"]


def run_main(argv):
    """main(argv) with every warning recorded: the command line must leak none."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    assert [str(w.message) for w in caught] == []
    return code


def test_default_run_reports_and_saves(tmp_path, capsys):
    out = tmp_path / "model.joblib"
    assert run_main([*FAST, "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "fixed points        120 of 120 rows converged\n" in report
    assert "(120 converged)" not in report  # one count, said once
    assert "winner agreement" in report
    weighted = re.search(r"held-out R\^2 +(-?[\d.]+) variance-weighted", report)
    uniform = re.search(r"\n +(-?[\d.]+) uniform: the plain mean over the 88 units", report)
    assert weighted and uniform and weighted.group(1) != uniform.group(1)
    assert re.search(r"\d+x faster\n +\(CPU time, one thread each, fastest of 5 runs of \d+ rows "
                     r"\(recurrent\) and \d+ \(feedforward\)\)", report)
    model = joblib.load(out)
    assert model.predict(np.full((2, 5), 0.5)).shape == (2, 88)
    # Distilled through the package's teacher path; saved with plain transformers, loadable anywhere.
    assert model.n_teacher_rows_ == 96
    assert type(model.teacher_) is RecurrentFixedPointTransformer
    assert type(model.teacher) is RecurrentFixedPointTransformer


def test_r2_is_reported_both_ways_with_sklearn(capsys, monkeypatch):
    import rnnapprox.cli as cli

    calls = []
    real = cli.r2_score

    def spy(y_true, y_pred, **kwargs):
        value = real(y_true, y_pred, **kwargs)
        calls.append((kwargs.get("multioutput"), value))
        return value

    monkeypatch.setattr(cli, "r2_score", spy)
    assert run_main([*FAST, "--out", "none"]) == 0
    report = capsys.readouterr().out
    assert [c[0] for c in calls] == ["variance_weighted", "uniform_average"]
    assert f"{calls[0][1]:.4f} variance-weighted" in report
    assert f"{calls[1][1]:.4f} uniform" in report


def test_target_score_draws_rows_until_reached_or_out_of_budget(capsys):
    argv = [*FAST, "--out", "none", "--hidden", "auto", "--target-score", "0.9999",
            "--max-teacher-rows", "250"]
    assert run_main(argv) == 0  # the not-reached warning becomes a note, not a leak
    report = capsys.readouterr().out
    width = re.search(r"approximator +(\d+) hidden units", report)
    assert width and int(width.group(1)) in (88, 176, 352)  # auto: one per network unit, doubled
    drawn = re.search(r"fit on (\d+) rows \((\d+) drawn, of which 0 without a fixed point were left "
                      r"out\)", report)
    # 96 training rows, a quarter held out to score the rounds; 250 - 96 drawn.
    assert drawn and int(drawn.group(2)) == 154 and int(drawn.group(1)) == 72 + 154
    assert re.search(r"sampling +\d+ rounds; held-out score [\d.]+, target 0.9999 not reached", report)
    assert re.search(r"note +Distillation stopped .* below --target-score=0.9999 .*"
                     r"of --max-teacher-rows=250", report)


def test_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "summary.png"
    argv = [*FAST[:-3], "--quiet", "--out", "none", "--figure", str(figure)]
    assert run_main(argv) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 1000


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".npz"])
def test_user_network_files(tmp_path, capsys, suffix):
    rng = np.random.default_rng(0)
    W = 0.3 * rng.standard_normal((6, 6)) / np.sqrt(6)
    path = tmp_path / f"net{suffix}"
    if suffix == ".npy":
        np.save(path, W)
    elif suffix == ".csv":
        np.savetxt(path, W, delimiter=",")
    else:
        np.savez(path, W=W, W_in=rng.standard_normal((6, 3)), b=np.zeros(6))
    assert run_main([*FAST, "--out", "none", "--weights", str(path), "--activation", "tanh"]) == 0
    report = capsys.readouterr().out
    assert "120 of 120 rows converged" in report and "winner agreement" not in report


def test_user_inputs_file(tmp_path, capsys):
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).uniform(size=(50, 5)))
    argv = [*FAST[2:], "--out", "none", "--inputs", str(inputs)]  # without --n-samples
    assert run_main(argv) == 0
    assert "50 of 50 rows converged" in capsys.readouterr().out


def write(tmp_path, name, content):
    """Write ``content`` to ``tmp_path / name``: bytes, text, an array (npy/csv) or a dict (npz)."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    elif name.endswith(".csv"):
        np.savetxt(path, content, delimiter=",")
    else:
        with open(path, "wb") as file:  # np.save(path) would add .npy to other suffixes
            np.save(file, content)
    return str(path)


GOOD_INPUTS = np.random.default_rng(1).uniform(size=(20, 5))
BAD_OPTIONS = [
    (["--hidden", "0"], "argument --hidden: must be a positive integer or 'auto'; got '0'"),
    (["--hidden", "ten"], "argument --hidden: must be a positive integer or 'auto'; got 'ten'"),
    (["--n-samples", "5"], "--n-samples must be at least 11; got 5"),
    (["--dt", "0"], "argument --dt: must be a positive finite number; got '0'"),
    (["--dt", "nan"], "argument --dt: must be a positive finite number; got 'nan'"),
    (["--tol=-1e-6"], "argument --tol: must be a non-negative finite number"),
    (["--max-steps", "0"], "argument --max-steps: must be a positive integer"),
    (["--test-fraction", "1"], "--test-fraction must be below 1"),
    (["--test-fraction", "0.001"], "leaves 0 held-out and 120 training rows"),
    (["--seed", "-3"], "argument --seed: must be a non-negative integer"),
    (["--hidden", "automatic"], "argument --hidden: must be a positive integer or 'auto'"),
    (["--target-score", "1.5"], "argument --target-score: must be in (0, 1]; got '1.5'"),
    (["--target-score", "0"], "argument --target-score: must be a positive finite number"),
    (["--max-teacher-rows", "500"], "--max-teacher-rows is the budget of --target-score's sampling"),
    (["--target-score", "0.9", "--max-teacher-rows", "96"],
     "--max-teacher-rows 96 leaves no rows to draw: it counts the 96 training rows too"),
    (["--target-score", "0.9", "--n-samples", "26000"],
     "--max-teacher-rows 20000 (the default) leaves no rows to draw: it counts the 20800"),
    (["--method", "rk4"], "argument --method: invalid choice: 'rk4'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--tau", "2"], "--tau applies to a --weights network"),
    (["--activation", "tanh"], "--activation applies to a --weights network"),
    (["--out", "/nonexistent-dir/model.joblib"], "the folder '/nonexistent-dir' does not exist"),
    (["--figure", "summary.xyz"], "matplotlib cannot write .xyz files; use one of"),
    (["--n-samples", "100000000000"], "not enough memory; use fewer rows"),  # 4 TB of inputs
]
BAD_WEIGHTS = [
    (None, "absent.npy", "does not exist"),
    ("dir", "folder.npy", "is a directory, not a file"),
    (b"not a numpy file", "bad.npy", "could not read weights file"),
    (np.eye(3), "net.txt", "must end in .npy, .npz or .csv"),
    (np.ones((3, 4)), "net.npy", "square"),
    (np.ones(4), "net.npy", "weights must have 2 dimensions; got shape (4,)"),
    (np.array([[np.nan, 0], [0, 0]]), "net.npy", "NaN or infinity"),
    ({"X": np.eye(2)}, "net.npz", "needs an array named 'weights'"),
    ({"W": np.eye(4), "W_in": np.ones((3, 2))}, "net.npz", "invalid network"),
    ({"W": np.eye(4), "W_in": np.ones(4)}, "net.npz", "input_weights must be 2-D"),
    ("", "empty.csv", "weights file '{path}' is empty"),
    ("1,2\nx,4\n", "words.csv", "could not convert string 'x' to float64"),
]
BAD_INPUTS = [
    ("", "empty.csv", "inputs file '{path}' is empty"),
    (np.zeros((0, 5)), "empty.npy", "inputs file '{path}' is empty"),
    (np.arange(100.0), "flat.npy", "are 1-D (shape (100,)); expected a 2-D array with 5 columns"),
    (np.ones((20, 3)), "narrow.csv", "have 3 columns; the network takes 5 features"),
    ("1,2,3,4,5\n" * 12 + "1,2,3,4\n", "ragged.csv", "the number of columns changed from 5 to 4 at row 13"),
    ("1,2,3,4,5\n" * 12 + "1,2,abc,4,5\n", "words.csv", "could not convert string 'abc' to float64"),
    (np.vstack([GOOD_INPUTS, [[0, np.inf, 0, 0, 0]]]), "inf.npy", "infinity in 1 rows (first: row 20)"),
    (GOOD_INPUTS[:5], "short.npy", "have 5 rows; at least 11 are needed"),
    ({"a": GOOD_INPUTS, "b": GOOD_INPUTS}, "two.npz", "holds 2 arrays (a, b); it must hold exactly one"),
    (np.array(["a", "b"]), "text.npy", "holds <U1 data, not numbers"),
]


def check_one_line_error(capsys, code, match):
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rnnapprox: error: ") and "Traceback" not in captured.err
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("options, match", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_bad_options_give_one_line_errors(tmp_path, capsys, monkeypatch, options, match):
    monkeypatch.chdir(tmp_path)
    check_one_line_error(capsys, run_main([*FAST, "--out", "none", *options]), match)


@pytest.mark.parametrize("content, name, match", BAD_WEIGHTS, ids=[c[1] + ":" + c[2] for c in BAD_WEIGHTS])
def test_bad_network_files_give_one_line_errors(tmp_path, capsys, content, name, match):
    if content is None:
        path = str(tmp_path / name)
    elif isinstance(content, str) and content == "dir":
        path = str(tmp_path / name)
        (tmp_path / name).mkdir()
    else:
        path = write(tmp_path, name, content)
    check_one_line_error(capsys, run_main([*FAST, "--weights", path]), match.format(path=path))


@pytest.mark.parametrize("content, name, match", BAD_INPUTS, ids=[c[1] for c in BAD_INPUTS])
def test_bad_inputs_give_one_line_errors(tmp_path, capsys, content, name, match):
    path = write(tmp_path, name, content)
    check_one_line_error(capsys, run_main([*FAST[2:], "--inputs", path]), match.format(path=path))


def test_one_dimensional_inputs_say_so_and_how_to_fix(tmp_path, capsys):
    path = write(tmp_path, "flat.npy", np.arange(100.0))
    check_one_line_error(capsys, run_main([*FAST[2:], "--inputs", path]), "X.reshape(-1, 5)")
    path = write(tmp_path, "flat.npy", np.arange(101.0))
    assert main([*FAST[2:], "--inputs", path]) == 2
    error = capsys.readouterr().err
    assert "1-D" in error and "reshape" not in error and "(1, 101)" not in error


def test_inputs_with_n_samples_is_an_error(tmp_path, capsys):
    path = write(tmp_path, "inputs.npy", GOOD_INPUTS)
    check_one_line_error(capsys, run_main([*FAST, "--inputs", path]), "--n-samples applies to sampled inputs")


def test_tol_zero_says_what_happened_and_what_to_change(capsys):
    code = run_main([*FAST, "--out", "none", "--tol", "0", "--max-steps", "50"])
    check_one_line_error(capsys, code, "only 0 of 96 training rows reached a fixed point")
    capsys.readouterr()
    main([*FAST, "--out", "none", "--tol", "0", "--max-steps", "50"])
    error = capsys.readouterr().err
    assert "0 diverged, 96 stopped at --max-steps 50 with the residual above --tol 0" in error
    assert "use a positive --tol such as 1e-6" in error


def test_unstable_network_says_rows_diverged(tmp_path, capsys):
    path = write(tmp_path, "unstable.npy", 2.0 * np.eye(4))
    code = run_main([*FAST, "--weights", path])
    check_one_line_error(capsys, code, "96 diverged, 0 stopped at --max-steps")
    main([*FAST, "--weights", path])
    assert "the network is unstable for these inputs" in capsys.readouterr().err


def test_slow_rows_are_told_to_raise_max_steps(capsys):
    assert main([*FAST, "--out", "none", "--max-steps", "100"]) == 2
    error = capsys.readouterr().err
    assert "96 stopped at --max-steps 100" in error and "raise --max-steps (now 100)" in error


def test_some_rows_not_converging_are_counted_once(tmp_path, capsys):
    # Unit 0 excites itself (1.5 > 1): it blows up for positive input and stays silent otherwise.
    path = write(tmp_path, "half.npz", {"W": np.diag([1.5, 0.2]), "W_in": np.array([[1.0], [1.0]])})
    inputs = write(tmp_path, "inputs.npy", np.linspace(-1, 1, 41)[:, None])
    assert run_main([*FAST[2:], "--out", "none", "--weights", path, "--inputs", inputs]) == 0
    report = capsys.readouterr().out
    match = re.search(r"fixed points +(\d+) of 41 rows converged; (\d+) diverged and 0 stopped at", report)
    assert match and int(match.group(1)) + int(match.group(2)) == 41 and int(match.group(2)) > 0


def test_method_option(tmp_path, capsys):
    assert run_main([*FAST, "--out", "none", "--method", "active_set"]) == 0
    assert "120 of 120 rows converged" in capsys.readouterr().out
    path = write(tmp_path, "tanh.npy", 0.5 * np.eye(4))
    argv = [*FAST, "--out", "none", "--method", "active_set", "--weights", path, "--activation", "tanh"]
    check_one_line_error(capsys, run_main(argv), "needs a relu network")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"rnnapprox {__version__}\n"


def test_progress_in_a_file_is_plain_lines_with_rate_and_time_left(capsys):
    assert main([*FAST[:-1], "--out", "none"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err  # captured output is not a terminal
    assert re.search(r"fixed points \(training rows\): 96 rows in [\d.]+ s, [\d,]+ rows/s", err)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_writes_a_line_every_interval_when_not_a_terminal():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1000, "work", stream=stream, interactive=False, interval=5.0, clock=clock)
    clock.now += 8.0  # start-up (numba compiling): not part of the rate
    progress.update(100)
    for done in range(200, 1001, 100):
        clock.now += 1.0  # 100 rows per second
        progress.update(done)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "  work: 200/1000 rows (20%), 100 rows/s, 8 s left",  # 5 s since the start: a line is due
        "  work: 700/1000 rows (70%), 100 rows/s, 3 s left",  # 5 s later
        "  work: 1000 rows in 17.0 s, 59 rows/s",
    ]


def test_progress_redraws_in_place_on_a_terminal():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(300, "work", stream=stream, interactive=True, interval=0.2, clock=clock)
    for done in (100, 200, 300):
        clock.now += 1.0
        progress.update(done)
    progress.close(note="; next")
    text = stream.getvalue()
    assert text.count("\r") == 3  # none before a rate is known (at the first update)
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.split("\r")[-1].startswith("  work: 300 rows in 3.0 s, 100 rows/s; next")
    assert text.startswith("\r  work: 200/300 rows (67%), 100 rows/s, 1 s left")


def test_progress_asks_the_stream_whether_it_is_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert Progress(1, "x", stream=Terminal()).interactive
    assert not Progress(1, "x", stream=io.StringIO()).interactive


def test_time_per_row_takes_the_fastest_run_of_a_batch_grown_to_min_seconds():
    clock, batches = FakeClock(), []
    slowdowns = iter([5.0, 0.0, 3.0, 0.0, 1.0, 2.0, 9.0])  # warm-up, estimate, then 5 timed runs

    def function(batch):
        batches.append(len(batch))
        clock.now += 1e-3 * len(batch) + next(slowdowns)  # 1 ms per row, plus whatever load adds

    seconds, n_rows = time_per_row(function, np.zeros((10, 2)), repeats=5, min_seconds=0.5, clock=clock)
    assert batches == [10, 10, 500, 500, 500, 500, 500]
    assert n_rows == 500
    assert seconds == pytest.approx(1e-3)  # the unloaded run, exactly the per-row cost


def test_time_per_row_batch_is_capped_and_never_below_the_rows_given():
    clock = FakeClock()

    def function(batch):
        clock.now += 1e-9 * len(batch)

    assert time_per_row(function, np.zeros((7, 1)), min_seconds=1.0, max_rows=1000, clock=clock)[1] == 1000
    assert time_per_row(function, np.zeros((7, 1)), min_seconds=0.0, clock=clock)[1] == 7
    with pytest.raises(ValueError, match="at least one row"):
        time_per_row(function, np.zeros((0, 1)))


def test_module_entry_point_errors_help_and_version():
    def run(*argv):
        return subprocess.run([sys.executable, "-m", "rnnapprox", *argv], capture_output=True, text=True)

    done = run("--help")
    assert done.returncode == 0
    for option in ["--weights", "--inputs", "--out", "--figure", "--n-samples", "--hidden", "--method",
                   "--version", "--max-iter", "--target-score", "--max-teacher-rows"]:
        assert option in done.stdout
    done = run("--hidden", "0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "rnnapprox: error: argument --hidden: must be a positive integer or 'auto'; " \
                          "got '0' (see rnnapprox --help)\n"
    done = run("--version")
    assert done.returncode == 0 and done.stdout == f"rnnapprox {__version__}\n"


def test_reporting_teacher_solves_in_slices_with_the_rows_own_results(capsys):
    from rnnapprox.cli import _FixedPointLog, _ReportingTransformer
    from rnnapprox.networks import soft_wta

    U = np.random.default_rng(0).uniform(size=(300, 3))
    params = dict(network=soft_wta(3, 4, 2, random_state=0), max_steps=400)
    plain = RecurrentFixedPointTransformer(**params).fit(U).solve(U)
    reporting = _ReportingTransformer(**params).fit(U)
    assert reporting.solve(U).keys() == plain.keys()  # no log: the transformer's own solve
    log = _FixedPointLog(quiet=False)
    _ReportingTransformer.log = log
    try:
        sliced = reporting.solve(U)
    finally:
        _ReportingTransformer.log = None
    assert sliced.keys() == plain.keys() and log.results == [sliced]
    # The kernels multiply blocks of rows at once (BLAS), so slicing changes float rounding, no more.
    for key in plain:
        if np.issubdtype(plain[key].dtype, np.floating):
            np.testing.assert_allclose(sliced[key], plain[key], rtol=1e-12, atol=1e-12, err_msg=key)
        else:
            np.testing.assert_array_equal(sliced[key], plain[key], err_msg=key)
    assert "fixed points: 300 rows in" in capsys.readouterr().err
