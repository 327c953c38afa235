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


def test_synth_negative_seed_is_a_usage_error_writing_nothing(tmp_path, capsys):
    root = tmp_path / "vgg"
    with pytest.raises(SystemExit) as exc:
        main(["synth", "vggsound", "--root", str(root), "--preset", "tiny", "--seed", "-1"])
    assert exc.value.code == 2 and not root.exists()
    err = capsys.readouterr().err
    assert '"seed"' in err and "v>=0" in err and "Traceback" not in err


def test_synth_help_names_the_seed_type(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = capsys.readouterr().out
    assert "type: NonNegativeInt" in out and "<function" not in out


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


# --- what a new user meets: help, configs from anywhere, short names, clear errors ----------
def test_help_lists_every_subcommand_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "synth", "benchmark", "leaderboard"):
        line = next((x for x in out.splitlines() if x.strip().startswith(name + " ")), None)
        assert line is not None and len(line.split()) > 2, f"{name} missing from --help:\n{out}"


@pytest.mark.parametrize("argv, expected", [
    (["synth", "vggsound", "--root", "somewhere", "--seed", "5"],
     {"dataset": "vggsound", "root": "somewhere", "preset": "tiny", "seed": 5, "world": []}),
    (["benchmark", "--suite", "synthetic", "--set", "seeds=[0]"],
     {"suite": "synthetic", "results": "results", "overwrite": "only-missing",
      "set": ["seeds=[0]"], "wandb": None}),
    (["leaderboard"], {"results": "results", "out": "leaderboards", "no_plots": False}),
])
def test_suite_commands_print_their_config(argv, expected, capsys):
    import yaml

    with pytest.raises(SystemExit) as exc:
        main([*argv, "--print_config"])
    assert exc.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert expected.items() <= printed.items()


def test_synth_reads_a_config_file(tmp_path: Path):
    cfg = tmp_path / "synth.yaml"
    cfg.write_text(f"dataset: vggsound\nroot: {tmp_path / 'out'}\npreset: tiny\nseed: 1\n"
                   "no_progress: true\nworld: [offscreen_rate=0.0]\n")
    assert main(["synth", "--config", str(cfg)]) == 0
    meta = json.loads((tmp_path / "out" / "avbench_synthetic.json").read_text())
    assert meta["seed"] == 1 and meta["world_config"]["offscreen_rate"] == 0.0


def test_shipped_configs_resolve_from_any_directory(vggsound_root: Path, tmp_path, monkeypatch,
                                                    capsys):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    with pytest.raises(SystemExit):
        main(["fit", "--config", "configs/model/ezvsl_cpu.yaml",
              "--config", "configs/data/vggsound_synthetic.yaml",
              "--config", "configs/trainer/cpu.yaml", "--data.root", str(vggsound_root),
              "--print_config"])
    out = capsys.readouterr().out
    assert "avbench.models.ezvsl.EZVSL" in out and "VGGSoundDataModule" in out
    assert main(["fit", "--config", "configs/model/no_such.yaml"]) == 2
    assert "config file 'configs/model/no_such.yaml' not found" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["EZVSL", "ezvsl", "avbench.models.ezvsl.EZVSL"])
def test_short_model_and_data_names(model: str, vggsound_root: Path, capsys):
    import yaml

    with pytest.raises(SystemExit):
        main(["fit", "--model", model, "--data", "VGGSoundDataModule",
              "--data.root", str(vggsound_root), "--print_config"])
    from avbench.data import VGGSoundDataModule
    from avbench.models import EZVSL
    from avbench.runner.instantiation import import_object

    cfg = yaml.safe_load(capsys.readouterr().out)
    assert import_object(cfg["model"]["class_path"]) is EZVSL
    assert import_object(cfg["data"]["class_path"]) is VGGSoundDataModule


def test_missing_data_names_the_configs_and_classes(capsys):
    assert main(["fit", "--model", "EZVSL"]) == 2
    err = capsys.readouterr().err
    assert "no datamodule given" in err
    assert "configs/data/vggsound_synthetic.yaml" in err and "VGGSoundDataModule" in err
    assert "NotImplementedError" not in err


def test_fit_without_a_training_batch_is_an_error(vggsound_root: Path, tmp_path, capsys):
    """tiny has fewer training clips than the shipped batch size (64, drop_last)."""
    argv = ["fit", "--config", "configs/model/ezvsl_cpu.yaml",
            "--config", "configs/data/vggsound_synthetic.yaml",
            "--config", "configs/trainer/cpu.yaml", "--data.root", str(vggsound_root),
            "--data.num_workers", "0", "--data.cache", "false", "--data.image_size", "64",
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    n_train = sum(1 for r in csv.reader(open(vggsound_root / "vggsound.csv")) if r[3] == "train")
    assert "no-optimizer-step" in err and "batch_size 64" in err
    assert "training clips" in err and "--data.batch_size" in err
    clips = int(err.split(" training clips")[0].split()[-1])
    assert 0 < clips <= n_train < 64
    # the suggested batch size gives at least one full batch
    suggested = int(err.split("pass --data.batch_size ")[1].split()[0])
    assert 0 < suggested <= clips


def test_fit_logs_metrics_to_csv_by_default(vggsound_root: Path, tmp_path):
    argv = ["fit", "--config", "configs/model/ezvsl_cpu.yaml",
            "--config", "configs/data/vggsound_synthetic.yaml",
            "--config", "configs/trainer/cpu.yaml", "--data.root", str(vggsound_root),
            "--data.batch_size", "8", "--data.num_workers", "0", "--data.cache", "false",
            "--data.image_size", "64", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]
    assert main(argv) == 0
    (metrics,) = (tmp_path / "lightning_logs").glob("version_*/metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert "val/loss" in header and "train/loss_epoch" in header


@pytest.mark.parametrize(("typo", "closest"), [("fitt", "fit"), ("synht", "synth"),
                                                ("bencmark", "benchmark"), ("leaderbord", "leaderboard")])
def test_unknown_subcommand_lists_every_one_and_the_closest(typo: str, closest: str, capsys):
    assert main([typo, "--help"]) == 2
    err = capsys.readouterr().err
    assert f"unknown subcommand {typo!r}" in err and f"Did you mean 'avbench {closest}'?" in err
    for name in ("fit", "validate", "test", "predict", "synth", "benchmark", "leaderboard"):
        assert f"'{name}'" in err
    assert f"avbench {typo} --help" not in err  # no tip naming a command that does not exist


def test_unknown_model_and_data_list_the_registered_ones(capsys):
    assert main(["fit", "--model", "EZVSLX", "--data", "VGGSoundDataModule"]) == 2
    err = capsys.readouterr().err
    assert "unknown --model 'EZVSLX'" in err and "Did you mean 'EZVSL'?" in err
    assert "ezvsl (EZVSL)" in err and "jsa (JointSlotSSL)" in err and "slavc (SLAVC)" in err
    assert "Union" not in err and len(err.splitlines()) == 1
    assert main(["fit", "--model", "ezvsl", "--data=VGGSoundDataModul"]) == 2
    err = capsys.readouterr().err
    assert "unknown --data 'VGGSoundDataModul'" in err and "AVEDataModule" in err
    assert "Did you mean 'VGGSoundDataModule'?" in err
    assert main(["fit", "--model", "avbench.models.NoSuchModel"]) == 2
    assert "unknown --model 'avbench.models.NoSuchModel'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["ezvsl", "EZVSL", "JointSlotSSL", "avbench.models.ezvsl.EZVSL",
                                   '{"class_path": "EZVSL"}', "model.yaml"])
def test_known_model_spellings_pass_the_check(value: str):
    from avbench.cli import check_component

    check_component("--model", value)  # no error: jsonargparse takes these
    check_component("--data", "avbench.data.VGGSoundDataModule")


def test_data_layer_errors_are_one_line_exit_1(tmp_path: Path, capsys):
    root = tmp_path / "nonexist"
    argv = ["fit", "--model", "ezvsl", "--data", "VGGSoundDataModule", "--data.root", str(root),
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "w")]
    assert main(argv) == 1  # raised MissingFileError would fail the test: main catches it
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"avbench fit: error: {root}: dataset root directory does not exist"
    assert not any("Traceback" in line for line in err)


def test_missing_or_truncated_standin_is_one_line_exit_1(vggsound_root: Path, tmp_path: Path,
                                                         monkeypatch, capsys):
    # the CPU configs name standins/image-resnet18/model.safetensors; $AVBENCH_STANDINS relocates it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVBENCH_STANDINS", str(tmp_path / "empty"))
    assert main(["fit", *_fit_args("ezvsl", vggsound_root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "not found at" in err[-1] and "make standins" in err[-1]
    assert err[-1].startswith("avbench fit: error:"), err
    assert not any("Traceback" in e for e in err), err
    bad = tmp_path / "bad" / "image-resnet18"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")  # torn header
    monkeypatch.setenv("AVBENCH_STANDINS", str(tmp_path / "bad"))
    assert main(["fit", *_fit_args("ezvsl", vggsound_root)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(bad / "model.safetensors") in last
