"""The measurement scripts behind the results tables run end to end (tiny settings): a table that
can only be refreshed by a script that no longer runs is stale without anyone noticing."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dreambooth_measure_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dreambooth" / "measure.py"), "--runs", "default@2,note@2",
         "--num-class-images", "2", "--class-sample-steps", "2", "--n-eval", "2", "--sample-steps", "2",
         "--device", "cpu", "--grid", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                           "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"base", "default@2", "note@2"}
    for name in ("default@2", "note@2"):
        assert 0.0 <= rows[name]["inst_rms"] <= 1.0 and rows[name]["train_s"] > 0 and rows[name]["lr"] == 5e-5
    assert rows["base"]["class_drift"] == 0.0 and rows["default@2"]["class_drift"] > 0.0
    assert (tmp_path / "base.png").is_file() and (tmp_path / "default@2.png").is_file()
