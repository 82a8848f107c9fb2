"""The gate's logic on synthetic pytest-benchmark JSON (fast; runs with the unit tests)."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

GATE_PATH = Path(__file__).resolve().parents[2] / "scripts" / "benchmark_gate.py"


def _load_gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_gate", GATE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gate = _load_gate()


def _run_document(ratios: dict[str, float], seconds: float = 1e-3) -> dict[str, Any]:
    """The parts of a pytest-benchmark JSON that the gate reads."""
    benchmarks = [
        {
            "name": f"test_train_step[{case}]",
            "stats": {"median": seconds * ratio},
            "extra_info": {"case": case, "ratio_to_floor": ratio},
        }
        for case, ratio in ratios.items()
    ]
    return {"machine_info": {"cpu": {"brand_raw": "test cpu"}}, "benchmarks": benchmarks}


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    ratios = {"floor-D64": 1.0, "relgrad-D64": 1.3, "relgrad-D1024": 1.4}
    return _write(tmp_path / "baseline.json", {"ratio_to_floor": ratios})


def _check(tmp_path: Path, baseline: Path, ratios: dict[str, float], *flags: str) -> int:
    run = _write(tmp_path / "run.json", _run_document(ratios))
    return gate.main(["check", str(run), "--baseline", str(baseline), "--tolerance", "0.3", *flags])


def test_passes_within_tolerance(tmp_path: Path, baseline: Path, capsys) -> None:
    ratios = {"floor-D64": 1.02, "relgrad-D64": 1.55, "relgrad-D1024": 1.2}
    assert _check(tmp_path, baseline, ratios) == 0
    assert "gate: pass" in capsys.readouterr().out


def test_fails_naming_the_regressed_benchmark(tmp_path: Path, baseline: Path, capsys) -> None:
    ratios = {"floor-D64": 1.0, "relgrad-D64": 1.3, "relgrad-D1024": 6.5}
    assert _check(tmp_path, baseline, ratios) == 1
    captured = capsys.readouterr()
    assert "FAIL relgrad-D1024: regressed" in captured.err
    assert "relgrad-D64" not in captured.err


def test_missing_benchmark_fails_unless_allowed(tmp_path: Path, baseline: Path, capsys) -> None:
    ratios = {"floor-D64": 1.0, "relgrad-D64": 1.3}
    assert _check(tmp_path, baseline, ratios) == 1
    assert "FAIL relgrad-D1024: missing" in capsys.readouterr().err
    assert _check(tmp_path, baseline, ratios, "--allow-missing") == 0


def test_new_benchmark_passes_and_is_listed(tmp_path: Path, baseline: Path, capsys) -> None:
    ratios = {"floor-D64": 1.0, "relgrad-D64": 1.3, "relgrad-D1024": 1.4, "maf-D64": 3.0}
    assert _check(tmp_path, baseline, ratios) == 0
    assert "maf-D64" in capsys.readouterr().out


def test_a_regression_must_show_in_every_retry(tmp_path: Path, baseline: Path) -> None:
    noisy = _write(tmp_path / "noisy.json", _run_document({"relgrad-D64": 2.5}))
    retry = _write(tmp_path / "retry.json", _run_document({"relgrad-D64": 1.35}))
    failing = tmp_path / "failing.txt"
    args = ["--baseline", str(baseline), "--allow-missing", "--failing-out", str(failing)]
    assert gate.main(["check", str(noisy), *args]) == 1
    assert failing.read_text() == "relgrad-D64"
    assert gate.main(["check", str(noisy), str(retry), *args]) == 0
    assert failing.read_text() == ""


def test_judge_statuses() -> None:
    assert gate.judge("a-D64", 1.0, 1.29, 0.3).status == "ok"
    assert gate.judge("a-D64", 1.0, 1.31, 0.3).status == "regressed"
    assert gate.judge("a-D64", 1.0, 0.69, 0.3).status == "faster"
    assert gate.judge("a-D64", None, 1.0, 0.3).status == "new"
    assert gate.judge("a-D64", 1.0, None, 0.3).status == "missing"


def test_baseline_is_the_median_over_runs(tmp_path: Path) -> None:
    runs = [
        _write(tmp_path / f"run{i}.json", _run_document({"relgrad-D64": ratio}))
        for i, ratio in enumerate((1.2, 1.5, 1.3))
    ]
    out = tmp_path / "baseline.json"
    assert gate.main(["baseline", *map(str, runs), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["ratio_to_floor"] == {"relgrad-D64": 1.3}
    assert written["runs"] == 3


def test_cases_sort_by_method_then_numeric_dim() -> None:
    verdicts = gate.compare({"relgrad-D1024": 1.0, "relgrad-D64": 1.0, "floor-D256": 1.0}, {}, 0.3)
    assert [v.case for v in verdicts] == ["floor-D256", "relgrad-D64", "relgrad-D1024"]


def test_slowdown_reports_the_median_time_factor(tmp_path: Path, capsys) -> None:
    ratios = {"floor-D64": 1.0, "relgrad-D64": 1.3, "relgrad-D1024": 1.4}
    fast = _write(tmp_path / "fast.json", _run_document(ratios, seconds=1e-3))
    slow = _write(tmp_path / "slow.json", _run_document(ratios, seconds=2e-3))
    assert gate.main(["slowdown", str(fast), str(slow)]) == 0
    assert "×2.00" in capsys.readouterr().out
