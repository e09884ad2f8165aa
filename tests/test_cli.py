import subprocess
import sys

import joblib
import numpy as np
import pytest

from rnnapprox.cli import main

FAST = ["--n-samples", "120", "--hidden", "8", "--figure", "none", "--quiet"]


def test_default_run_reports_and_saves(tmp_path, capsys):
    out = tmp_path / "model.joblib"
    assert main([*FAST, "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "rows converged      120 of 120" in report
    assert "winner agreement" in report and "held-out R^2" in report
    model = joblib.load(out)
    assert model.predict(np.full((2, 5), 0.5)).shape == (2, 88)


def test_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "summary.png"
    argv = ["--n-samples", "60", "--hidden", "4", "--quiet", "--out", "none", "--figure", str(figure)]
    assert main(argv) == 0
    assert figure.stat().st_size > 1000


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
    assert main([*FAST, "--out", "none", "--weights", str(path), "--activation", "tanh"]) == 0
    report = capsys.readouterr().out
    assert "rows converged      120 of 120" in report and "winner agreement" not in report


def test_user_inputs_file(tmp_path, capsys):
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).uniform(size=(50, 5)))
    assert main([*FAST, "--out", "none", "--inputs", str(inputs)]) == 0
    assert "rows converged      50 of 50" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, match",
    [
        ("missing", "does not exist"),
        (np.ones((3, 4)), "square"),
        (np.array([[np.nan, 0], [0, 0]]), "NaN or infinity"),
        ("garbage", "could not read"),
        ({"X": np.eye(2)}, "needs an array named 'weights'"),
    ],
)
def test_bad_network_files_give_clear_errors(tmp_path, capsys, content, match):
    if isinstance(content, str) and content == "missing":
        path = tmp_path / "absent.npy"
    elif isinstance(content, str):
        path = tmp_path / "bad.npy"
        path.write_bytes(b"not a numpy file")
    elif isinstance(content, dict):
        path = tmp_path / "net.npz"
        np.savez(path, **content)
    else:
        path = tmp_path / "net.npy"
        np.save(path, content)
    assert main([*FAST, "--weights", str(path)]) == 2
    assert match in capsys.readouterr().err


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    inputs = tmp_path / "inputs.csv"
    np.savetxt(inputs, np.ones((20, 3)), delimiter=",")
    assert main([*FAST, "--inputs", str(inputs)]) == 2
    assert "the network takes 5 features" in capsys.readouterr().err


def test_unstable_network_is_reported(tmp_path, capsys):
    path = tmp_path / "unstable.npy"
    np.save(path, 2.0 * np.eye(4))
    assert main([*FAST, "--weights", str(path)]) == 2
    assert "reached a fixed point" in capsys.readouterr().err


def test_method_option(tmp_path, capsys):
    assert main([*FAST, "--out", "none", "--method", "newton"]) == 0
    assert "rows converged      120 of 120" in capsys.readouterr().out
    path = tmp_path / "tanh.npy"
    np.save(path, 0.5 * np.eye(4))
    argv = [*FAST, "--out", "none", "--method", "newton", "--weights", str(path),
            "--activation", "tanh"]
    assert main(argv) == 2
    assert "needs a relu network" in capsys.readouterr().err


def test_help_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "rnnapprox", "--help"], capture_output=True,
                          text=True, check=True)
    for option in ["--weights", "--inputs", "--out", "--figure", "--n-samples", "--hidden",
                   "--method"]:
        assert option in done.stdout
