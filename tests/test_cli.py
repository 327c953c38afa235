"""The `avbench` command: synth writes a real layout, LightningCLI fits from configs."""

import csv
import json
from pathlib import Path

import pytest

from avbench.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "avbench" / "configs"


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    # LightningCLI warns when args are passed while sys.argv holds pytest's own.
    monkeypatch.setattr("sys.argv", ["avbench"])


@pytest.fixture(scope="module")
def vggsound_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "vggsound"
    assert main(["synth", "vggsound", "--root", str(root), "--preset", "tiny", "--seed", "3",
                 "--no-progress"]) == 0
    return root


def test_synth_writes_real_vggsound_layout(vggsound_root: Path):
    rows = list(csv.reader(open(vggsound_root / "vggsound.csv")))
    assert rows and all(len(r) == 4 for r in rows)  # no header: youtube_id,start,label,split
    assert {r[3] for r in rows} == {"train", "test"}
    vggss = json.loads((vggsound_root / "metadata" / "vggss.json").read_text())
    assert {"file", "class", "bbox"} <= set(vggss[0])
    assert (vggsound_root / "cooccurrence_graph.json").exists()


def test_synth_rejects_unknown_dataset(tmp_path):
    with pytest.raises(SystemExit):
        main(["synth", "imagenet", "--root", str(tmp_path)])


def _fit_args(model: str, root: Path) -> list[str]:
    return [
        "--config", str(CONFIGS / "model" / f"{model}_cpu.yaml"),
        "--config", str(CONFIGS / "data" / "vggsound_synthetic.yaml"),
        "--config", str(CONFIGS / "trainer" / "fast_dev_run.yaml"),
        "--data.init_args.root", str(root),
        "--data.init_args.batch_size", "4",
        "--data.init_args.num_workers", "0",
        "--data.init_args.image_size", "64",
    ]


def test_print_config_resolves_model_and_data(vggsound_root: Path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", *_fit_args("ezvsl", vggsound_root), "--print_config"])
    out = capsys.readouterr().out
    assert "avbench.models.ezvsl.EZVSL" in out and "VGGSoundDataModule" in out
    assert str(vggsound_root) in out


def test_fit_from_configs_runs_a_step(vggsound_root: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_fit_args("ezvsl", vggsound_root)]) == 0


def test_synth_world_override_changes_the_world_and_is_recorded(tmp_path):
    def offscreen_fraction(root: Path) -> float:
        scenes = [json.loads(line) for line in open(root / "synthetic_scenes.jsonl")]
        return sum(bool(s["offscreen"]) for s in scenes) / len(scenes)

    none, always = tmp_path / "none", tmp_path / "always"
    for root, rate in ((none, "0.0"), (always, "1.0")):
        assert main(["synth", "vggsound", "--root", str(root), "--preset", "tiny",
                     "--world", f"offscreen_rate={rate}", "--no-progress"]) == 0
    assert offscreen_fraction(none) == 0.0
    assert offscreen_fraction(always) == 1.0
    meta = json.loads((always / "avbench_synthetic.json").read_text())
    assert meta["world_config"]["offscreen_rate"] == 1.0


def test_synth_world_override_rejects_unknown_field(tmp_path):
    with pytest.raises(ValueError, match="no_such_field"):
        main(["synth", "vggsound", "--root", str(tmp_path), "--preset", "tiny",
              "--world", "no_such_field=1", "--no-progress"])


def test_parse_assignments_nests_dotted_keys_and_parses_yaml():
    from avbench.cli import parse_assignments

    assert parse_assignments(["seeds=[0]", "trainer_overrides.max_epochs=1", "a.b.c=x"]) == {
        "seeds": [0], "trainer_overrides": {"max_epochs": 1}, "a": {"b": {"c": "x"}}}
    with pytest.raises(SystemExit, match="--world expects KEY=VALUE"):
        parse_assignments(["offscreen_rate"], "--world")


def test_parse_assignments_reads_exponent_numbers_as_floats():
    from avbench.cli import parse_assignments

    # PyYAML (YAML 1.1) reads "3e-4" as a string; an lr override must be a float
    out = parse_assignments(["m.lr=3e-4", "m.tau=1.0e-2", "name=e3", "tag=1e3x"])
    assert out == {"m": {"lr": 3e-4, "tau": 1e-2}, "name": "e3", "tag": "1e3x"}
    assert isinstance(out["m"]["lr"], float)


def test_cli_modules_do_not_import_each_other():
    """avbench.cli dispatches to avbench.runner.cli; the reverse import (a cycle) is gone:
    both take parse_assignments from avbench.runner.assignments."""
    import ast

    import avbench.cli
    import avbench.runner.cli
    from avbench.runner.assignments import parse_assignments

    tree = ast.parse(Path(avbench.runner.cli.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "avbench.cli" not in imported and "avbench.runner.assignments" in imported
    assert avbench.cli.parse_assignments is parse_assignments
